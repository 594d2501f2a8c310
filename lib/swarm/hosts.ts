import type { Env } from '../env/load.ts'
import { isSwarmNode } from '../env/swarm.ts'
import type { HostSession } from '../host/session.ts'
import { InputError } from '../report/errors.ts'
import type { Context } from '../run/runbook.ts'

// Which of this run's sessions is the manager, which are the web nodes, which is the data host.
export interface SwarmHosts {
  manager: HostSession
  nodes: HostSession[]
  data: HostSession
}

export function swarmHosts(ctx: Context): SwarmHosts {
  const env: Env = ctx.env
  const nodes = ctx.hosts.filter((h) => isSwarmNode(h.host))
  const manager = nodes.find((h) => h.name === env.hosts[0]?.name && h.host.roles.includes('manager'))
  const data = ctx.hosts.find((h) => h.host.roles.includes('data'))
  if (!manager || !data || env.allHosts)
    throw new InputError(
      'A swarm deploy or rollback needs every host of the env (the manager, the web nodes, the data host).',
      [],
      'Run it without HOST=.',
    )
  return { manager, nodes, data }
}

/** The host that runs Postgres and Redis: the `data` host (a single-host env's only host). */
export function dataSession(ctx: Context): HostSession | undefined {
  return ctx.hosts.find((h) => h.host.roles.includes('data')) ?? ctx.hosts[0]
}

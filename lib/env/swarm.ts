import type { Host } from './terms.ts'
import type { Validator } from './validate.ts'

// The `swarm:` section of an env file: the app services run as a Docker Swarm stack on several hosts.
// Hosts take roles: `manager` or `worker` (a swarm node that runs one task of each app service and
// nginx in front of them: also `web`), and exactly one `data` host (Postgres and Redis, no swarm).
export interface SwarmConfig {
  /** Encrypt the stack's overlay network (IPsec, needs the kernel's ESP support). */
  encryptedOverlay: boolean
  /** Seconds Swarm waits between updating two nodes. */
  updateDelayS: number
  /** Seconds Swarm watches an updated task before it counts as good (a failure then rolls back). */
  monitorS: number
  /** How long deploy waits for the whole rolling update (or Swarm's own rollback) to finish. */
  updateTimeoutS: number
}

export const SWARM_ROLES = ['manager', 'worker'] as const

export function readSwarm(v: Validator, raw: unknown): SwarmConfig | undefined {
  if (raw === undefined || raw === null) return undefined
  const s = v.object(raw, 'swarm', ['encrypted_overlay', 'update_delay_s', 'monitor_s', 'update_timeout_s'])
  return {
    encryptedOverlay: v.boolean(s, 'encrypted_overlay', 'swarm', true),
    updateDelayS: v.integer(s, 'update_delay_s', 'swarm', { min: 0, max: 600, default: 5 }) ?? 5,
    monitorS: v.integer(s, 'monitor_s', 'swarm', { min: 1, max: 600, default: 10 }) ?? 10,
    updateTimeoutS: v.integer(s, 'update_timeout_s', 'swarm', { min: 30, max: 3600, default: 600 }) ?? 600,
  }
}

/** The roles of an env's hosts: checked together with the rest of the file. */
export function checkRoles(v: Validator, hosts: Host[], swarm: SwarmConfig | undefined): void {
  const nodes = hosts.filter(isSwarmNode)
  if (!swarm) {
    for (const [i, h] of hosts.entries())
      if (isSwarmNode(h))
        v.problem(
          `hosts[${i}].roles`,
          'manager and worker are swarm roles: add a swarm: section, or use web and data on one host',
        )
    return
  }
  if (!hosts[0]?.roles.includes('manager'))
    v.problem('hosts[0].roles', 'on a swarm env the first host is the manager: give it roles [manager, web]')
  for (const [i, h] of hosts.entries()) {
    const both = h.roles.includes('manager') && h.roles.includes('worker')
    if (both) v.problem(`hosts[${i}].roles`, 'a node is a manager or a worker, not both')
    if (isSwarmNode(h) && h.roles.includes('data'))
      v.problem(`hosts[${i}].roles`, 'the data host stays out of the swarm: give it roles [data] only')
    if (isSwarmNode(h) && !h.roles.includes('web'))
      v.problem(`hosts[${i}].roles`, 'every swarm node runs nginx in front of its tasks: add web')
    if (!isSwarmNode(h) && h.roles.includes('web'))
      v.problem(`hosts[${i}].roles`, 'a web host on a swarm env must be a swarm node: add manager or worker')
  }
  const data = hosts.filter((h) => h.roles.includes('data'))
  if (data.length !== 1)
    v.problem('hosts', `a swarm env needs exactly one host with roles [data] (found ${data.length})`)
  if (nodes.length === 0) v.problem('hosts', 'a swarm env needs at least one manager')
}

export function isSwarmNode(h: Host): boolean {
  return h.roles.includes('manager') || h.roles.includes('worker')
}

/** The address other hosts of the env use to reach this one (the VPC address when there is one). */
export function innerAddress(h: Host): string {
  return h.privateAddress ?? h.address
}

/** Every host of the env file, also when HOST=<name> narrowed the run to one. */
export function envHosts(env: { hosts: Host[]; allHosts?: Host[] }): Host[] {
  return env.allHosts ?? env.hosts
}

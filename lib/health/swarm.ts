import { readOn } from '../commands/checker.ts'
import { parseNodeList, parseStackServices } from '../commands/swarm.ts'
import type { Env } from '../env/load.ts'
import { isSwarmNode } from '../env/swarm.ts'
import type { HostSession } from '../host/session.ts'
import type { HealthResult } from './result.ts'

// A swarm env's health from its manager: every node ready, every service with one running task per
// web node and no update paused or rolled back.
export async function clusterChecks(
  manager: HostSession,
  env: Env,
  webNodes: number,
): Promise<HealthResult[]> {
  const read = async (cmd: string) =>
    (await manager.exec(cmd, { probe: true, allowFail: true, echo: false })).stdout
  const nodes = parseNodeList(await read(readOn(manager, env, 'nodes')))
  const results: HealthResult[] = nodes.map((n) => ({
    check: 'swarm node',
    target: `${n.hostname} (${n.role})`,
    ok: n.status === 'ready' && n.availability === 'active',
    value: `${n.status}/${n.availability}`,
    limit: 'ready/active',
    runbook: 'docs/runbooks/swarm.md',
  }))
  if (nodes.length === 0)
    results.push({
      check: 'swarm node',
      target: manager.name,
      ok: false,
      value: 'no swarm answers on the manager',
      limit: 'ready/active',
      runbook: 'docs/runbooks/swarm.md',
    })
  for (const s of parseStackServices(await read(readOn(manager, env, 'stack-services')))) {
    const running = s.tasks.filter((t) => t.state === 'Running').length
    // rollback_completed after a release Swarm refused: the service runs its previous spec, as it should.
    const stuck = s.update === 'paused' || s.update === 'rollback_paused'
    results.push({
      check: 'swarm service',
      target: s.name,
      ok: running === webNodes && !stuck,
      value: `${running}/${webNodes} running ${s.image.replace(/@sha256:.*/, '')}${s.update === 'none' ? '' : `, update ${s.update}`}`,
      limit: `${webNodes}/${webNodes} running, no update paused or rolled back`,
      runbook: stuck ? 'docs/runbooks/rollback.md' : 'docs/runbooks/swarm.md',
    })
  }
  return results
}

/** What each host runs: a web node's tasks; the data host's Postgres and Redis. */
export function hostContainersProbe(env: Env, host: HostSession): string {
  return readOn(host, env, 'containers', isSwarmNode(host.host) ? 'stack' : 'data')
}

import {
  joinToken,
  labelNode,
  nodeList,
  parseNodeList,
  parseSwarmState,
  rotateJoinToken,
  type SwarmState,
  swarmInit,
  swarmJoin,
  swarmStateProbe,
  WEB_LABEL,
} from '../commands/swarm.ts'
import type { Host } from '../env/load.ts'
import { readPrivateKey } from '../env/secrets.ts'
import { envHosts, innerAddress, isSwarmNode } from '../env/swarm.ts'
import type { HostSession } from '../host/session.ts'
import { PreconditionError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import { registerSecret } from '../report/redact.ts'
import { type Context, changedIf, connectHost, type Step } from '../run/runbook.ts'

/**
 * A swarm env's app hosts become one swarm: the first host initialises it (manager), the others join
 * with a join token read from the manager. The token goes from one SSH session's stdout to another's
 * stdin: it is never printed, logged or put on a command line here, it is rotated right after each
 * join, and the audit record says which node joined with which kind of token.
 */
export const joinSwarm: Step = {
  title: 'Swarm: the first host is the manager, the other app hosts join (tokens rotated after use)',
  next: 'Look at `docker info` and `docker node ls` on the manager. A node in another swarm must leave it first (docker swarm leave).',
  async run(ctx) {
    if (!ctx.env.swarm) {
      print('      not a swarm env (no swarm: section): nothing to do')
      return 'skipped'
    }
    const managerHost = envHosts(ctx.env)[0] as Host
    const manager = await managerSession(ctx, managerHost)
    let changed = false
    const ms = await swarmState(manager)
    if (ms.state === 'inactive') {
      await manager.exec(swarmInit(innerAddress(managerHost)))
      ctx.auditEvent(`swarm initialised on ${managerHost.name} (${innerAddress(managerHost)})`)
      changed = true
    } else if (ms.state !== 'active' || !ms.manager)
      throw new PreconditionError(
        `${managerHost.name} must be the swarm's manager, and its swarm state is "${ms.state}"${ms.manager ? '' : ' (not a manager)'}`,
      )
    for (const node of ctx.hosts.filter((h) => isSwarmNode(h.host) && h.name !== managerHost.name)) {
      const st = await swarmState(node)
      const managerAt = `${innerAddress(managerHost)}:2377`
      if (st.state === 'active') {
        if (!st.managers.includes(managerAt) && !st.manager)
          throw new PreconditionError(
            `${node.name} is in another swarm (managers: ${st.managers.join(', ') || 'unknown'}), not ${managerHost.name}'s`,
            `On ${node.name}: docker swarm leave --force (its tasks stop), then run setup-server again.`,
          )
        continue
      }
      const role = node.host.roles.includes('manager') ? 'manager' : 'worker'
      const token = (await manager.exec(joinToken(role), { echo: false })).stdout.trim()
      if (token) registerSecret('SWARM_JOIN_TOKEN', token)
      await node.exec(swarmJoin(innerAddress(node.host), innerAddress(managerHost)), {
        stdin: `${token}\n`,
        timeoutS: 120,
      })
      await manager.exec(rotateJoinToken(role))
      ctx.auditEvent(
        `${node.name} joined the swarm as a ${role} with a ${role} join token read from ${managerHost.name} over SSH (rotated after use)`,
      )
      print(`      ${node.name}: joined as a ${role}`)
      changed = true
    }
    if (ctx.dryRun) return changedIf(changed)
    return changedIf((await labelWebNodes(ctx, manager)) || changed)
  },
}

/** Every swarm node of the env carries ce.web=true (where the stack's tasks go); others are reported. */
async function labelWebNodes(ctx: Context, manager: HostSession): Promise<boolean> {
  let changed = false
  const nodes = parseNodeList((await manager.exec(nodeList, { probe: true, echo: false })).stdout)
  const known = new Set<string>()
  for (const session of ctx.hosts.filter((h) => isSwarmNode(h.host))) {
    const st = await swarmState(session)
    known.add(st.nodeId)
    const node = nodes.find((n) => n.id === st.nodeId)
    if (node?.labels[WEB_LABEL] === 'true' && node.labels['ce.env'] === ctx.env.name) continue
    await manager.exec(labelNode(st.nodeId, ctx.env.name))
    changed = true
  }
  for (const n of nodes.filter((n) => !known.has(n.id) && n.labels['ce.env'] !== ctx.env.name))
    print(`      note: swarm node ${n.hostname} (${n.id}) is not a host of ${ctx.env.file}`)
  print(
    `      swarm: ${nodes.length} node(s): ${nodes.map((n) => `${n.hostname} ${n.role} ${n.status}`).join(', ')}`,
  )
  return changed
}

async function swarmState(host: HostSession): Promise<SwarmState> {
  return parseSwarmState((await host.exec(swarmStateProbe, { probe: true, echo: false })).stdout)
}

/** The manager's session: this run's own, or (HOST=<a worker>) one opened for this step. */
async function managerSession(ctx: Context, managerHost: Host): Promise<HostSession> {
  const open = ctx.hosts.find((h) => h.name === managerHost.name)
  if (open) return open
  const session = await connectHost(ctx, managerHost, readPrivateKey(ctx.env, ctx.secrets), 'bootstrap')
  ctx.onCleanup(async () => session.close())
  return session
}

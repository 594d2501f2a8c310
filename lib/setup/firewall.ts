import {
  catFile,
  desiredUfwRules,
  interfaceOfProbe,
  parseUfwAdded,
  publicInterfaceProbe,
  swarmUfwRules,
  UFW_AFTER_RULES,
  ufwApply,
  ufwConverge,
  ufwDefaults,
  ufwDefaultsOk,
  ufwIsActive,
  ufwShowAdded,
  ufwStatusProbe,
  withDockerUserBlock,
} from '../commands/firewall.ts'
import { FAIL2BAN_JAIL, fail2banJail, fail2banRestart, sessionSourceProbe } from '../commands/host-config.ts'
import type { Env, Host } from '../env/load.ts'
import { envHosts, innerAddress, isSwarmNode } from '../env/swarm.ts'
import { ensureFile } from '../host/converge.ts'
import type { HostSession } from '../host/session.ts'
import { PreconditionError } from '../report/errors.ts'
import type { Context, Step } from '../run/runbook.ts'
import { SWARM_PORTS } from '../swarm/files.ts'
import { eachHost, operatorAddress, spareOperator, unspareOperator } from './common.ts'

export const firewall: Step = {
  title: 'Firewall (ufw): deny incoming; SSH; 80/443 only from Cloudflare; Docker ports cannot get around it',
  next: 'SSH is always allowed before ufw is enabled. If you are locked out anyway: DigitalOcean console -> `ufw disable`.',
  run: (ctx) =>
    eachHost(ctx, async (host) => {
      const iface =
        (await host.exec(publicInterfaceProbe, { probe: true, echo: false })).stdout.trim() || 'eth0'
      const afterRules = (await host.exec(catFile(UFW_AFTER_RULES), { probe: true, echo: false })).stdout
      const blockChanged = await ensureFile(host, {
        path: UFW_AFTER_RULES,
        content: withDockerUserBlock(
          afterRules,
          [iface, ...(await privateInterface(ctx, host))],
          peerAddresses(ctx.env, host.host),
        ),
        mode: '0640',
        owner: 'root:root',
      })
      const status = (await host.exec(ufwStatusProbe, { probe: true, allowFail: true, echo: false })).stdout
      const live = parseUfwAdded(
        (await host.exec(ufwShowAdded, { probe: true, allowFail: true, echo: false })).stdout,
      )
      const commands = [
        ...(ufwDefaultsOk(status) ? [] : ufwDefaults),
        ...ufwConverge(live, hostUfwRules(ctx.env, host.host)),
      ]
      const active = ufwIsActive(status)
      if (commands.length === 0 && active && !blockChanged) return false
      await host.exec(ufwApply(commands, !active))
      return true
    }),
}

/** A swarm env's host: the interface of its private address, when it has one (the VPC's, eth1). */
async function privateInterface(ctx: Context, host: HostSession): Promise<string[]> {
  const address = host.host.privateAddress
  if (!ctx.env.swarm || !address) return []
  const out = (await host.exec(interfaceOfProbe(address), { probe: true, echo: false })).stdout.trim()
  if (!out)
    throw new PreconditionError(
      `${host.name}: no interface holds its private_address ${address}`,
      `Check private_address in ${ctx.env.file} against \`ip -o addr\` on ${host.name}.`,
    )
  return [out]
}

/** The ufw rules of one host: SSH, web, and on a swarm node the swarm ports for the other nodes. */
export function hostUfwRules(env: Env, host: Host): string[] {
  const ports = Object.values(SWARM_PORTS).sort((a, b) => a - b)
  const taskPorts = `${ports[0]}:${ports[ports.length - 1]}`
  return [...desiredUfwRules(env.setup.firewall), ...swarmUfwRules(swarmPeers(env, host), taskPorts)]
}

/** On a swarm env, the env's other hosts (by their private address) may reach this host's containers. */
export function peerAddresses(env: Env, self: Host): string[] {
  if (!env.swarm) return []
  return envHosts(env)
    .filter((h) => h.name !== self.name)
    .map(innerAddress)
}

/** The other swarm nodes, for a swarm node: its swarm ports open to them alone. */
function swarmPeers(env: Env, self: Host): string[] {
  if (!env.swarm || !isSwarmNode(self)) return []
  return envHosts(env)
    .filter((h) => h.name !== self.name && isSwarmNode(h))
    .map(innerAddress)
}

/**
 * Ports that listen beyond loopback on a swarm env's host, for the env's own hosts only (ufw or
 * DOCKER-USER drops everyone else): swarm's, each node's tasks, the data host's Postgres and Redis.
 */
export function peerOnlyPorts(env: Env, host: Host): number[] {
  if (!env.swarm) return []
  if (isSwarmNode(host)) return [2377, 7946, ...Object.values(SWARM_PORTS)]
  return host.roles.includes('data') ? [5432, 6379] : []
}

export const fail2ban: Step = {
  title: 'fail2ban for sshd (journal backend)',
  next: 'Run `fail2ban-client -d` on the host to see why the jail does not load.',
  run: (ctx) =>
    eachHost(ctx, async (host) => {
      const jail = await ensureFile(host, {
        path: FAIL2BAN_JAIL.path,
        content: fail2banJail(ctx.env.setup.fail2banIgnore),
        mode: '0644',
        owner: 'root:root',
      })
      const running =
        (await host.exec('fail2ban-client status sshd', { probe: true, allowFail: true, echo: false }))
          .code === 0
      if (!jail && running) return false
      // One command: a ban of our own address (from old journal lines) is lifted before our connection notices.
      await spareOperator(host, fail2banRestart())
      return true
    }),
}

/** fail2ban must not ban this run for its own checks (a refused root login counts as an attack). */
export const spareOperatorFromFail2ban: Step = {
  title: "Keep fail2ban from banning this run's own address while it runs",
  async run(ctx: Context) {
    for (const host of ctx.hosts) {
      const ip = (
        await host.exec(sessionSourceProbe, { probe: true, noSudo: true, echo: false })
      ).stdout.trim()
      if (!ip) continue
      operatorAddress.set(host, ip)
      await spareOperator(host)
      ctx.onCleanup(() => unspareOperator(host))
    }
    return 'ok'
  },
}

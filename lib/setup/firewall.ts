import {
  addressAllowed,
  catFile,
  desiredUfwRules,
  interfaceOfProbe,
  parsePorts,
  parseUfwAdded,
  publicInterfaceProbe,
  sessionPortProbe,
  sshdPortsProbe,
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
import { print } from '../report/output.ts'
import type { Context, Step } from '../run/runbook.ts'
import { SWARM_PORTS } from '../swarm/files.ts'
import { proveFreshLogin } from './access.ts'
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
      const desired = hostUfwRules(ctx.env, host.host, await hostSshPorts(host))
      const commands = [...(ufwDefaultsOk(status) ? [] : ufwDefaults), ...ufwConverge(live, desired)]
      const active = ufwIsActive(status)
      if (commands.length === 0 && active && !blockChanged) return false
      await host.exec(ufwApply(commands, !active))
      // The way back if a new login cannot get through: the rules as they were, or ufw off as it was.
      const undo = active ? ufwApply(ufwConverge(desired, live), false) : 'ufw --force disable >/dev/null'
      await proveLoginThroughFirewall(ctx, host, undo)
      return true
    }),
}

/**
 * A new SSH login must get through the firewall just changed (this run's own connection would survive
 * as an established one, and hide a lock-out). If it does not, the change is undone before failing.
 */
async function proveLoginThroughFirewall(ctx: Context, host: HostSession, undo: string): Promise<void> {
  if (ctx.dryRun) return
  try {
    await proveFreshLogin(ctx, host)
  } catch (err) {
    await host.exec(undo, { allowFail: true })
    throw new PreconditionError(
      `${host.name}: a new SSH login failed after ufw changed (${(err as Error).message}); the firewall is back as it was`,
      `Compare \`ufw show added\` with the port sshd listens on (\`sshd -T | grep ^port\`) and setup.firewall.ssh_from in ${ctx.env.file}, then run setup-server again.`,
    )
  }
}

/** The ports sshd listens on, and the one this run came in on (opened even if sshd -T disagrees). */
const sshPortsCache = new WeakMap<HostSession, number[]>()
export async function hostSshPorts(host: HostSession): Promise<number[]> {
  const known = sshPortsCache.get(host)
  if (known) return known
  const listening = (await host.exec(sshdPortsProbe, { probe: true, echo: false })).stdout
  const session = (await host.exec(sessionPortProbe, { probe: true, noSudo: true, echo: false })).stdout
  const ports = parsePorts(`${listening}\n${session}`)
  if (ports.length === 0)
    throw new PreconditionError(
      `${host.name}: cannot tell which port sshd listens on (\`sshd -T\` printed no port)`,
      'Run `sshd -t` on the host: its configuration does not load. setup-server does not enable ufw without the SSH port.',
    )
  sshPortsCache.set(host, ports)
  return ports
}

/**
 * ufw will let SSH in only from setup.firewall.ssh_from: this run's own address must be inside it,
 * or enabling the firewall would lock the operator (and this run) out. Checked before any change.
 */
export const checkSshFrom: Step = {
  title: "This run's address is inside setup.firewall.ssh_from (the firewall will let it back in)",
  next: 'Nothing was changed. Add your address (or your VPN/bastion range) to setup.firewall.ssh_from, or run from inside it.',
  async run(ctx) {
    const cidrs = ctx.env.setup.firewall.sshFrom
    if (cidrs.length === 0) return 'ok'
    for (const host of ctx.hosts) {
      const ip =
        operatorAddress.get(host) ??
        (await host.exec(sessionSourceProbe, { probe: true, noSudo: true, echo: false })).stdout.trim()
      if (!addressAllowed(cidrs, ip))
        throw new PreconditionError(
          `${host.name} sees this run coming from ${ip}, which is not inside setup.firewall.ssh_from (${cidrs.join(', ')}) of ${ctx.env.file}: the firewall would lock this run and you out`,
          'Nothing was changed. Add your address (or your VPN/bastion range) to setup.firewall.ssh_from, or run from inside it.',
        )
      print(`      ${host.name}: ${ip} is inside ssh_from`)
    }
    return 'ok'
  },
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

/** The ufw rules of one host: SSH (on `sshPorts`), web, and on a swarm node the swarm ports for the other nodes. */
export function hostUfwRules(env: Env, host: Host, sshPorts: number[] = [22]): string[] {
  const ports = Object.values(SWARM_PORTS).sort((a, b) => a - b)
  const taskPorts = `${ports[0]}:${ports[ports.length - 1]}`
  return [
    ...desiredUfwRules(env.setup.firewall, sshPorts),
    ...swarmUfwRules(swarmPeers(env, host), taskPorts),
  ]
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

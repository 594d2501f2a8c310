import { fail2banIgnore, fail2banUnignore } from '../commands/host-config.ts'
import { type HostOs, osReleaseProbe, parseOs } from '../commands/packages.ts'
import { homeOf } from '../commands/users.ts'
import type { HostSession } from '../host/session.ts'
import { PreconditionError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import { type Context, changedIf, type StepStatus } from '../run/runbook.ts'

/** Runs `fn` on every host; the step changed something if it did on any host. */
export async function eachHost(
  ctx: Context,
  fn: (host: HostSession) => Promise<boolean>,
): Promise<StepStatus> {
  let changed = false
  for (const host of ctx.hosts) {
    const didChange = await fn(host)
    print(`      ${host.name}: ${didChange ? (ctx.dryRun ? 'would change' : 'changed') : 'ok'}`)
    changed ||= didChange
  }
  return changedIf(changed)
}

const osCache = new WeakMap<HostSession, HostOs>()

/** Debian 12 (the sandbox) or Ubuntu 24.04 (production); anything else stops the run before any change. */
export async function hostOs(host: HostSession): Promise<HostOs> {
  const known = osCache.get(host)
  if (known) return known
  const out = await host.exec(osReleaseProbe, { probe: true, echo: false })
  const os = parseOs(out.stdout)
  if (!os) {
    throw new PreconditionError(
      `${host.name} runs "${out.stdout.trim()}"; setup-server supports debian-12 and ubuntu-24.04`,
      'Rebuild the droplet from an Ubuntu 24.04 image (or extend lib/commands/packages.ts for this OS).',
    )
  }
  osCache.set(host, os)
  return os
}

/** The address this run connects from, per host, as the host sees it (set by spareOperatorFromFail2ban). */
export const operatorAddress = new WeakMap<HostSession, string>()

const ignoredByUs = new WeakMap<HostSession, boolean>()

/** Tells fail2ban (if it runs) to ignore and unban this run's address: call before a probe it would count. */
export async function spareOperator(host: HostSession, restartFirst?: string): Promise<void> {
  const ip = operatorAddress.get(host)
  if (!ip || host.options.dryRun) return
  const command = restartFirst ? `${restartFirst}; ${fail2banIgnore(ip)}` : fail2banIgnore(ip)
  const out = (await host.exec(command, { echo: false })).stdout
  if (out.includes('added')) ignoredByUs.set(host, true)
  if (out.includes('kept')) ignoredByUs.set(host, false)
}

/** Undoes spareOperator at the end of the run, unless the jail's own configuration ignores the address. */
export async function unspareOperator(host: HostSession): Promise<void> {
  const ip = operatorAddress.get(host)
  if (ip && ignoredByUs.get(host)) await host.exec(fail2banUnignore(ip), { timeoutS: 20, echo: false })
}

/** A user's home on a host; in a dry run that would have created the user, the default /home/<user>. */
export async function userHome(host: HostSession, user: string, wouldCreate: boolean): Promise<string> {
  if (host.options.dryRun && wouldCreate) return `/home/${user}`
  return (await host.exec(homeOf(user), { probe: true, echo: false })).stdout.trim()
}

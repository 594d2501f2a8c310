import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import {
  type LockOwner,
  ownerText,
  parseOwner,
  releaseLock,
  STALE_AFTER_S,
  takeLock,
  touchLock,
} from '../commands/lock.ts'
import { remotePaths } from '../env/host-paths.ts'
import type { HostSession } from '../host/session.ts'
import { PreconditionError } from '../report/errors.ts'
import { print, printErr } from '../report/output.ts'
import { ciRunUrl, whoAmI } from './audit.ts'
import type { Context } from './step.ts'

export const HEARTBEAT_S = 10
/** Called stale in messages (never broken by itself): one bound, in commands/lock.ts, shared with the watchdog. */
export { STALE_AFTER_S }

/** This machine and boot, to recognise a holder that ran here. */
export function here(): { machine: string; bootId: string } {
  let bootId = ''
  try {
    bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    // not Linux: a holder is never recognised as ours, the heartbeat decides
  }
  return { machine: hostname(), bootId }
}

/** Whether a process with this pid runs on this machine (EPERM: it runs, as another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * A holder that ran on this machine, in this boot, whose process is gone: its lock is stale at once
 * (a SIGKILLed or crashed run), whatever its heartbeat's age. Anything uncertain (another machine,
 * an owner without a boot id, a pid reused by a live process) is not gone: the heartbeat decides.
 */
export function holderGone(
  owner: Record<string, string>,
  self: { machine: string; bootId: string },
  alive: (pid: number) => boolean,
): boolean {
  const pid = Number(owner.pid)
  if (!self.bootId || owner.machine !== self.machine || owner.boot_id !== self.bootId) return false
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false
  return !alive(pid)
}

/** Describes a holder for the on-call: who, what, since when, and whether it looks alive. */
export function describeHolder(
  host: string,
  owner: Record<string, string>,
  ageS: number,
  env: string,
): string {
  const lines = [
    `The ${owner.runbook === 'backup' ? 'backup' : 'deploy'} lock on ${host} is held by ${owner.who ?? 'unknown'} (${owner.runbook ?? '?'} of ${owner.release || 'no release'}, pid ${owner.pid ?? '?'} on ${owner.machine ?? '?'}, since ${owner.started_at ?? '?'}).`,
  ]
  if (owner.ci_run_url) lines.push(`CI run: ${owner.ci_run_url}`)
  lines.push(
    ageS > STALE_AFTER_S
      ? `Its heartbeat stopped ${ageS} s ago: it looks stale. If no deploy is running, break it with \`make unlock ENV=${env}\`.`
      : `Its heartbeat is ${ageS} s old: that run is alive. Wait for it to finish.`,
  )
  return lines.join('\n')
}

/**
 * Takes the deploy lock on every host (or none), keeps its heartbeat, and releases it however the
 * run ends (success, failure, SIGINT, SIGTERM) through the run's cleanups.
 */
export async function takeDeployLock(
  ctx: Context,
  runbook: string,
  dir: string = remotePaths(ctx.env).lock,
): Promise<void> {
  const self = here()
  const owner: LockOwner = {
    who: whoAmI(),
    runbook,
    release: ctx.release ?? '',
    pid: process.pid,
    machine: self.machine,
    boot_id: self.bootId,
    started_at: new Date().toISOString(),
    ci_run_url: ciRunUrl() ?? '',
    token: randomBytes(12).toString('hex'),
  }
  const taken: HostSession[] = []
  const releaseAll = async () => {
    clearInterval(timer)
    for (const host of taken) {
      const out = await host.exec(releaseLock(dir, owner.token), { timeoutS: 20, echo: false })
      if (out.stdout.includes('not-ours'))
        printErr(`  ${host.name}: the lock is no longer ours (someone broke it); left as it is`)
    }
  }
  const timer = setInterval(() => {
    for (const host of taken)
      void host.exec(touchLock(dir, owner.token), { timeoutS: 15, echo: false }).catch(() => {})
  }, HEARTBEAT_S * 1000)
  timer.unref()
  ctx.onCleanup(releaseAll)
  for (const host of ctx.hosts) {
    let held = await tryTake(host, dir, owner)
    if (held && holderGone(held.owner, self, pidAlive)) {
      // Only the dead holder's own lock goes (its token): a lock retaken meanwhile stays.
      await host.exec(releaseLock(dir, held.owner.token ?? ''), { timeoutS: 20, echo: false })
      print(
        `      ${host.name}: the lock's holder (${held.owner.runbook ?? '?'}, pid ${held.owner.pid} on this machine) is no longer running: its lock was stale, broken`,
      )
      ctx.auditEvent(
        `${host.name}: broke a stale lock of ${held.owner.runbook ?? '?'} (pid ${held.owner.pid}, gone, on ${held.owner.machine})`,
      )
      held = await tryTake(host, dir, owner)
    }
    if (held === null) {
      taken.push(host)
      print(`      ${host.name}: lock taken (${dir})`)
      continue
    }
    if (held === undefined) continue
    throw new PreconditionError(
      describeHolder(host.name, held.owner, held.ageS, ctx.env.name),
      'Nothing was changed by this run.',
    )
  }
}

/** Takes the lock on one host: null when taken, the holder when held, undefined in a dry run. */
async function tryTake(
  host: HostSession,
  dir: string,
  owner: LockOwner,
): Promise<{ owner: Record<string, string>; ageS: number } | null | undefined> {
  const out = await host.exec(takeLock(dir), { stdin: ownerText(owner), echo: false })
  if (out.dryRun) return undefined
  const [state, ...rest] = out.stdout.trim().split('\n')
  if (state === 'taken') return null
  const ageLine = rest.find((l) => l.startsWith('heartbeat_age_s=')) ?? ''
  return { owner: parseOwner(rest.join('\n')), ageS: Number(ageLine.split('=')[1] ?? 0) }
}

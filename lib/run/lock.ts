import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { type LockOwner, ownerText, parseOwner, releaseLock, takeLock, touchLock } from '../commands/lock.ts'
import { remotePaths } from '../env/host-paths.ts'
import type { HostSession } from '../host/session.ts'
import { PreconditionError } from '../report/errors.ts'
import { print, printErr } from '../report/output.ts'
import { ciRunUrl, whoAmI } from './audit.ts'
import type { Context } from './runbook.ts'

export const HEARTBEAT_S = 10
/** A lock whose heartbeat is older than this is called stale in messages (never broken by itself). */
export const STALE_AFTER_S = 90

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
  const owner: LockOwner = {
    who: whoAmI(),
    runbook,
    release: ctx.release ?? '',
    pid: process.pid,
    machine: hostname(),
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
    const out = await host.exec(takeLock(dir), { stdin: ownerText(owner), echo: false })
    if (out.dryRun) continue
    const [state, ...rest] = out.stdout.trim().split('\n')
    if (state !== 'taken') {
      const ageLine = rest.find((l) => l.startsWith('heartbeat_age_s=')) ?? ''
      throw new PreconditionError(
        describeHolder(
          host.name,
          parseOwner(rest.join('\n')),
          Number(ageLine.split('=')[1] ?? 0),
          ctx.env.name,
        ),
        'Nothing was changed by this run.',
      )
    }
    taken.push(host)
    print(`      ${host.name}: lock taken (${dir})`)
  }
}

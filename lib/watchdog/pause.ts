import { parseOwner, STALE_AFTER_S } from '../commands/lock.ts'
import type { CheckResult } from '../notify/alerts.ts'

// When the watchdog must keep its hands off the containers: a runbook holds the deploy lock (a restore
// stops the app on purpose and replaces /data; a deploy stops and starts colours), or an on-call set
// the maintenance flag. It then neither judges nor restarts containers; nginx, the domains, disk and
// memory are still checked. Pure: the caller reads the files.

/** A maintenance flag without `until=` lasts this long from when it was written. */
export const MAINTENANCE_DEFAULT_H = 4

export interface LockSeen {
  /** The lock directory's owner file (key=value lines), '' when it could not be read. */
  owner: string
  /** The heartbeat's mtime (ms since the epoch). */
  heartbeatMs: number
}

export interface FlagSeen {
  /** The flag file's text: `until=<ISO time>`, `by=`, `reason=` lines (all optional). */
  text: string
  mtimeMs: number
}

export interface PauseVerdict {
  /** Why containers are left alone this run; undefined: not paused. */
  pausedBy?: string
  /** The deploy-lock and maintenance checks of this run (a stale lock or an expired flag fails). */
  results: CheckResult[]
}

/** The flag is written by hand: its keys and values are read with the lock's parser, then trimmed. */
function flagFields(text: string): Record<string, string> {
  const raw: Record<string, string> = parseOwner(text)
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.trim(), v.trim()]))
}

export function pauseVerdict(
  env: string,
  lock: LockSeen | undefined,
  flag: FlagSeen | undefined,
  now: Date,
): PauseVerdict {
  const results: CheckResult[] = []
  const reasons: string[] = []
  if (!lock)
    results.push({ check: 'deploy-lock', ok: true, detail: 'free', runbook: 'docs/runbooks/deploy.md' })
  else {
    // Only who, what and since: the owner file also holds the holder's token, never repeated.
    const o = parseOwner(lock.owner)
    const holder = `${o.runbook ?? 'a runbook'}${o.who ? ` by ${o.who}` : ''}${o.started_at ? ` since ${o.started_at}` : ''}`
    const ageS = Math.max(0, Math.round((now.getTime() - lock.heartbeatMs) / 1000))
    if (ageS <= STALE_AFTER_S) {
      reasons.push(`${holder} holds the deploy lock`)
      results.push({
        check: 'deploy-lock',
        ok: true,
        detail: `held: ${holder} (heartbeat ${ageS} s old)`,
        runbook: 'docs/runbooks/deploy.md',
      })
    } else
      results.push({
        check: 'deploy-lock',
        ok: false,
        detail: `stale: ${holder}, heartbeat ${ageS} s old; deploys are blocked. If no run is going: make unlock ENV=${env}`,
        runbook: 'docs/runbooks/deploy.md',
      })
  }
  if (flag) {
    const f = flagFields(flag.text)
    const untilMs = f.until ? Date.parse(f.until) : flag.mtimeMs + MAINTENANCE_DEFAULT_H * 3600_000
    const what = `maintenance${f.by ? ` by ${f.by}` : ''}${f.reason ? ` (${f.reason})` : ''}`
    if (Number.isNaN(untilMs))
      results.push({
        check: 'maintenance',
        ok: false,
        detail: `the flag's until=${f.until} is not a time: containers are watched as usual; write until=<ISO time>`,
        runbook: 'docs/runbooks/watchdog.md',
      })
    else if (now.getTime() < untilMs) {
      reasons.push(`${what} until ${new Date(untilMs).toISOString()}`)
      results.push({
        check: 'maintenance',
        ok: true,
        detail: `${what} until ${new Date(untilMs).toISOString()}`,
        runbook: 'docs/runbooks/watchdog.md',
      })
    } else
      results.push({
        check: 'maintenance',
        ok: false,
        detail: `${what} expired at ${new Date(untilMs).toISOString()}: containers are watched again; remove the flag`,
        runbook: 'docs/runbooks/watchdog.md',
      })
  }
  return { ...(reasons.length ? { pausedBy: reasons.join('; ') } : {}), results }
}

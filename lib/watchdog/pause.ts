import type { CheckResult } from '../notify/alerts.ts'

// When the watchdog must keep its hands off the containers: a runbook holds the deploy lock (a restore
// stops the app on purpose and replaces /data; a deploy stops and starts colours), or an on-call set
// the maintenance flag. It then neither judges nor restarts containers; nginx, the domains, disk and
// memory are still checked. Pure: the caller reads the files.

/** A lock heartbeat older than this is stale (the same bound as lib/run/lock.ts's STALE_AFTER_S). */
export const LOCK_STALE_AFTER_S = 90
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

function fields(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const at = line.indexOf('=')
    if (at > 0) out[line.slice(0, at).trim()] = line.slice(at + 1).trim()
  }
  return out
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
    const o = fields(lock.owner)
    const holder = `${o.runbook ?? 'a runbook'}${o.who ? ` by ${o.who}` : ''}${o.started_at ? ` since ${o.started_at}` : ''}`
    const ageS = Math.max(0, Math.round((now.getTime() - lock.heartbeatMs) / 1000))
    if (ageS <= LOCK_STALE_AFTER_S) {
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
    const f = fields(flag.text)
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

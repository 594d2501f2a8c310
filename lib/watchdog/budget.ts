import type { WatchdogConfig } from '../env/health.ts'

// How often the watchdog may restart one container: at most max_restarts within restart_window_min.
// After that it leaves the container alone and the alert says it gave up. Pure: the log is data.

/** Restart times (ISO) per check name, e.g. `container:ce-production-blue/api`. */
export type RestartLog = Record<string, string[]>

export type RestartRules = Pick<WatchdogConfig, 'maxRestarts' | 'restartWindowMin'>

/** The restarts of `key` inside the window ending at `now`, oldest first. */
export function recentRestarts(log: RestartLog, key: string, now: Date, rules: RestartRules): string[] {
  const from = now.getTime() - rules.restartWindowMin * 60_000
  return (log[key] ?? []).filter((t) => Date.parse(t) > from && Date.parse(t) <= now.getTime()).sort()
}

export function mayRestart(log: RestartLog, key: string, now: Date, rules: RestartRules): boolean {
  return recentRestarts(log, key, now, rules).length < rules.maxRestarts
}

/** The log with a restart of `key` at `now`, and every entry outside the window dropped. */
export function recordRestart(log: RestartLog, key: string, now: Date, rules: RestartRules): RestartLog {
  return pruneRestarts({ ...log, [key]: [...(log[key] ?? []), now.toISOString()] }, now, rules)
}

export function pruneRestarts(log: RestartLog, now: Date, rules: RestartRules): RestartLog {
  const out: RestartLog = {}
  for (const key of Object.keys(log).sort()) {
    const recent = recentRestarts(log, key, now, rules)
    if (recent.length > 0) out[key] = recent
  }
  return out
}

/** What the alert says about the budget: `restarted (2 of 3 in 30 min)` or why it did not. */
export function budgetNote(used: number, rules: RestartRules, restarted: boolean): string {
  if (rules.maxRestarts === 0) return 'not restarted (watchdog.max_restarts is 0)'
  const window = `in ${rules.restartWindowMin} min`
  return restarted
    ? `restarted (${used} of ${rules.maxRestarts} ${window})`
    : `gave up after ${used} restart${used === 1 ? '' : 's'} ${window}: left alone`
}

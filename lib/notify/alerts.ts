import type { AlertRules } from '../env/health.ts'
import type { NotifyEvent } from './format.ts'

// The alert state machine, pure: results of one run of checks in, the next state and what to send out.
// A check alerts after `failureThreshold` consecutive failed runs, reminds every `reminderMin` while it
// still fails, and sends one recovery notice when it passes again. One run sends at most one notice
// about failures and one about recoveries, however many checks changed (no storm).

export interface CheckResult {
  /** Stable name: `container:ce-production-blue/api`, `http:app.example.com`, `nginx`, `disk:/`... */
  check: string
  ok: boolean
  detail: string
  /** The on-call page to open when it fails, e.g. docs/runbooks/health.md. */
  runbook: string
  /**
   * Consecutive failures before this result alerts, instead of alerts.failure_threshold. The watchdog
   * sets 1 when it restarted a container: the restart hides the failure from the next run, so a
   * self-healed failure would otherwise never reach the threshold and nobody would hear of it.
   */
  threshold?: number
}

export interface CheckState {
  /** Consecutive failed runs. */
  failures: number
  /** ISO time of the first failure of this streak. */
  since: string
  alerted: boolean
  /** ISO time this check last went out in an alert or reminder; null: due now (a delivery failed). */
  lastSent: string | null
  detail: string
  runbook: string
}

/** Only failing checks are kept: a check that passes has nothing to remember. */
export interface AlertState {
  checks: Record<string, CheckState>
}

export interface NoticeCheck {
  check: string
  detail: string
  runbook: string
  since: string
  /** In an alert: this check is why it goes out (the others are still failing from before). */
  fresh: boolean
}

export interface Notice {
  kind: 'alert' | 'reminder' | 'recovery'
  at: string
  checks: NoticeCheck[]
  /** A recovery after which no check is failing any more (PagerDuty resolves the incident then). */
  allClear?: boolean
}

export interface EvaluateOptions {
  /**
   * `results` are some of the checks only (another runner's view): checks that are not in them are
   * kept as they are. By default `results` are all the checks, and one that is gone (a colour no
   * longer live, a container removed) is closed: a recovery if it had alerted.
   */
  partial?: boolean
}

export const emptyAlertState = (): AlertState => ({ checks: {} })

export function evaluate(
  state: AlertState,
  results: CheckResult[],
  now: Date,
  cfg: AlertRules,
  options: EvaluateOptions = {},
): { state: AlertState; notices: Notice[] } {
  const at = now.toISOString()
  const next: Record<string, CheckState> = {}
  const fresh = new Set<string>()
  const recovered: NoticeCheck[] = []
  const seen = new Set(results.map((r) => r.check))

  for (const r of results) {
    const prev = state.checks[r.check]
    if (r.ok) {
      if (prev?.alerted) recovered.push({ ...pick(r.check, prev), detail: r.detail })
      continue
    }
    const failures = (prev?.failures ?? 0) + 1
    const threshold = Math.max(1, r.threshold ?? cfg.failureThreshold)
    const alerted = prev?.alerted === true || failures >= threshold
    if (alerted && !prev?.alerted) fresh.add(r.check)
    next[r.check] = {
      failures,
      since: prev?.since ?? at,
      alerted,
      lastSent: prev?.lastSent ?? null,
      detail: r.detail,
      runbook: r.runbook,
    }
  }
  for (const [check, prev] of Object.entries(state.checks)) {
    if (seen.has(check)) continue
    if (options.partial) next[check] = { ...prev }
    else if (prev.alerted) recovered.push({ ...pick(check, prev), detail: 'no longer checked' })
  }

  const notices: Notice[] = []
  // Checks carried over from another runner (partial) are that runner's to remind about.
  const failing = Object.entries(next).filter(([check, s]) => s.alerted && seen.has(check))
  const reminderDue = failing.some(([, s]) => isDue(s.lastSent, now, cfg.reminderMin))
  if (fresh.size > 0 || reminderDue) {
    const checks = failing
      .map(([check, s]) => ({ ...pick(check, s), fresh: fresh.has(check) }))
      .sort((a, b) => Number(b.fresh) - Number(a.fresh) || a.since.localeCompare(b.since))
    notices.push({ kind: fresh.size > 0 ? 'alert' : 'reminder', at, checks })
    // Every failing check was in that notice: the reminder clock starts again for all of them.
    for (const [, s] of failing) s.lastSent = at
  }
  if (recovered.length > 0)
    notices.push({
      kind: 'recovery',
      at,
      checks: recovered,
      allClear: !Object.values(next).some((s) => s.alerted),
    })
  return { state: { checks: next }, notices }
}

function pick(check: string, s: CheckState): NoticeCheck {
  return { check, detail: s.detail, runbook: s.runbook, since: s.since, fresh: false }
}

function isDue(lastSent: string | null, now: Date, reminderMin: number): boolean {
  return lastSent === null || now.getTime() - Date.parse(lastSent) >= reminderMin * 60_000
}

/**
 * A notice about failures reached no webhook: its checks become due again, so the next run sends them
 * (as a reminder) instead of waiting reminder_min. A lost recovery is not retried.
 */
export function markUndelivered(state: AlertState, notice: Notice): AlertState {
  if (notice.kind === 'recovery') return state
  const checks = { ...state.checks }
  for (const c of notice.checks) {
    const s = checks[c.check]
    if (s) checks[c.check] = { ...s, lastSent: null }
  }
  return { checks }
}

/** `container:ce-x-blue/api` -> `container ce-x-blue/api`; `nginx` stays `nginx`. */
export function checkLabel(check: string): string {
  // outside:production/api.example.com -> production's api.example.com (seen from here)
  const outside = /^outside:([^/]+)\/(.+)$/.exec(check)
  if (outside) return `${outside[1]}'s ${outside[2]} (seen from outside)`
  return check.replace(':', ' ')
}

const verb = (check: string) => (/^(disk|memory)\b/.test(check) ? 'low' : 'down')

/** `12:03 UTC` on the same UTC day as `now`, else `2026-03-01 12:03 UTC`. */
export function utcTime(iso: string, now: Date): string {
  const t = new Date(iso).toISOString()
  const sameDay = t.slice(0, 10) === now.toISOString().slice(0, 10)
  return `${sameDay ? '' : `${t.slice(0, 10)} `}${t.slice(11, 16)} UTC`
}

export function duration(fromIso: string, to: Date): string {
  const s = Math.max(0, Math.round((to.getTime() - Date.parse(fromIso)) / 1000))
  if (s < 60) return `${s} s`
  const min = Math.round(s / 60)
  if (min < 60) return `${min} min`
  const h = Math.floor(min / 60)
  return h < 48 ? `${h} h ${min % 60} min` : `${Math.floor(h / 24)} days ${h % 24} h`
}

/** `since 12:03 UTC`, and for how long once it is a minute or more. */
function sinceText(since: string, now: Date): string {
  const long = now.getTime() - Date.parse(since) >= 60_000
  return `since ${utcTime(since, now)}${long ? ` (${duration(since, now)})` : ''}`
}

/** A notice as lib/notify/send.ts sends it: what failed, since when, which page to open. */
export function formatNotice(notice: Notice, env: string, who?: string): NotifyEvent {
  const now = new Date(notice.at)
  const [first] = notice.checks
  const n = notice.checks.length
  const names = notice.checks.map((c) => checkLabel(c.check)).join(', ')
  const earliest = notice.checks.map((c) => c.since).sort()[0] ?? notice.at
  let title: string
  let details: string[]
  if (notice.kind === 'recovery') {
    title =
      n === 1 && first
        ? `RECOVERED ${env}: ${checkLabel(first.check)} ok again after ${duration(first.since, now)} (${verb(first.check)} since ${utcTime(first.since, now)})`
        : `RECOVERED ${env}: ${n} checks ok again: ${names}`
    details = notice.checks.map(
      (c) =>
        `${checkLabel(c.check)}: ok again (${c.detail}) · ${verb(c.check)} since ${utcTime(c.since, now)}, for ${duration(c.since, now)} · runbook: ${c.runbook}`,
    )
  } else {
    const head = notice.kind === 'alert' ? 'ALERT' : 'STILL FAILING'
    title =
      n === 1 && first
        ? `${head} ${env}: ${checkLabel(first.check)} ${verb(first.check)} since ${utcTime(first.since, now)}`
        : `${head} ${env}: ${n} checks failing since ${utcTime(earliest, now)}: ${names}`
    details = notice.checks.map(
      (c) =>
        `${notice.kind === 'alert' && !c.fresh ? '(still) ' : ''}${checkLabel(c.check)}: ${c.detail} · ${sinceText(c.since, now)} · runbook: ${c.runbook}`,
    )
  }
  return {
    event: 'alert',
    env,
    outcome: notice.kind === 'recovery' ? 'success' : 'failed',
    // An alert pages; a reminder of a page already sent does not; a recovery ends the page when all is ok.
    severity: notice.kind === 'alert' ? 'critical' : notice.kind === 'reminder' ? 'warning' : 'info',
    resolves: notice.kind === 'recovery' && notice.allClear !== false,
    title,
    details,
    runbook: [...new Set(notice.checks.map((c) => c.runbook))].join(', '),
    ...(who ? { who } : {}),
  }
}

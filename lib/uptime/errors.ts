import { round, type Window } from './availability.ts'
import type { Probe } from './history.ts'

// Error tracking over the last window (env.watchdog.restartWindowMin minutes, 30 by default), from the
// counts each host reports (lib/commands/uptime.ts errorCountsScript) and the history:
// - nginx 5xx: counted per minute from the access log's status; ALERT when any minute of the window has
//   more than env.alerts.max5xxPerMin (the peak minute, not the window's average: a burst is the alert).
// - restarts per container, ALERT above env.watchdog.maxRestarts. Two disjoint counts, added:
//   Docker's RestartCount (restarts by its restart policy; `docker restart` does not increment it,
//   moby/moby#37596) counted when the container's current run started inside the window (RestartCount
//   is since the container was created: an upper bound), and the watchdog's restarts and starts in the
//   history (source "watchdog", check "container:<project>/<service>", a detail with its budget note
//   "restarted (<n> of <max> in <w> min)", lib/watchdog/budget.ts; "gave up after ..." and "not
//   restarted" are not restarts).
// - app error lines (`docker logs --since` | grep -ciE 'error|panic') per app container, ALERT above
//   maxErrorLinesPerMin on average over the window (only a total is counted).

export interface ContainerRestarts {
  /** <compose project>/<service> */
  name: string
  restartCount: number
  startedAt: string
  status: string
}

export interface HostErrorCounts {
  host: string
  /** The access log read (the env's own when it exists, else nginx's default). */
  log: string | null
  requests: number
  /** Lines with no recognizable time or status. */
  unparsed: number
  /** 5xx per minute (host-local time, YYYY-MM-DDTHH:MM), minutes without any left out, ascending. */
  fivexx: { minute: string; count: number }[]
  containers: ContainerRestarts[]
  errorLines: { name: string; lines: number }[]
  unreadable: string[]
}

export interface ErrorThresholds {
  windowMin: number
  max5xxPerMin: number
  maxRestarts: number
  maxErrorLinesPerMin: number
}

/** No env key for it (lib/env/health.ts has none): the same order as alerts.max_5xx_per_min's default. */
export const DEFAULT_MAX_ERROR_LINES_PER_MIN = 10

export interface ErrorFinding {
  kind: '5xx' | 'restarts' | 'error-lines'
  host: string
  /** `nginx` or `<project>/<service>` */
  subject: string
  /** 5xx: the peak minute; restarts: restarts in the window; error-lines: lines in the window. */
  value: number
  /** Same unit as value: above it alerts. */
  limit: number
  alert: boolean
  message: string
}

/** Parses the output of errorCountsScript; unknown lines are ignored. */
export function parseErrorCounts(text: string, host: string): HostErrorCounts {
  const out: HostErrorCounts = {
    host,
    log: null,
    requests: 0,
    unparsed: 0,
    fivexx: [],
    containers: [],
    errorLines: [],
    unreadable: [],
  }
  const int = (s: string | undefined) => (s && /^\d+$/.test(s) ? Number(s) : undefined)
  for (const line of text.split('\n')) {
    const [kind, a, b, c, d] = line.trim().split(/\s+/)
    if (kind === 'log' && a) out.log = a
    else if (kind === 'requests') out.requests = int(a) ?? 0
    else if (kind === 'unparsed') out.unparsed = int(a) ?? 0
    else if (kind === 'unreadable' && a) out.unreadable.push(a)
    else if (kind === '5xx' && a && /^\d{12}$/.test(a) && int(b) !== undefined) {
      const minute = `${a.slice(0, 4)}-${a.slice(4, 6)}-${a.slice(6, 8)}T${a.slice(8, 10)}:${a.slice(10, 12)}`
      out.fivexx.push({ minute, count: int(b) ?? 0 })
    } else if (kind === 'restarts' && a && int(b) !== undefined)
      out.containers.push({ name: a, restartCount: int(b) ?? 0, startedAt: c ?? '', status: d ?? '' })
    else if (kind === 'errors' && a && int(b) !== undefined)
      out.errorLines.push({ name: a, lines: int(b) ?? 0 })
  }
  out.fivexx.sort((x, y) => (x.minute < y.minute ? -1 : x.minute > y.minute ? 1 : 0))
  return out
}

/** The watchdog's note on a container it restarted (or started): lib/watchdog/budget.ts budgetNote. */
export const WATCHDOG_RESTART = /\brestarted \(\d+ of \d+ in \d+ min\)/

/** The watchdog's restarts per `<host>\t<project>/<service>` within the window. */
export function watchdogRestarts(probes: Probe[], window: Window): Map<string, number> {
  const counts = new Map<string, number>()
  for (const p of probes) {
    if (
      p.source !== 'watchdog' ||
      !p.check.startsWith('container:') ||
      !WATCHDOG_RESTART.test(p.detail ?? '')
    )
      continue
    if (p.at < window.from || p.at >= window.to) continue
    const key = `${p.host}\t${p.check.slice('container:'.length)}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return counts
}

/**
 * One finding per host for nginx (always), and one per container with restarts or error lines; `alert`
 * marks those above their threshold. `window` is the last windowMin minutes, for the restarts.
 */
export function errorFindings(
  hosts: HostErrorCounts[],
  probes: Probe[],
  window: Window,
  t: ErrorThresholds,
): ErrorFinding[] {
  const findings: ErrorFinding[] = []
  const fromHistory = watchdogRestarts(probes, window)
  const last = `in the last ${t.windowMin} min`
  for (const h of hosts) {
    const total = h.fivexx.reduce((n, m) => n + m.count, 0)
    const peak = h.fivexx.reduce<{ minute: string; count: number } | undefined>(
      (best, m) => (!best || m.count > best.count ? m : best),
      undefined,
    )
    findings.push({
      kind: '5xx',
      host: h.host,
      subject: 'nginx',
      value: peak?.count ?? 0,
      limit: t.max5xxPerMin,
      alert: (peak?.count ?? 0) > t.max5xxPerMin,
      message: `nginx 5xx: ${total} of ${h.requests} requests ${last}${peak ? `, peak ${peak.count}/min at ${peak.minute}` : ''} (limit ${t.max5xxPerMin}/min)`,
    })

    const names = new Set([
      ...h.containers.map((c) => c.name),
      ...[...fromHistory.keys()]
        .filter((k) => k.startsWith(`${h.host}\t`))
        .map((k) => k.split('\t')[1] ?? ''),
    ])
    for (const name of [...names].sort()) {
      const c = h.containers.find((x) => x.name === name)
      const started = c ? Date.parse(c.startedAt) : Number.NaN
      const docker = c && started >= window.from && started < window.to ? c.restartCount : 0
      const watchdog = fromHistory.get(`${h.host}\t${name}`) ?? 0
      const value = docker + watchdog
      if (value === 0) continue
      findings.push({
        kind: 'restarts',
        host: h.host,
        subject: name,
        value,
        limit: t.maxRestarts,
        alert: value > t.maxRestarts,
        message: `${name} restarted ${value} time(s) ${last} (watchdog ${watchdog}, Docker ${docker}; limit ${t.maxRestarts})`,
      })
    }

    for (const e of [...h.errorLines].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (e.lines === 0) continue
      const limit = t.maxErrorLinesPerMin * t.windowMin
      findings.push({
        kind: 'error-lines',
        host: h.host,
        subject: e.name,
        value: e.lines,
        limit,
        alert: e.lines > limit,
        message: `${e.name}: ${e.lines} error line(s) ${last} (${round(e.lines / t.windowMin, 1)}/min; limit ${t.maxErrorLinesPerMin}/min)`,
      })
    }
  }
  return findings
}

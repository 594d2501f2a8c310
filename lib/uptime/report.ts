import {
  type Availability,
  availability,
  DEFAULT_BUCKET_S,
  DEFAULT_MAX_GAP_S,
  DEFAULT_TARGET_PCT,
  type Window,
} from './availability.ts'
import { type ErrorFinding, type ErrorThresholds, errorFindings, type HostErrorCounts } from './errors.ts'
import { CLOCK_TOLERANCE_S, type History, mergeHistories } from './history.ts'
import { DEFAULT_MIN_SAMPLES, type Latency, latency, previousWindow } from './latency.ts'

// The whole `make uptime` report, from the parsed histories and error counts of every host. Pure.

const DAY_MS = 86_400_000
/** Below this coverage of the window a service gets a warning: is the watchdog running? */
export const MIN_COVERAGE_PCT = 90

export interface ReportOptions {
  bucketS?: number
  maxGapS?: number
  targetPct?: number
  clockToleranceS?: number
  minSamples?: number
}

export interface ReportInput {
  env: string
  /** ms since the epoch: the window ends here. */
  now: number
  days: number
  services: { service: string; domain: string }[]
  histories: { host: string; history: History }[]
  errors: HostErrorCounts[]
  /** Hosts that did not answer (their history was not read): a dead droplet has no host view. */
  unreachable?: { host: string; reason: string }[]
  /**
   * The outside view: the health histories of the env whose watchdog probes this one's domains from
   * outside (its `outside:<env>/<domain>` checks; a dead droplet is down there, not unknown), or why
   * they could not be read. Absent: the env has no outside_view.
   */
  outside?: OutsideInput
  /** env.alerts.p95DegradeFactor */
  p95DegradeFactor: number
  errorThresholds: ErrorThresholds
  options?: ReportOptions
}

export interface HostHistoryStats {
  host: string
  lines: number
  probes: number
  malformed: number
  clockBackwards: number
  future: number
  unreadable: string[]
}

export interface OutsideInput {
  /** The watching env. */
  from: string
  histories: { host: string; history: History }[]
  /** Why the histories could not be read (the report then has the host view only). */
  error?: string
}

export interface ServiceReport {
  service: string
  domain: string
  availability: Availability
  latency: Latency
  /** The same service seen from outside (absent without an outside view). */
  outside?: { availability: Availability; latency: Latency }
}

/** The outside probes' check name, as the watching env's watchdog writes it (lib/commands/watchdog.ts). */
export const outsideCheck = (env: string, domain: string) => `outside:${env}/${domain}`

interface IsoWindow {
  from: string
  to: string
}

export interface UptimeReport {
  env: string
  generatedAt: string
  days: number
  window: IsoWindow
  previousWindow: IsoWindow
  errorWindow: IsoWindow & { minutes: number }
  rules: Required<ReportOptions> & { p95DegradeFactor: number } & ErrorThresholds
  history: HostHistoryStats[]
  /** Hosts that did not answer: no history of theirs is in the host view. */
  unreachable: { host: string; reason: string }[]
  /** Where the outside view came from: the watching env and its hosts' history files. */
  outside?: { from: string; history: HostHistoryStats[]; error?: string }
  services: ServiceReport[]
  errors: ErrorFinding[]
  /** What fails the run (exit 4) and is notified: budget exhausted, p95 degraded, thresholds exceeded. */
  alerts: string[]
  /** Worth a look, never failing: malformed lines, clock jumps, little data, unreadable logs. */
  warnings: string[]
}

/** The windows of a report ending at `now`: the last `days` days, and the same length before. */
export function reportWindows(now: number, days: number): { window: Window; previous: Window } {
  const window = { from: now - days * DAY_MS, to: now }
  return { window, previous: previousWindow(window) }
}

/**
 * The first UTC day the host must send history from: the previous window's start, less the longest
 * hold, less a day of margin for `at` stamps written with an offset (compared as text on the host).
 */
export function historySinceDay(now: number, days: number, maxGapS = DEFAULT_MAX_GAP_S): string {
  const { previous } = reportWindows(now, days)
  return new Date(previous.from - maxGapS * 1000 - DAY_MS).toISOString().slice(0, 10)
}

const iso = (w: Window): IsoWindow => ({
  from: new Date(w.from).toISOString(),
  to: new Date(w.to).toISOString(),
})

export function buildReport(input: ReportInput): UptimeReport {
  const rules = {
    bucketS: input.options?.bucketS ?? DEFAULT_BUCKET_S,
    maxGapS: input.options?.maxGapS ?? DEFAULT_MAX_GAP_S,
    targetPct: input.options?.targetPct ?? DEFAULT_TARGET_PCT,
    clockToleranceS: input.options?.clockToleranceS ?? CLOCK_TOLERANCE_S,
    minSamples: input.options?.minSamples ?? DEFAULT_MIN_SAMPLES,
    p95DegradeFactor: input.p95DegradeFactor,
    ...input.errorThresholds,
  }
  const { window, previous } = reportWindows(input.now, input.days)
  const errorWindow = { from: input.now - input.errorThresholds.windowMin * 60_000, to: input.now }
  const { probes, future } = mergeHistories(
    input.histories.map((h) => h.history),
    input.now,
    rules.clockToleranceS,
  )
  const history = historyStats(input.histories, future)
  const seen = input.outside
    ? mergeHistories(
        input.outside.histories.map((h) => h.history),
        input.now,
        rules.clockToleranceS,
      )
    : undefined
  const view = (all: typeof probes, check: string) => ({
    availability: availability(all, check, window, rules),
    latency: latency(all, check, window, { factor: input.p95DegradeFactor, minSamples: rules.minSamples }),
  })
  const services: ServiceReport[] = input.services.map(({ service, domain }) => ({
    service,
    domain,
    ...view(probes, `http:${domain}`),
    ...(seen ? { outside: view(seen.probes, outsideCheck(input.env, domain)) } : {}),
  }))
  const outside =
    input.outside && seen
      ? {
          from: input.outside.from,
          history: historyStats(input.outside.histories, seen.future),
          ...(input.outside.error ? { error: input.outside.error } : {}),
        }
      : undefined
  const errors = errorFindings(input.errors, probes, errorWindow, input.errorThresholds)
  return {
    env: input.env,
    generatedAt: new Date(input.now).toISOString(),
    days: input.days,
    window: iso(window),
    previousWindow: iso(previous),
    errorWindow: { ...iso(errorWindow), minutes: input.errorThresholds.windowMin },
    rules,
    history,
    unreachable: input.unreachable ?? [],
    ...(outside ? { outside } : {}),
    services,
    errors,
    alerts: alertsOf(services, errors, input.days, outside?.from),
    warnings: [
      ...(input.unreachable ?? []).map(
        (u) =>
          `${u.host} did not answer: its history is not in the host view${outside ? ' (the outside view shows what visitors saw)' : ''}: ${u.reason}`,
      ),
      ...warningsOf(history, services, input.errors, outside),
    ],
  }
}

function historyStats(histories: { host: string; history: History }[], future: number[]): HostHistoryStats[] {
  return histories.map(({ host, history: h }, i) => ({
    host,
    lines: h.lines,
    probes: h.probes.length,
    malformed: h.malformed,
    clockBackwards: h.clockBackwards,
    future: future[i] ?? 0,
    unreadable: h.unreadable,
  }))
}

function budgetAlert(service: string, domain: string, a: Availability, days: number, seenFrom?: string) {
  const b = a.budget
  const where = seenFrom ? ` seen from outside (${seenFrom}'s watchdog)` : ''
  return `${service} (${domain})${where}: error budget exhausted: ${b.usedMin} of ${b.allowedMin} min of downtime allowed at ${b.targetPct}% over ${days} days (${b.usedPct}%)`
}

function alertsOf(
  services: ServiceReport[],
  errors: ErrorFinding[],
  days: number,
  outsideFrom?: string,
): string[] {
  const alerts: string[] = []
  for (const { service, domain, availability: a, latency: l, outside } of services) {
    if (a.budget.exhausted) alerts.push(budgetAlert(service, domain, a, days))
    if (outside?.availability.budget.exhausted)
      alerts.push(budgetAlert(service, domain, outside.availability, days, outsideFrom))
    if (l.degraded)
      alerts.push(
        `${service} (${domain}): p95 ${l.current.p95} ms is more than ${l.factor}× its baseline ${l.baselineP95} ms (the previous ${days} days)`,
      )
  }
  for (const f of errors) if (f.alert) alerts.push(`${f.host}: ${f.message}`)
  return alerts
}

function warningsOf(
  history: HostHistoryStats[],
  services: ServiceReport[],
  errors: HostErrorCounts[],
  outside?: UptimeReport['outside'],
): string[] {
  const warnings: string[] = []
  for (const h of [...history, ...(outside?.history ?? [])]) {
    if (h.malformed) warnings.push(`${h.host}: ${h.malformed} malformed or cut-short history line(s) skipped`)
    if (h.clockBackwards)
      warnings.push(
        `${h.host}: the history's clock jumped back ${h.clockBackwards} time(s) (lines sorted by time)`,
      )
    if (h.future)
      warnings.push(`${h.host}: ${h.future} probe(s) stamped in the future ignored (a clock ahead)`)
    for (const path of h.unreadable) warnings.push(`${h.host}: could not read ${path}`)
  }
  for (const { service, availability: a } of services) {
    if (a.coveragePct < MIN_COVERAGE_PCT)
      warnings.push(
        `${service}: probes cover ${a.coveragePct}% of the window (${a.unknownMin} min without data): is the watchdog running?`,
      )
  }
  if (outside?.error) warnings.push(`the outside view (${outside.from}) could not be read: ${outside.error}`)
  else if (outside)
    for (const { service, outside: o } of services)
      if (o && o.availability.coveragePct < MIN_COVERAGE_PCT)
        warnings.push(
          `${service} seen from outside: probes cover ${o.availability.coveragePct}% of the window (${o.availability.unknownMin} min without data): is ${outside.from}'s watchdog running, and does its watchdog.watch name this env?`,
        )
  for (const e of errors) {
    if (!e.log) warnings.push(`${e.host}: no nginx access log found`)
    if (e.unparsed) warnings.push(`${e.host}: ${e.unparsed} access log line(s) without a time or status`)
    for (const path of e.unreadable) warnings.push(`${e.host}: could not read ${path}`)
  }
  return warnings
}

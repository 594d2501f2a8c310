import type { Probe } from './history.ts'

// Availability of one service over a window [from, to), from the probes of its `http:<domain>`
// check (every source and host merged). The rules, in order:
//
// 1. Overlap: probes are grouped in buckets of `bucketS` (60 s) aligned on the Unix epoch (UTC
//    minutes). Each non-empty bucket is ONE sample: at the time of its earliest probe, and DOWN if ANY
//    probe in it failed ("any failure = down for that bucket": conservative for a single droplet).
//    Two hosts or sources probing the same minute, a line written twice, or lines out of order never
//    count twice, and the result does not depend on file order.
// 2. Hold: a sample's state holds from its time until the next sample, but no longer than `maxGapS`
//    (150 s, 2.5 watchdog intervals) after the bucket's LATEST probe. Time no sample covers is UNKNOWN
//    (no data: the watchdog stopped, the host was down with it, a clock jumped forward): reported on
//    its own, counted neither as up nor as down.
// 3. Window: the timeline is cut to [from, to). A sample before `from` carries into the window (for at
//    most maxGapS); a probe at or after `to` is ignored. Probes stamped in the future were dropped when
//    the histories were merged (history.ts).
// 4. availability % = up / (up + down) (null when there is no data); the 99.9% error budget is of the
//    whole window (a calendar SLO): allowed = window × 0.1%, used = downtime.

export interface Window {
  /** ms since the epoch, inclusive. */
  from: number
  /** ms since the epoch, exclusive. */
  to: number
}

export interface AvailabilityOptions {
  /** Probes in one bucket are one sample (the overlap rule). */
  bucketS?: number
  /** Longest a sample holds without a newer one. */
  maxGapS?: number
  /** The availability objective, in percent. */
  targetPct?: number
}

export const DEFAULT_BUCKET_S = 60
export const DEFAULT_MAX_GAP_S = 150
export const DEFAULT_TARGET_PCT = 99.9

export type State = 'up' | 'down' | 'unknown'

export interface Segment {
  from: number
  to: number
  state: State
}

export interface Period {
  from: string
  to: string
  minutes: number
}

export interface Budget {
  targetPct: number
  allowedMin: number
  usedMin: number
  /** Negative once overspent. */
  remainingMin: number
  usedPct: number
  /** Downtime reached the allowance. */
  exhausted: boolean
}

export interface Availability {
  check: string
  windowMin: number
  /** Probes of the check behind the timeline (in the window, or carried into it). */
  probes: number
  /** Samples (buckets) behind the timeline. */
  samples: number
  upMin: number
  downMin: number
  unknownMin: number
  /** up / (up + down), percent; null without data. */
  availabilityPct: number | null
  /** (up + down) / window, percent: how much of the window the probes cover. */
  coveragePct: number
  budget: Budget
  outages: Period[]
  gaps: Period[]
  /** Per UTC day of the window (the first and last may be partial): the status page's bars. */
  daily: DayAvailability[]
  /** The state at the end of the window (now): what the status page says at the top. */
  lastState: State
}

export interface DayAvailability {
  /** YYYY-MM-DD, UTC. */
  day: string
  upMin: number
  downMin: number
  unknownMin: number
  /** up / (up + down), percent; null without data that day. */
  availabilityPct: number | null
}

const DAY_MS = 86_400_000

/** The segments cut at UTC midnights: minutes up, down and unknown per day, oldest first. */
export function dailyOf(segments: Segment[]): DayAvailability[] {
  const days = new Map<number, { up: number; down: number; unknown: number }>()
  for (const seg of segments) {
    for (let from = seg.from; from < seg.to; ) {
      const day = Math.floor(from / DAY_MS)
      const to = Math.min(seg.to, (day + 1) * DAY_MS)
      const d = days.get(day) ?? { up: 0, down: 0, unknown: 0 }
      d[seg.state] += to - from
      days.set(day, d)
      from = to
    }
  }
  return [...days.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([day, d]) => ({
      day: new Date(day * DAY_MS).toISOString().slice(0, 10),
      upMin: minutes(d.up),
      downMin: minutes(d.down),
      unknownMin: minutes(d.unknown),
      availabilityPct: d.up + d.down > 0 ? round((d.up / (d.up + d.down)) * 100, 3) : null,
    }))
}

interface Sample {
  at: number
  last: number
  down: boolean
  probes: number
}

/** Merges the probes of each bucket into one sample (rule 1); probes need not be sorted. */
export function samplesOf(probes: Probe[], bucketS = DEFAULT_BUCKET_S): Sample[] {
  const bucketMs = bucketS * 1000
  const buckets = new Map<number, Sample>()
  for (const p of probes) {
    const key = Math.floor(p.at / bucketMs)
    const s = buckets.get(key)
    if (!s) buckets.set(key, { at: p.at, last: p.at, down: !p.ok, probes: 1 })
    else {
      s.at = Math.min(s.at, p.at)
      s.last = Math.max(s.last, p.at)
      s.down ||= !p.ok
      s.probes++
    }
  }
  return [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([, s]) => s)
}

/** The window as consecutive up/down/unknown segments (rules 2 and 3), adjacent equal states joined. */
export function timeline(
  probes: Probe[],
  check: string,
  window: Window,
  options: AvailabilityOptions = {},
): { segments: Segment[]; probes: number; samples: number } {
  const maxGapMs = (options.maxGapS ?? DEFAULT_MAX_GAP_S) * 1000
  const relevant = probes.filter(
    (p) => p.check === check && p.at >= window.from - maxGapMs && p.at < window.to,
  )
  const samples = samplesOf(relevant, options.bucketS)
  const segments: Segment[] = []
  const push = (from: number, to: number, state: State) => {
    if (to <= from) return
    const last = segments[segments.length - 1]
    if (last && last.state === state && last.to === from) last.to = to
    else segments.push({ from, to, state })
  }
  let cursor = window.from
  let used = 0
  let count = 0
  for (const [i, s] of samples.entries()) {
    const next = samples[i + 1]?.at ?? Number.POSITIVE_INFINITY
    const start = Math.max(s.at, window.from)
    const end = Math.min(next, s.last + maxGapMs, window.to)
    if (end <= start) continue
    push(cursor, start, 'unknown')
    push(start, end, s.down ? 'down' : 'up')
    cursor = end
    used += s.probes
    count++
  }
  push(cursor, window.to, 'unknown')
  return { segments, probes: used, samples: count }
}

export function availability(
  probes: Probe[],
  check: string,
  window: Window,
  options: AvailabilityOptions = {},
): Availability {
  const { segments, probes: used, samples } = timeline(probes, check, window, options)
  const total = (state: State) =>
    segments.filter((s) => s.state === state).reduce((n, s) => n + (s.to - s.from), 0)
  const upMs = total('up')
  const downMs = total('down')
  const windowMs = window.to - window.from
  const period = (s: Segment): Period => ({
    from: new Date(s.from).toISOString(),
    to: new Date(s.to).toISOString(),
    minutes: minutes(s.to - s.from),
  })
  return {
    check,
    windowMin: minutes(windowMs),
    probes: used,
    samples,
    upMin: minutes(upMs),
    downMin: minutes(downMs),
    unknownMin: minutes(windowMs - upMs - downMs),
    availabilityPct: upMs + downMs > 0 ? round((upMs / (upMs + downMs)) * 100, 3) : null,
    coveragePct: windowMs > 0 ? round(((upMs + downMs) / windowMs) * 100, 1) : 0,
    budget: budget(windowMs, downMs, options.targetPct ?? DEFAULT_TARGET_PCT),
    outages: segments.filter((s) => s.state === 'down').map(period),
    gaps: segments.filter((s) => s.state === 'unknown').map(period),
    daily: dailyOf(segments),
    lastState: segments.at(-1)?.state ?? 'unknown',
  }
}

/** The error budget of a window: allowed downtime at `targetPct`, in whole ms, then minutes. */
export function budget(windowMs: number, downMs: number, targetPct = DEFAULT_TARGET_PCT): Budget {
  const allowedMs = Math.round((windowMs * (100 - targetPct)) / 100)
  return {
    targetPct,
    allowedMin: minutes(allowedMs),
    usedMin: minutes(downMs),
    remainingMin: minutes(allowedMs - downMs),
    usedPct: allowedMs > 0 ? round((downMs / allowedMs) * 100, 1) : downMs > 0 ? 100 : 0,
    exhausted: downMs > 0 && downMs >= allowedMs,
  }
}

export const minutes = (ms: number) => round(ms / 60000, 3)

export function round(x: number, digits: number): number {
  const f = 10 ** digits
  const r = Math.round(x * f) / f
  return Object.is(r, -0) ? 0 : r
}

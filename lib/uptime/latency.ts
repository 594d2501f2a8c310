import { round, type Window } from './availability.ts'
import type { Probe } from './history.ts'

// Latency of one service: p50/p95 of `ms` of its SUCCESSFUL http probes (a failed probe is downtime,
// counted by availability; its timeout would only swamp the percentiles). Every probe is a
// measurement: two hosts probing the same minute give two samples (no bucket merging here).
//
// Percentiles are nearest-rank: the p-th percentile of n sorted samples is the ceil(p/100 × n)-th
// smallest (always a measured value, never interpolated): n = 1 gives that sample for every p; with
// [10, 20, 30, 40], p50 = 20 and p95 = 40.
//
// Trend: this window against the previous window of the same length, in percent. Baseline of the
// degradation flag: the previous window's p95. Degraded when p95 > factor × baseline, and only with
// at least `minSamples` samples in both windows (a handful of probes says nothing about a p95).

export interface LatencyStats {
  samples: number
  p50: number | null
  p95: number | null
}

export interface DailyLatency extends LatencyStats {
  /** UTC day, YYYY-MM-DD. */
  day: string
}

export interface Latency {
  check: string
  current: LatencyStats
  previous: LatencyStats
  /** Change of this window against the previous one, percent (null without both). */
  trend: { p50Pct: number | null; p95Pct: number | null }
  baselineP95: number | null
  factor: number
  degraded: boolean
  daily: DailyLatency[]
}

export interface LatencyOptions {
  /** env.alerts.p95DegradeFactor */
  factor: number
  minSamples?: number
}

export const DEFAULT_MIN_SAMPLES = 20

/** Nearest-rank percentile of ascending `sorted` values; null when there are none. */
export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1] ?? null
}

export function stats(values: number[]): LatencyStats {
  const sorted = [...values].sort((a, b) => a - b)
  return { samples: sorted.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95) }
}

/** Successful probes of `check` with a response time, in [from, to). */
function timed(probes: Probe[], check: string, w: Window): Probe[] {
  return probes.filter(
    (p) => p.check === check && p.ok && p.ms !== undefined && p.at >= w.from && p.at < w.to,
  )
}

export function previousWindow(w: Window): Window {
  return { from: w.from - (w.to - w.from), to: w.from }
}

export function pctChange(now: number | null, before: number | null): number | null {
  if (now === null || before === null || before === 0) return null
  return round(((now - before) / before) * 100, 1)
}

export function latency(probes: Probe[], check: string, window: Window, options: LatencyOptions): Latency {
  const minSamples = options.minSamples ?? DEFAULT_MIN_SAMPLES
  const here = timed(probes, check, window)
  const current = stats(here.map((p) => p.ms ?? 0))
  const previous = stats(timed(probes, check, previousWindow(window)).map((p) => p.ms ?? 0))
  const byDay = new Map<string, number[]>()
  for (const p of here) {
    const day = new Date(p.at).toISOString().slice(0, 10)
    const values = byDay.get(day)
    if (values) values.push(p.ms ?? 0)
    else byDay.set(day, [p.ms ?? 0])
  }
  const daily = [...byDay.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([day, values]) => ({ day, ...stats(values) }))
  const baselineP95 = previous.p95
  const degraded =
    current.p95 !== null &&
    baselineP95 !== null &&
    current.samples >= minSamples &&
    previous.samples >= minSamples &&
    current.p95 > options.factor * baselineP95
  return {
    check,
    current,
    previous,
    trend: { p50Pct: pctChange(current.p50, previous.p50), p95Pct: pctChange(current.p95, previous.p95) },
    baselineP95,
    factor: options.factor,
    degraded,
    daily,
  }
}

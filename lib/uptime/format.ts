import type { UptimeReport } from './report.ts'

// The report as the terminal shows it: rows for output.ts table(). Pure.

const ms = (v: number | null) => (v === null ? 'n/a' : `${v} ms`)
const pct = (v: number | null) => (v === null ? 'n/a' : `${v > 0 ? '+' : ''}${v}%`)
const min = (v: number) => `${v.toFixed(1)} min`

export function serviceRows(report: UptimeReport): string[][] {
  return [
    [
      'service',
      'availability',
      'downtime',
      'unknown',
      'budget used',
      'p50',
      'p95',
      'p95 before',
      'trend p50/p95',
      '',
    ],
    ...report.services.map(({ service, domain, availability: a, latency: l }) => [
      `${service} (${domain})`,
      a.availabilityPct === null ? 'no data' : `${a.availabilityPct.toFixed(3)}%`,
      min(a.downMin),
      min(a.unknownMin),
      `${a.budget.usedPct}% of ${a.budget.allowedMin} min`,
      ms(l.current.p50),
      ms(l.current.p95),
      ms(l.baselineP95),
      `${pct(l.trend.p50Pct)} / ${pct(l.trend.p95Pct)}`,
      [a.budget.exhausted ? 'BUDGET EXHAUSTED' : '', l.degraded ? `P95 > ${l.factor}x` : '']
        .filter(Boolean)
        .join(', '),
    ]),
  ]
}

/** The longest outages of each service, at most `limit` each, longest first. */
export function outageLines(report: UptimeReport, limit = 5): string[] {
  return report.services.flatMap(({ service, availability: a }) => {
    const longest = [...a.outages].sort((x, y) => y.minutes - x.minutes || (x.from < y.from ? -1 : 1))
    const shown = longest
      .slice(0, limit)
      .map((o) => `${service}: down ${o.from} -> ${o.to} (${o.minutes.toFixed(1)} min)`)
    const more = longest.length - shown.length
    return more > 0 ? [...shown, `${service}: ${more} shorter outage(s) more`] : shown
  })
}

export function errorRows(report: UptimeReport): string[][] {
  return [
    ['host', 'what', 'value', 'limit', '', 'detail'],
    ...report.errors.map((f) => [
      f.host,
      f.kind === '5xx'
        ? 'nginx 5xx/min (peak)'
        : f.kind === 'restarts'
          ? `restarts ${f.subject}`
          : `error lines ${f.subject}`,
      String(f.value),
      String(f.limit),
      f.alert ? 'ALERT' : 'ok',
      f.message,
    ]),
  ]
}

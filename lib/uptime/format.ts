import type { Availability } from './availability.ts'
import type { UptimeReport } from './report.ts'

// The report as the terminal shows it: rows for output.ts table(). Pure.

const ms = (v: number | null) => (v === null ? 'n/a' : `${v} ms`)
const pct = (v: number | null) => (v === null ? 'n/a' : `${v > 0 ? '+' : ''}${v}%`)
const min = (v: number) => `${v.toFixed(1)} min`

const avail = (a: Availability) =>
  a.availabilityPct === null ? 'no data' : `${a.availabilityPct.toFixed(3)}%`

/**
 * One row per service and view: the host view (the env's own watchdog and make health), then, with an
 * outside view, the same service as the watching env's watchdog saw it (a dead droplet is down there).
 */
export function serviceRows(report: UptimeReport): string[][] {
  const from = report.outside?.from
  return [
    [
      'service',
      'view',
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
    ...report.services.flatMap(({ service, domain, availability, latency, outside }) =>
      [
        { view: 'host', a: availability, l: latency },
        ...(outside && from
          ? [{ view: `outside (${from})`, a: outside.availability, l: outside.latency }]
          : []),
      ].map(({ view, a, l }, i) => [
        i === 0 ? `${service} (${domain})` : '',
        view,
        avail(a),
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
    ),
  ]
}

/** The longest outages of each service, at most `limit` each, longest first. */
export function outageLines(report: UptimeReport, limit = 5): string[] {
  const from = report.outside?.from
  const views = report.services.flatMap(({ service, availability, outside }) => [
    { service, availability },
    ...(outside ? [{ service: `${service} seen from ${from}`, availability: outside.availability }] : []),
  ])
  return views.flatMap(({ service, availability: a }) => {
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

import type { ReleaseRecord } from '../stack/releases.ts'
import type { Availability, DayAvailability, State } from './availability.ts'
import type { DailyLatency } from './latency.ts'
import type { ServiceReport, UptimeReport } from './report.ts'

// The report as one self-contained HTML page (inline CSS and SVG, no script, nothing fetched): the
// public status page (make status-page) and the monthly report's charts (make uptime HTML=1). Per
// service: the state now, a bar of one mark per day for each view (outside first: what visitors saw),
// p95 per day; then the incidents (outages of either view) and the recent deploys. Pure: data in,
// text out; every value from the report or the records is escaped.

/** What the page says about a deploy: never who made it (a public page names no one). */
export interface DeployMark {
  id: string
  action: string
  outcome: string
  at: string
  duration_s: number
}

/** The release records' deploys and rollbacks, as the page shows them (who is left out). */
export function deployMarks(records: ReleaseRecord[]): DeployMark[] {
  return records.map(({ id, action, outcome, at, duration_s }) => ({ id, action, outcome, at, duration_s }))
}

export interface PageOptions {
  /** "ConciliaExtrato status" on the status page, "Uptime report" on the monthly one. */
  title: string
  /** Incidents and deploys listed at most (newest first). */
  limit?: number
}

export const esc = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  )

const STATE_WORD: Record<State, string> = { up: 'operational', down: 'down', unknown: 'no data' }

/** A day's mark: up at the target or better, partial down to 99%, down below, nodata without probes. */
export function dayClass(d: DayAvailability, targetPct: number): 'up' | 'partial' | 'down' | 'nodata' {
  if (d.availabilityPct === null) return 'nodata'
  if (d.availabilityPct >= targetPct) return 'up'
  return d.availabilityPct >= 99 ? 'partial' : 'down'
}

/** The state a visitor sees now: the outside view's when there is one with data, else the host's. */
export function stateNow(s: ServiceReport): State {
  const outside = s.outside?.availability.lastState
  return outside && outside !== 'unknown' ? outside : s.availability.lastState
}

const pct = (v: number | null) => (v === null ? 'no data' : `${v.toFixed(3)}%`)

function bar(a: Availability, testId: string, targetPct: number): string {
  const w = 6
  const marks = a.daily
    .map((d, i) => {
      const cls = dayClass(d, targetPct)
      const tip = `${d.day}: ${pct(d.availabilityPct)}, ${d.downMin.toFixed(1)} min down${d.unknownMin >= 1 ? `, ${d.unknownMin.toFixed(0)} min without data` : ''}`
      return `<rect class="day day-${cls}" data-day="${d.day}" x="${i * w}" y="0" width="${w - 1}" height="30" rx="1"><title>${esc(tip)}</title></rect>`
    })
    .join('')
  return `<svg class="bar" data-testid="${esc(testId)}" viewBox="0 0 ${Math.max(a.daily.length * w, w)} 30" preserveAspectRatio="none" role="img" aria-label="${esc(`availability per day: ${pct(a.availabilityPct)} over the window`)}">${marks}</svg>`
}

function viewBlock(label: string, view: string, a: Availability, testId: string, targetPct: number): string {
  return `<div class="view" data-view="${view}"><div class="view-label">${esc(label)} · <b>${pct(a.availabilityPct)}</b> · ${a.downMin.toFixed(1)} min down</div>${bar(a, testId, targetPct)}</div>`
}

/** p95 per day as an SVG line chart, one line per view, over the days of the window. */
function chart(days: string[], series: { view: string; daily: DailyLatency[] }[], testId: string): string {
  const W = 600
  const H = 120
  const pad = 30
  const values = series.flatMap((s) => s.daily.map((d) => d.p95 ?? 0))
  if (values.length === 0)
    return `<p class="no-latency" data-testid="${esc(testId)}">No latency data in the window.</p>`
  const max = Math.max(...values, 1)
  const x = (day: string) =>
    pad + (Math.max(days.indexOf(day), 0) / Math.max(days.length - 1, 1)) * (W - pad - 5)
  const y = (v: number) => H - 15 - (v / max) * (H - 25)
  const lines = series
    .filter((s) => s.daily.some((d) => d.p95 !== null))
    .map((s) => {
      const days = s.daily.filter((d) => d.p95 !== null)
      const points = days.map((d) => `${x(d.day).toFixed(1)},${y(d.p95 ?? 0).toFixed(1)}`).join(' ')
      // a dot per day too: a single day's value is a point, which a line alone does not show
      const dots = days
        .map(
          (d) =>
            `<circle class="dot-${s.view}" cx="${x(d.day).toFixed(1)}" cy="${y(d.p95 ?? 0).toFixed(1)}" r="2.5"><title>${esc(`${d.day}: p95 ${d.p95} ms (${s.view}, ${d.samples} probes)`)}</title></circle>`,
        )
        .join('')
      return `<polyline class="p95 p95-${s.view}" data-view="${s.view}" points="${points}" fill="none"><title>p95 per day (${s.view})</title></polyline>${dots}`
    })
    .join('')
  return `<svg class="chart" data-testid="${esc(testId)}" viewBox="0 0 ${W} ${H}" role="img" aria-label="p95 latency per day"><line class="axis" x1="${pad}" y1="${H - 15}" x2="${W - 5}" y2="${H - 15}"/><line class="axis" x1="${pad}" y1="5" x2="${pad}" y2="${H - 15}"/><text x="2" y="14">${Math.round(max)} ms</text><text x="2" y="${H - 15}">0</text><text x="${pad}" y="${H - 2}">${esc(days[0] ?? '')}</text><text x="${W - 5}" y="${H - 2}" text-anchor="end">${esc(days.at(-1) ?? '')}</text>${lines}</svg>`
}

function serviceBlock(s: ServiceReport, from: string | undefined, targetPct: number): string {
  const now = stateNow(s)
  const views = [
    ...(s.outside && from
      ? [
          viewBlock(
            `Seen from outside (${from})`,
            'outside',
            s.outside.availability,
            `bar-${s.service}-outside`,
            targetPct,
          ),
        ]
      : []),
    viewBlock('Seen from the host', 'host', s.availability, `bar-${s.service}-host`, targetPct),
  ]
  const days = s.availability.daily.map((d) => d.day)
  const series = [
    ...(s.outside ? [{ view: 'outside', daily: s.outside.latency.daily }] : []),
    { view: 'host', daily: s.latency.daily },
  ]
  return `<article class="service" data-service="${esc(s.service)}" data-state="${now}"><h2>${esc(s.service)} <span class="domain">${esc(s.domain)}</span> <span class="state state-${now}">${STATE_WORD[now]}</span></h2>${views.join('')}<figure>${chart(days, series, `p95-${s.service}`)}<figcaption>p95 response time per day${s.outside ? ' (solid: from outside; dashed: from the host)' : ''}</figcaption></figure></article>`
}

interface Incident {
  service: string
  view: string
  from: string
  to: string
  minutes: number
}

function incidentsOf(report: UptimeReport): Incident[] {
  const from = report.outside?.from
  return report.services
    .flatMap((s) => [
      ...(s.outside && from
        ? s.outside.availability.outages.map((o) => ({ service: s.service, view: `outside (${from})`, ...o }))
        : []),
      ...s.availability.outages.map((o) => ({ service: s.service, view: 'host', ...o })),
    ])
    .sort((a, b) => (a.from < b.from ? 1 : a.from > b.from ? -1 : 0))
}

/** A titled table, or a line saying there is nothing (either carries data-testid = `id`). */
function section(id: string, title: string, head: string[], rows: string[][], empty: string): string {
  const th = head.map((h) => `<th>${esc(h)}</th>`).join('')
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')
  const body = rows.length
    ? `<table data-testid="${id}"><thead><tr>${th}</tr></thead><tbody>${tr}</tbody></table>`
    : `<p data-testid="${id}">${esc(empty)}</p>`
  return `<section class="${id}"><h2>${esc(title)}</h2>${body}</section>`
}

/** An ISO time to the minute, as the tables show it: 2026-12-01 12:00. */
const minute = (iso: string) => iso.slice(0, 16).replace('T', ' ')

const CSS = `body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:820px;padding:24px;color:#1d2330;background:#fafbfc}
h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:0 0 10px}.meta{color:#5b6472;margin:0 0 18px}
.summary{padding:12px 16px;border-radius:6px;font-weight:600;margin:12px 0}.summary-up{background:#e3f6e8;color:#185c2b}
.summary-down{background:#fde7e7;color:#8a1c1c}.summary-unknown{background:#eef0f3;color:#444}
.service{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:14px 16px;margin:0 0 14px}
.domain{font-weight:400;color:#5b6472;font-size:14px}.state{float:right;font-size:13px;padding:2px 8px;border-radius:10px}
.state-up{background:#e3f6e8;color:#185c2b}.state-down{background:#fde7e7;color:#8a1c1c}.state-unknown{background:#eef0f3;color:#444}
.view{margin:8px 0}.view-label{font-size:13px;color:#5b6472;margin-bottom:3px}.bar{width:100%;height:30px;display:block}
.day-up{fill:#3bb273}.day-partial{fill:#f2b134}.day-down{fill:#d64545}.day-nodata{fill:#d0d5dc}
figure{margin:10px 0 0}figcaption{font-size:12px;color:#5b6472}.chart{width:100%;height:120px;display:block}
.chart text{font-size:10px;fill:#5b6472}.axis{stroke:#c5cad1}.p95{stroke-width:2}.p95-outside{stroke:#2f6fd6}
.p95-host{stroke:#8a94a3;stroke-dasharray:4 3}.dot-outside{fill:#2f6fd6}.dot-host{fill:#8a94a3}table{border-collapse:collapse;width:100%;background:#fff;font-size:14px}
th,td{text-align:left;border-bottom:1px solid #e1e4e8;padding:6px 8px}section{margin:22px 0}footer{color:#5b6472;font-size:12px}`

export function renderPage(report: UptimeReport, deploys: DeployMark[], options: PageOptions): string {
  const limit = options.limit ?? 20
  const target = report.rules.targetPct
  const states = report.services.map(stateNow)
  const summary = states.includes('down')
    ? { cls: 'down', text: `${states.filter((s) => s === 'down').length} service(s) down` }
    : states.every((s) => s === 'up')
      ? { cls: 'up', text: 'All services operational' }
      : { cls: 'unknown', text: 'Some services have no recent data' }
  const incidents = incidentsOf(report).slice(0, limit)
  const recent = [...deploys].sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0)).slice(0, limit)
  const title = `${options.title}: ${report.env}`
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title><style>${CSS}</style></head>
<body><header><h1>${esc(title)}</h1><p class="meta">The last ${report.days} days (${esc(report.window.from.slice(0, 10))} to ${esc(minute(report.window.to))} UTC), against ${target}% availability.</p>
<p class="summary summary-${summary.cls}" data-testid="summary">${esc(summary.text)}</p></header>
<section class="services">${report.services.map((s) => serviceBlock(s, report.outside?.from, target)).join('\n')}</section>
${section(
  'incidents',
  'Incidents',
  ['service', 'seen', 'from (UTC)', 'to (UTC)', 'minutes'],
  incidents.map((i) => [i.service, i.view, minute(i.from), minute(i.to), i.minutes.toFixed(1)]),
  'No incident in the window.',
)}
${section(
  'deploys',
  'Recent deploys',
  ['release', 'what', 'outcome', 'at (UTC)', 'took'],
  recent.map((d) => [d.id, d.action, d.outcome, minute(d.at), `${Math.round(d.duration_s)} s`]),
  'No deploy in the record.',
)}
<footer>Generated ${esc(report.generatedAt)} from the probe histories${report.outside ? ` of ${esc(report.env)}'s hosts and of ${esc(report.outside.from)}'s watchdog (outside)` : ` of ${esc(report.env)}'s hosts`}.</footer>
</body></html>
`
}

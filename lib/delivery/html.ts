import { esc } from '../uptime/html.ts'
import { duration, goalLines, INCIDENT_HEAD, incidentCells, pct } from './format.ts'
import type { IncidentFigures } from './incidents.ts'
import { type DeliveryMetrics, monthWindow } from './metrics.ts'
import type { MonthUptime, ViewFigures } from './uptime.ts'

// make report's HTML page: one self-contained file (inline SVG and CSS, no script, nothing fetched), every
// value from the records escaped. Two charts: deploys per day (succeeded, undone, failed) and the lead
// time of each successful deploy. Pure.

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:2rem auto;max-width:960px;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}.kpi{display:flex;gap:1rem;flex-wrap:wrap}
.kpi div{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:140px}.kpi b{display:block;font-size:1.3rem}
.ok{fill:#2e7d32}.undone{fill:#f9a825}.failed{fill:#c62828}.lead{fill:#1565c0}.axis{stroke:#999}
.met{color:#2e7d32}.missed{color:#c62828}svg{width:100%;height:auto}`

const DAY_MS = 86_400_000

/** Deploys per UTC day of the month: succeeded (not undone), undone, failed. */
export function deploysPerDay(
  m: DeliveryMetrics,
): { day: string; ok: number; undone: number; failed: number }[] {
  const { from, to } = monthWindow(m.month)
  const days: { day: string; ok: number; undone: number; failed: number }[] = []
  for (let t = from; t < to; t += DAY_MS)
    days.push({ day: new Date(t).toISOString().slice(0, 10), ok: 0, undone: 0, failed: 0 })
  for (const d of m.deploy_rows) {
    const day = days.find((x) => x.day === d.ended_at.slice(0, 10))
    if (!day) continue
    if (d.outcome !== 'success') day.failed++
    else if (d.undone_by) day.undone++
    else day.ok++
  }
  return days
}

function deployChart(m: DeliveryMetrics): string {
  const days = deploysPerDay(m)
  const max = Math.max(1, ...days.map((d) => d.ok + d.undone + d.failed))
  const w = 24
  const h = 120
  const bars = days
    .map((d, i) => {
      let y = h
      const parts = (['ok', 'undone', 'failed'] as const)
        .filter((k) => d[k] > 0)
        .map((k) => {
          const bh = (d[k] / max) * (h - 10)
          y -= bh
          return `<rect class="${k}" x="${i * w + 3}" y="${y.toFixed(1)}" width="${w - 6}" height="${bh.toFixed(1)}"><title>${esc(d.day)}: ${d[k]} ${k}</title></rect>`
        })
      return parts.join('')
    })
    .join('')
  const labels = days
    .filter((_, i) => i % 5 === 0)
    .map(
      (d) =>
        `<text x="${days.indexOf(d) * w + 3}" y="${h + 14}" font-size="10">${esc(d.day.slice(5))}</text>`,
    )
    .join('')
  return `<svg data-testid="deploys-chart" data-bars="${days.filter((d) => d.ok + d.undone + d.failed > 0).length}" viewBox="0 0 ${days.length * w} ${h + 20}" role="img" aria-label="deploys per day"><line class="axis" x1="0" y1="${h}" x2="${days.length * w}" y2="${h}"/>${bars}${labels}</svg>`
}

function leadChart(m: DeliveryMetrics): string {
  const leads = m.deploy_rows.filter((d) => d.lead_time_s !== null)
  if (leads.length === 0)
    return '<p data-testid="lead-chart">No lead time: the deploys had no COMMITTED_AT=.</p>'
  const max = Math.max(...leads.map((d) => d.lead_time_s as number))
  const w = 16
  const h = 120
  const bars = leads
    .map((d, i) => {
      const bh = Math.max(1, ((d.lead_time_s as number) / max) * (h - 10))
      return `<rect class="lead" x="${i * w + 2}" y="${(h - bh).toFixed(1)}" width="${w - 4}" height="${bh.toFixed(1)}"><title>${esc(d.release ?? '')} ${esc(d.ended_at)}: ${esc(duration(d.lead_time_s))}</title></rect>`
    })
    .join('')
  return `<svg data-testid="lead-chart" data-bars="${leads.length}" viewBox="0 0 ${Math.max(leads.length * w, 100)} ${h + 4}" role="img" aria-label="lead time per deploy"><line class="axis" x1="0" y1="${h}" x2="${leads.length * w}" y2="${h}"/>${bars}</svg>`
}

const cell = (v: ViewFigures | undefined) =>
  v
    ? `${v.availability_pct === null ? 'no data' : `${v.availability_pct}%`} · ${v.budget_left_min.toFixed(1)} min left`
    : 'n/a'

function table(headers: string[], rows: string[][], testid: string): string {
  return `<table data-testid="${testid}"><tr>${headers.map((x) => `<th>${esc(x)}</th>`).join('')}</tr>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</table>`
}

export function renderReport(
  m: DeliveryMetrics,
  uptime: MonthUptime | undefined,
  incidents?: IncidentFigures,
): string {
  const kpis: [string, string][] = [
    ['deploys', String(m.deploys)],
    ['success rate', pct(m.success_rate)],
    ['lead time p50', duration(m.lead_time_p50_s)],
    ['change failure rate', pct(m.change_failure_rate)],
    ['time to restore', duration(m.mttr_s)],
  ]
  const goals = goalLines(m)
    .map((g) => `<li class="${g.endsWith('MISSED') ? 'missed' : 'met'}">${esc(g)}</li>`)
    .join('')
  const up = uptime
    ? table(
        ['service', 'host view', 'outside view'],
        uptime.rows.map((r) => [`${r.service} (${r.domain})`, cell(r.host), cell(r.outside)]),
        'uptime',
      ) + (uptime.notes.length ? `<ul>${uptime.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : '')
    : '<p data-testid="uptime">Not read.</p>'
  const title = `Delivery report: ${m.env}, ${m.month}`
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title><style>${CSS}</style></head>
<body><h1>${esc(title)}</h1>
<section class="kpi" data-testid="kpis">${kpis.map(([k, v]) => `<div><b>${esc(v)}</b>${esc(k)}</div>`).join('')}</section>
<ul>${goals}</ul>
<h2>Deploys per day</h2>${deployChart(m)}
<h2>Lead time per deploy (commit to live)</h2>${leadChart(m)}
<h2>Uptime and error budget (99.9%)</h2>${up}
<h2>Incidents</h2>${table(INCIDENT_HEAD, (incidents?.rows ?? []).map(incidentCells), 'incidents')}
<h2>Deploys</h2>${table(
    ['ended (UTC)', 'release', 'who', 'outcome', 'lead time', 'undone by'],
    m.deploy_rows.map((d) => [
      d.ended_at.slice(0, 16).replace('T', ' '),
      d.release ?? '',
      d.who,
      d.outcome,
      duration(d.lead_time_s),
      d.undone_by ?? '',
    ]),
    'deploys',
  )}
<h2>Restores of service</h2>${table(
    ['runbook', 'release', 'failure from', 'restored', 'time to restore'],
    m.restore_rows.map((r) => [
      r.runbook,
      r.release ?? '',
      r.failure_started_at,
      r.restored_at,
      duration(r.restore_s),
    ]),
    'restores',
  )}
</body></html>
`
}

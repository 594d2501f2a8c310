import type { IncidentFigures } from './incidents.ts'
import type { DeliveryMetrics } from './metrics.ts'
import type { MonthUptime, ViewFigures } from './uptime.ts'

// make report's Markdown: the figures, then the deploys and restores behind them. Pure.

export const pct = (r: number | null) => (r === null ? 'n/a' : `${(r * 100).toFixed(1)}%`)

export function duration(s: number | null): string {
  if (s === null) return 'n/a'
  if (s < 120) return `${s.toFixed(1)} s`
  if (s < 7200) return `${(s / 60).toFixed(1)} min`
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`
  return `${(s / 86400).toFixed(1)} d`
}

const row = (cells: (string | number)[]) =>
  `| ${cells.map((c) => String(c).replaceAll('|', '\\|')).join(' | ')} |`
const head = (cells: string[]) => `${row(cells)}\n${row(cells.map(() => '---'))}`

function view(v: ViewFigures | undefined): string {
  if (!v) return 'n/a'
  const a = v.availability_pct === null ? 'no data' : `${v.availability_pct}%`
  return `${a}, ${v.down_min.toFixed(1)} min down, budget left ${v.budget_left_min.toFixed(1)} min`
}

/** The deliveryMetrics' DORA figures against the goals (success rate > 95%, restore < 15 min). */
export function goalLines(m: DeliveryMetrics): string[] {
  return [
    `deploy success rate ${pct(m.success_rate)} (goal > 95%): ${m.success_rate === null ? 'no deploy' : m.success_rate > 0.95 ? 'met' : 'MISSED'}`,
    `time to restore ${duration(m.mttr_s)} (goal < 15 min): ${m.mttr_s === null ? 'nothing to restore' : m.mttr_s < 900 ? 'met' : 'MISSED'}`,
  ]
}

export const INCIDENT_HEAD = ['id', 'severity', 'detected (UTC)', 'mitigated after', 'resolved after', 'what']

/** One incident's cells, in INCIDENT_HEAD's order. */
export function incidentCells(r: IncidentFigures['rows'][number]): string[] {
  return [
    r.id,
    r.severity,
    r.detected_at.slice(0, 16).replace('T', ' '),
    duration(r.mitigate_s),
    duration(r.resolve_s),
    r.title,
  ]
}

export function reportMarkdown(
  m: DeliveryMetrics,
  uptime: MonthUptime | undefined,
  incidents?: IncidentFigures,
): string {
  const out = [
    `# Delivery report: ${m.env}, ${m.month}`,
    '',
    head(['figure', 'value']),
    row(['deploys', `${m.deploys} (${m.deploys_ok} succeeded)`]),
    row(['success rate', pct(m.success_rate)]),
    row([
      'lead time p50 / p90 (commit to live)',
      `${duration(m.lead_time_p50_s)} / ${duration(m.lead_time_p90_s)}`,
    ]),
    row(['change failure rate', `${pct(m.change_failure_rate)} (${m.change_failures} undone)`]),
    row(['time to restore (mean)', duration(m.mttr_s)]),
    row(['rollbacks / emergencies / restores', `${m.rollbacks} / ${m.emergencies} / ${m.restores}`]),
    '',
    ...goalLines(m).map((l) => `- ${l}`),
    '',
    '## Uptime and error budget (99.9%)',
    '',
  ]
  if (!uptime) out.push("Not read (see the run's output).", '')
  else {
    out.push(`${uptime.from} to ${uptime.to}`, '', head(['service', 'host view', 'outside view']))
    for (const r of uptime.rows) out.push(row([`${r.service} (${r.domain})`, view(r.host), view(r.outside)]))
    out.push('', ...uptime.notes.map((n) => `- ${n}`), '')
  }
  out.push('## Incidents (make incident)', '')
  if (!incidents || incidents.incidents === 0) out.push('None opened in the month.', '')
  else {
    out.push(
      `${incidents.incidents} opened (${incidents.open} still open, ${incidents.personal_data} with personal data); detection to mitigation p50 ${duration(incidents.mitigate_p50_s)}, to resolution p50 ${duration(incidents.resolve_p50_s)}; resolved within 15 min: ${pct(incidents.within_goal_rate)}`,
      '',
      head(INCIDENT_HEAD),
    )
    for (const r of incidents.rows) out.push(row(incidentCells(r)))
    out.push('')
  }
  out.push('## Deploys', '')
  if (m.deploy_rows.length === 0) out.push('None in the month.', '')
  else {
    out.push(head(['ended (UTC)', 'release', 'who', 'outcome', 'took', 'lead time', 'undone by']))
    for (const d of m.deploy_rows)
      out.push(
        row([
          d.ended_at.slice(0, 16).replace('T', ' '),
          d.release ?? '',
          d.who,
          d.outcome,
          duration(d.duration_s),
          duration(d.lead_time_s),
          d.undone_by ?? '',
        ]),
      )
    out.push('')
  }
  out.push('## Restores of service', '')
  if (m.restore_rows.length === 0) out.push('None in the month.', '')
  else {
    out.push(head(['runbook', 'release', 'failure from (UTC)', 'restored (UTC)', 'time to restore']))
    for (const r of m.restore_rows)
      out.push(row([r.runbook, r.release ?? '', r.failure_started_at, r.restored_at, duration(r.restore_s)]))
    out.push('')
  }
  out.push('## Time spent in runbooks', '', head(['runbook', 'runs', 'time']))
  for (const [name, t] of Object.entries(m.time_by_runbook).sort((a, b) => b[1].seconds - a[1].seconds))
    out.push(row([name, t.runs, duration(t.seconds)]))
  out.push(
    '',
    'How each figure is counted: docs/runbooks/report.md. Lead time needs COMMITTED_AT= on the deploy (CI passes it).',
    '',
  )
  return out.join('\n')
}

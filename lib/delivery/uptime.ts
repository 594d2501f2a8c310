import type { UptimeReport } from '../uptime/report.ts'

// The month's availability and error budget per service, host view and outside view, as make report
// shows them (from make uptime's report over the month's window).

export interface ViewFigures {
  availability_pct: number | null
  down_min: number
  budget_left_min: number
  budget_used_pct: number
}

export interface UptimeRow {
  service: string
  domain: string
  host: ViewFigures
  outside?: ViewFigures
}

export interface MonthUptime {
  from: string
  to: string
  rows: UptimeRow[]
  /** Why a view is missing or partial (a host that did not answer, no outside view). */
  notes: string[]
}

export function monthUptime(report: UptimeReport): MonthUptime {
  const figures = (a: UptimeReport['services'][number]['availability']): ViewFigures => ({
    availability_pct: a.availabilityPct,
    down_min: a.downMin,
    budget_left_min: a.budget.remainingMin,
    budget_used_pct: a.budget.usedPct,
  })
  return {
    from: report.window.from,
    to: report.window.to,
    rows: report.services.map((s) => ({
      service: s.service,
      domain: s.domain,
      host: figures(s.availability),
      ...(s.outside ? { outside: figures(s.outside.availability) } : {}),
    })),
    notes: [
      ...report.unreachable.map(
        (u) => `${u.host} did not answer (${u.reason}): its history is not in the host view`,
      ),
      ...(report.outside?.error ? [`outside view: ${report.outside.error}`] : []),
      ...report.warnings,
    ],
  }
}

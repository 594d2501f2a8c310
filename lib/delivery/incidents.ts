import type { Incident } from '../incident/model.ts'
import { monthWindow, percentile } from './metrics.ts'

// The month's incidents for make report: how many, how fast they were mitigated and resolved (the goal:
// under 15 minutes from detection to the fix deployed), and which involved personal data. Pure.

export const RESPONSE_GOAL_S = 15 * 60

export interface IncidentFigures {
  incidents: number
  open: number
  personal_data: number
  mitigate_p50_s: number | null
  resolve_p50_s: number | null
  /** Resolved within the 15-minute goal / resolved. */
  within_goal_rate: number | null
  rows: {
    id: string
    severity: string
    title: string
    detected_at: string
    mitigate_s: number | null
    resolve_s: number | null
  }[]
}

const secs = (from: string, to: string | null) =>
  to === null ? null : Math.round((Date.parse(to) - Date.parse(from)) / 100) / 10

export function incidentFigures(incidents: readonly Incident[], month: string): IncidentFigures {
  const { from, to } = monthWindow(month)
  const inMonth = incidents
    .filter((i) => Date.parse(i.detected_at) >= from && Date.parse(i.detected_at) < to)
    .sort((a, b) => a.detected_at.localeCompare(b.detected_at))
  const rows = inMonth.map((i) => ({
    id: i.id,
    severity: i.severity,
    title: i.title,
    detected_at: i.detected_at,
    mitigate_s: secs(i.detected_at, i.mitigated_at),
    resolve_s: secs(i.detected_at, i.resolved_at),
  }))
  const resolved = rows.flatMap((r) => (r.resolve_s === null ? [] : [r.resolve_s]))
  return {
    incidents: rows.length,
    open: rows.filter((r) => r.resolve_s === null).length,
    personal_data: inMonth.filter((i) => i.personal_data).length,
    mitigate_p50_s: percentile(
      rows.flatMap((r) => (r.mitigate_s === null ? [] : [r.mitigate_s])),
      50,
    ),
    resolve_p50_s: percentile(resolved, 50),
    within_goal_rate: resolved.length
      ? Math.round((resolved.filter((s) => s < RESPONSE_GOAL_S).length / resolved.length) * 1000) / 1000
      : null,
    rows,
  }
}

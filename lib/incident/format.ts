import type { AuditRecord } from '../run/audit.ts'
import { type Incident, keptUntil, type LgpdClock } from './model.ts'

// make incident's timeline, in Markdown: the events, the runbooks run meanwhile (from their audit
// records), the response times and, when personal data may be involved, the LGPD clock. Pure.

const minute = (iso: string) => `${iso.slice(0, 16).replace('T', ' ')} UTC`

export function minutesBetween(from: string, to: string | null): number | null {
  return to === null ? null : Math.round((Date.parse(to) - Date.parse(from)) / 6000) / 10
}

/** The runs of the env's runbooks between detection and resolution (or now), not dry runs, not nested. */
export function runsDuring(records: readonly AuditRecord[], incident: Incident, now: Date): AuditRecord[] {
  const from = Date.parse(incident.detected_at)
  const to = incident.resolved_at ? Date.parse(incident.resolved_at) : now.getTime()
  return records
    .filter((r) => r.env === incident.env && !r.dry_run && !r.within && r.runbook !== 'incident')
    .filter((r) => Date.parse(r.ended_at) >= from && Date.parse(r.started_at) <= to)
    .sort((a, b) => a.started_at.localeCompare(b.started_at))
}

export function lgpdLines(clock: LgpdClock | null, resolved: boolean): string[] {
  if (!clock) return []
  const left = clock.overdue ? `OVERDUE by ${Math.abs(clock.hours_left)} h` : `${clock.hours_left} h left`
  return [
    `LGPD: personal data may be involved (known since ${minute(clock.known_at)}). Notice to the ANPD and to the`,
    `  people affected is due by ${minute(clock.deadline)} (3 business days, Brasília): ${left}${resolved ? '' : ', whether or not the incident is resolved'}.`,
    '  The DPO (encarregado) files it: docs/runbooks/incident.md#lgpd.',
  ]
}

export function timelineMarkdown(
  incident: Incident,
  runs: readonly AuditRecord[],
  clock: LgpdClock | null,
): string {
  const state = incident.resolved_at ? 'resolved' : incident.mitigated_at ? 'mitigated' : 'open'
  const out = [
    `## ${incident.id} (${incident.severity}, ${state}): ${incident.title}`,
    '',
    `- detected ${minute(incident.detected_at)}`,
    `- mitigated ${incident.mitigated_at ? `${minute(incident.mitigated_at)} (${minutesBetween(incident.detected_at, incident.mitigated_at)} min after detection)` : 'not yet'}`,
    `- resolved ${incident.resolved_at ? `${minute(incident.resolved_at)} (${minutesBetween(incident.detected_at, incident.resolved_at)} min after detection)` : 'not yet'}`,
    `- kept until ${keptUntil(incident)} (5 years)`,
    ...lgpdLines(clock, !!incident.resolved_at).map((l) => (l.startsWith('  ') ? `  ${l.trim()}` : `- ${l}`)),
    '',
    '| at (UTC) | what | who | |',
    '|---|---|---|---|',
  ]
  const rows: [string, string][] = [
    ...incident.events.map((e): [string, string] => [
      e.at,
      `| ${minute(e.at)} | ${e.kind}${e.personal_data ? ' (personal data)' : ''} | ${e.who} | ${e.text.replaceAll('|', '\\|')} |`,
    ]),
    ...runs.map((r): [string, string] => [
      r.started_at,
      `| ${minute(r.started_at)} | make ${r.runbook} (${r.outcome}, ${r.duration_s} s) | ${r.who} | ${r.release ? `release ${r.release}` : ''}${r.failed_step ? `; failed at: ${r.failed_step}` : ''} |`,
    ]),
  ]
  out.push(...rows.sort((a, b) => a[0].localeCompare(b[0])).map((r) => r[1]), '')
  return out.join('\n')
}

// The incident register's words (make incident): an incident is the list of its events, each an object of
// its own in the env's backup store (never overwritten), so the timeline outlives the droplet, the laptop
// and the CI runner. Pure, unit tested.

export type EventKind = 'opened' | 'update' | 'mitigated' | 'resolved'

export interface IncidentEvent {
  id: string
  env: string
  kind: EventKind
  /** When it happened (opened: when it was detected, which may be before the command). */
  at: string
  /** When it was written down. */
  recorded_at: string
  who: string
  text: string
  severity?: Severity
  /** Personal data may be involved (LGPD): set at opening or by any later event; never unset. */
  personal_data?: boolean
}

export type Severity = 'sev1' | 'sev2' | 'sev3'
export const SEVERITIES: readonly Severity[] = ['sev1', 'sev2', 'sev3']

export interface Incident {
  id: string
  env: string
  title: string
  severity: Severity
  detected_at: string
  mitigated_at: string | null
  resolved_at: string | null
  personal_data: boolean
  /** Since when the team knows personal data may be involved: the LGPD clock's start. */
  personal_data_known_at: string | null
  events: IncidentEvent[]
}

/** INC-20261207-1830-a1b2: the day and minute it was detected (UTC) and a few random characters. */
export function incidentId(detected: Date, rand: string): string {
  const iso = detected.toISOString()
  return `INC-${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 16).replace(':', '')}-${rand}`
}

export const INCIDENT_ID = /^INC-\d{8}-\d{4}-[a-z0-9]{4}$/

/** The incident its events make (sorted by when they happened); undefined without an opening. */
export function incidentOf(events: readonly IncidentEvent[]): Incident | undefined {
  const sorted = [...events].sort(
    (a, b) => a.at.localeCompare(b.at) || a.recorded_at.localeCompare(b.recorded_at),
  )
  const open = sorted.find((e) => e.kind === 'opened')
  if (!open) return undefined
  const firstPersonal = sorted.find((e) => e.personal_data)
  const last = <K extends EventKind>(k: K) => [...sorted].reverse().find((e) => e.kind === k)
  const resolved = last('resolved')
  // Mitigated: the first mitigation, or the resolution when nothing was marked mitigated before it.
  const mitigated = sorted.find((e) => e.kind === 'mitigated') ?? resolved
  const severity = [...sorted].reverse().find((e) => e.severity)?.severity ?? 'sev2'
  return {
    id: open.id,
    env: open.env,
    title: open.text,
    severity,
    detected_at: open.at,
    mitigated_at: mitigated?.at ?? null,
    resolved_at: resolved?.at ?? null,
    personal_data: !!firstPersonal,
    // Known since it was written down, or since detection when the opening said so.
    personal_data_known_at: firstPersonal
      ? firstPersonal.kind === 'opened'
        ? firstPersonal.at
        : firstPersonal.recorded_at
      : null,
    events: sorted,
  }
}

/** Easter Sunday (Gregorian, anonymous algorithm), UTC. */
export function easter(year: number): Date {
  const a = year % 19
  const b = Math.floor(year / 100)
  const c = year % 100
  const d = Math.floor(b / 4)
  const e = b % 4
  const f = Math.floor((b + 8) / 25)
  const g = Math.floor((b - f + 1) / 3)
  const h = (19 * a + b - d - g + 15) % 30
  const i = Math.floor(c / 4)
  const k = c % 4
  const l = (32 + 2 * e + 2 * i - h - k) % 7
  const m = Math.floor((a + 11 * h + 22 * l) / 451)
  const month = Math.floor((h + l - 7 * m + 114) / 31)
  const day = ((h + l - 7 * m + 114) % 31) + 1
  return new Date(Date.UTC(year, month - 1, day))
}

/**
 * Brazil's national holidays of a year (YYYY-MM-DD): New Year, Tiradentes, Labour Day, Independence,
 * Nossa Senhora Aparecida, All Souls, the Republic, Black Consciousness (national since 2024),
 * Christmas, and Good Friday. Carnival and Corpus Christi are optional days, not holidays: counted as
 * business days (the conservative reading for a deadline).
 */
export function brazilHolidays(year: number): Set<string> {
  const fixed = ['01-01', '04-21', '05-01', '09-07', '10-12', '11-02', '11-15', '11-20', '12-25']
  const goodFriday = new Date(easter(year).getTime() - 2 * 86_400_000).toISOString().slice(0, 10)
  return new Set([...fixed.map((d) => `${year}-${d}`), goodFriday])
}

/**
 * The LGPD notice deadline to the ANPD: 3 business days from when the controller learned that the
 * incident affected personal data (Resolução CD/ANPD nº 15/2024, art. 6). Business days in Brasília
 * (UTC-3): the day of knowledge does not count; the deadline is the end (23:59:59 Brasília) of the third
 * business day after it.
 */
export function anpdDeadline(known: Date): Date {
  const BRT = -3 * 3_600_000
  const local = new Date(known.getTime() + BRT)
  let day = Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate())
  let counted = 0
  while (counted < 3) {
    day += 86_400_000
    const d = new Date(day)
    const weekend = d.getUTCDay() === 0 || d.getUTCDay() === 6
    if (!weekend && !brazilHolidays(d.getUTCFullYear()).has(d.toISOString().slice(0, 10))) counted++
  }
  // 23:59:59 in Brasília that day, as an instant.
  return new Date(day + 86_400_000 - 1000 - BRT)
}

export interface LgpdClock {
  known_at: string
  deadline: string
  hours_left: number
  overdue: boolean
}

export function lgpdClock(incident: Incident, now: Date): LgpdClock | null {
  if (!incident.personal_data_known_at) return null
  const deadline = anpdDeadline(new Date(incident.personal_data_known_at))
  const hours = Math.round(((deadline.getTime() - now.getTime()) / 3_600_000) * 10) / 10
  return {
    known_at: incident.personal_data_known_at,
    deadline: deadline.toISOString(),
    hours_left: hours,
    overdue: hours < 0,
  }
}

/** Kept 5 years (the register's rule): when an incident's records may go. */
export function keptUntil(incident: Incident): string {
  const end = new Date(incident.resolved_at ?? incident.detected_at)
  end.setUTCFullYear(end.getUTCFullYear() + 5)
  return end.toISOString().slice(0, 10)
}

import { randomBytes } from 'node:crypto'
import type { StoreConfig } from '../env/backup.ts'
import { InputError } from '../report/errors.ts'
import { redact } from '../report/redact.ts'
import { whoAmI } from '../run/audit.ts'
import { type ParsedArgs, stringArg } from '../run/cli.ts'
import type { Context } from '../run/runbook.ts'
import { type EventKind, type Incident, type IncidentEvent, incidentId, type Severity } from './model.ts'

// What a make incident run says it does, read from its arguments, and the event it writes.

const ACTIONS: Record<string, EventKind> = {
  open: 'opened',
  update: 'update',
  mitigated: 'mitigated',
  resolve: 'resolved',
}

/** The one event this run writes (OPEN=, UPDATE=, MITIGATED= or RESOLVE=), or none (a reading run). */
export function actionOf(args: ParsedArgs): { kind: EventKind; text: string } | undefined {
  const given = Object.keys(ACTIONS).filter((a) => stringArg(args, a) !== undefined)
  if (given.length > 1)
    throw new InputError(
      `${given.map((g) => g.toUpperCase()).join(' and ')}: give one of OPEN=, UPDATE=, MITIGATED=, RESOLVE= per run`,
    )
  const [name] = given
  if (!name) return undefined
  const text = (stringArg(args, name) ?? '').trim()
  if (!text || text.length > 1000 || text.includes('\n'))
    throw new InputError(
      `${name.toUpperCase()}=: one line of 1 to 1000 characters, saying what happened or was done`,
    )
  return { kind: ACTIONS[name] as EventKind, text }
}

/** DETECTED= (OPEN only): an ISO 8601 time, not in the future (a minute of clock skew allowed). */
export function detectedAt(value: string | undefined, now: Date): Date {
  if (value === undefined) return now
  const t = Date.parse(value)
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(value) || Number.isNaN(t) || t > now.getTime() + 60_000)
    throw new InputError(
      `DETECTED=${value}: expected when it was detected, ISO 8601 (2026-12-07T18:30:00Z), not in the future`,
    )
  return new Date(t)
}

/** The incident an UPDATE/MITIGATED/RESOLVE (or a reading with ID=) is about: ID=, else the only one still open. */
export function choose(incidents: Incident[], args: ParsedArgs, env: string): Incident {
  const id = stringArg(args, 'id')
  if (id) {
    const found = incidents.find((i) => i.id === id)
    if (!found)
      throw new InputError(`ID=${id}: no such incident on ${env} (make incident ENV=${env} lists them)`)
    return found
  }
  const open = incidents.filter((i) => !i.resolved_at)
  if (open.length === 1) return open[0] as Incident
  throw new InputError(
    open.length === 0
      ? `no open incident on ${env}: open one with OPEN="..."`
      : `${open.length} incidents are open on ${env} (${open.map((i) => i.id).join(', ')}): say which with ID=`,
  )
}

export function newEvent(ctx: Context, kind: EventKind, text: string, incidents: Incident[]): IncidentEvent {
  const now = new Date()
  const personal = ctx.args['personal-data'] === true
  const base = {
    env: ctx.env.name,
    kind,
    recorded_at: now.toISOString(),
    who: whoAmI(),
    text: redact(text),
    ...(personal ? { personal_data: true } : {}),
  }
  if (kind === 'opened') {
    const at = detectedAt(stringArg(ctx.args, 'detected'), now)
    const severity = (stringArg(ctx.args, 'severity') ?? 'sev2') as Severity
    return { ...base, id: incidentId(at, randomBytes(2).toString('hex')), at: at.toISOString(), severity }
  }
  const incident = choose(incidents, ctx.args, ctx.env.name)
  if (incident.resolved_at && kind !== 'update')
    throw new InputError(
      `${incident.id} was resolved at ${incident.resolved_at}: only UPDATE= (a note, e.g. the post-mortem) can be added now`,
    )
  return { ...base, id: incident.id, at: now.toISOString() }
}

/** The env's backup store, where the register lives. */
export function registerStore(ctx: Context): StoreConfig {
  const store = ctx.env.backup?.store
  if (!store)
    throw new InputError(`${ctx.env.file} has no backup: section: the incident register is kept in its store`)
  return store
}

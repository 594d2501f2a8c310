/**
 * incident — the incident register: open one when something is wrong, add what is learned and done, mark
 * it mitigated and resolved. Each event is an object of its own in the env's backup store (never
 * overwritten; kept 5 years), so the timeline outlives the droplet and the machine. The timeline shows
 * the runbooks run meanwhile (their audit records in the store). When personal data may be involved
 * (PERSONAL_DATA=1) the LGPD clock runs: notice to the ANPD within 3 business days, shown and reminded at
 * every run until then. Opening and resolving tell the env's `alert` targets.
 * `make incident ENV=<env> OPEN="..." [SEVERITY=sev1|sev2|sev3] [DETECTED=<ISO time>] [PERSONAL_DATA=1]`
 * `make incident ENV=<env> [ID=INC-...] UPDATE="..." | MITIGATED="..." | RESOLVE="..." [PERSONAL_DATA=1]`
 * `make incident ENV=<env> [ID=INC-...] [JSON=1]`: the register (open ones first), or one timeline.
 * Needs no host. On-call page: docs/runbooks/incident.md
 */

import { readRecords } from '../lib/delivery/records.ts'
import { actionOf, choose, detectedAt, newEvent, registerStore } from '../lib/incident/event.ts'
import { lgpdLines, runsDuring, timelineMarkdown } from '../lib/incident/format.ts'
import {
  type EventKind,
  INCIDENT_ID,
  type Incident,
  type IncidentEvent,
  lgpdClock,
  SEVERITIES,
  type Severity,
} from '../lib/incident/model.ts'
import { addEvent, readIncidents } from '../lib/incident/store.ts'
import { notify, reportNotifyResults } from '../lib/notify/send.ts'
import { InputError } from '../lib/report/errors.ts'
import { print } from '../lib/report/output.ts'
import { redact } from '../lib/report/redact.ts'
import { ciRunUrl, whoAmI } from '../lib/run/audit.ts'
import { stringArg } from '../lib/run/cli.ts'
import { perRun } from '../lib/run/per-run.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { openStore } from '../lib/store/storage.ts'

interface IncidentRun {
  incidents: Incident[]
  chosen?: Incident
  written?: IncidentEvent
}
const runs = perRun<IncidentRun>('incident register')

export const incident: RunbookSpec = {
  name: 'incident',
  mutates: false,
  offline: true,
  needs: () => ['store', 'notify:alert'],
  validate(args) {
    const action = actionOf(args)
    const severity = stringArg(args, 'severity')
    if (severity !== undefined && !SEVERITIES.includes(severity as Severity))
      throw new InputError(
        `SEVERITY=${severity}: one of ${SEVERITIES.join(', ')} (sev1: customers cannot work)`,
      )
    if (action?.kind !== 'opened' && (severity !== undefined || stringArg(args, 'detected') !== undefined))
      throw new InputError('SEVERITY= and DETECTED= go with OPEN=')
    if (action?.kind === 'opened' && stringArg(args, 'id'))
      throw new InputError('ID= goes with UPDATE=, MITIGATED= or RESOLVE=: OPEN= makes a new one')
    if (action?.kind === 'opened') detectedAt(stringArg(args, 'detected'), new Date())
    const id = stringArg(args, 'id')
    if (id !== undefined && !INCIDENT_ID.test(id))
      throw new InputError(`ID=${id}: expected an incident id like INC-20261207-1830-a1b2`)
  },
  options: [
    {
      name: 'open',
      makeVar: 'OPEN',
      value: true,
      help: 'open an incident: what is wrong, as the on-call sees it',
    },
    { name: 'update', makeVar: 'UPDATE', value: true, help: 'add what was learned or done' },
    {
      name: 'mitigated',
      makeVar: 'MITIGATED',
      value: true,
      help: 'customers are served again (the fix may come later)',
    },
    { name: 'resolve', makeVar: 'RESOLVE', value: true, help: 'the incident is over: what fixed it' },
    { name: 'id', makeVar: 'ID', value: true, help: 'which incident (default: the only open one)' },
    {
      name: 'severity',
      makeVar: 'SEVERITY',
      value: true,
      help: 'with OPEN: sev1 (customers cannot work), sev2 (default), sev3',
    },
    {
      name: 'detected',
      makeVar: 'DETECTED',
      value: true,
      help: 'with OPEN: when it was detected, ISO 8601 (default: now)',
    },
    {
      name: 'personal-data',
      makeVar: 'PERSONAL_DATA=1',
      help: 'personal data may be involved: starts the LGPD clock (3 business days)',
    },
    { name: 'json', makeVar: 'JSON=1', help: 'print the incident(s) as JSON on stdout' },
  ],
  steps: [
    {
      title: 'Read the incident register from the backup store',
      next: "Nothing was written. Check the store's credentials and endpoint (make backups ENV=<env> reads the same store). Meanwhile keep the timeline by hand: it can be added later with DETECTED=.",
      async run(ctx) {
        const store = openStore(registerStore(ctx), ctx.secrets)
        const read = await readIncidents(store, ctx.env.name)
        runs.set(ctx, { incidents: read.incidents })
        const open = read.incidents.filter((i) => !i.resolved_at).length
        print(
          `      ${read.incidents.length} incident(s), ${open} open, in ${store.description}${read.malformed ? `; ${read.malformed} object(s) not an event` : ''}`,
        )
        return 'ok'
      },
    },
    {
      title: 'Add the event to the register (an object of its own, never overwritten)',
      skip: (ctx) => (actionOf(ctx.args) ? false : 'no OPEN=, UPDATE=, MITIGATED= or RESOLVE=: reading only'),
      next: "Nothing was written. See the error above; the event's text is in your shell's history: run it again.",
      async run(ctx) {
        const r = runs.get(ctx)
        const action = actionOf(ctx.args) as { kind: EventKind; text: string }
        const event = newEvent(ctx, action.kind, action.text, r.incidents)
        if (ctx.dryRun) {
          print(`      dry run: would add ${event.kind} to ${event.id}: ${event.text}`)
          return 'dry-run'
        }
        const key = await addEvent(openStore(registerStore(ctx), ctx.secrets), event)
        r.written = event
        r.incidents = r.incidents.filter((i) => i.id !== event.id)
        print(`      ${event.kind}: ${event.id} -> ${key}`)
        return 'changed'
      },
    },
    {
      title: 'The timeline (with the runbooks run meanwhile) and the LGPD clock',
      async run(ctx) {
        const store = openStore(registerStore(ctx), ctx.secrets)
        const now = new Date()
        const r = runs.get(ctx)
        if (r.written) r.incidents = [...(await readIncidents(store, ctx.env.name)).incidents]
        const one = r.written || stringArg(ctx.args, 'id') || actionOf(ctx.args)
        if (one && r.incidents.length)
          r.chosen = r.written
            ? r.incidents.find((i) => i.id === r.written?.id)
            : choose(r.incidents, ctx.args, ctx.env.name)
        const shown = r.chosen ? [r.chosen] : r.incidents.filter((i) => !i.resolved_at)
        const months = [
          ...new Set(
            shown.flatMap((i) => [
              i.detected_at.slice(0, 7),
              (i.resolved_at ?? now.toISOString()).slice(0, 7),
            ]),
          ),
        ]
        const records = months.length ? (await readRecords(store, ctx.env.name, months)).records : []
        for (const i of shown)
          print(`\n${timelineMarkdown(i, runsDuring(records, i, now), lgpdClock(i, now))}`)
        if (!r.chosen) {
          const closed = r.incidents.filter((i) => i.resolved_at).slice(0, 10)
          if (shown.length === 0) print('      no open incident')
          for (const i of closed)
            print(`      ${i.id} ${i.severity} resolved ${i.resolved_at?.slice(0, 16)}: ${i.title}`)
        }
        if (ctx.args.json === true)
          process.stdout.write(`${redact(JSON.stringify(r.chosen ?? r.incidents))}\n`)
        return 'ok'
      },
    },
    {
      title: "Tell the team (the env's alert targets): an incident opened or resolved",
      skip: (ctx) =>
        ['opened', 'resolved'].includes(actionOf(ctx.args)?.kind ?? '')
          ? false
          : 'only opening and resolving are sent',
      async run(ctx) {
        const r = runs.get(ctx)
        const i = r.chosen
        if (ctx.dryRun || !i || !r.written) return ctx.dryRun ? 'dry-run' : 'skipped'
        const opened = r.written.kind === 'opened'
        reportNotifyResults(
          await notify(ctx.env.notify, ctx.secrets, {
            event: 'alert',
            env: ctx.env.name,
            outcome: opened ? 'failed' : 'recovered',
            severity: opened && i.severity === 'sev1' ? 'critical' : opened ? 'warning' : 'info',
            title: `${ctx.env.name}: incident ${i.id} ${opened ? 'opened' : 'resolved'} (${i.severity}): ${i.title}`,
            who: whoAmI(),
            link: ciRunUrl(),
            details: [r.written.text, ...lgpdLines(lgpdClock(i, new Date()), !!i.resolved_at)],
            runbook: 'docs/runbooks/incident.md',
          }),
        )
        return 'ok'
      },
    },
  ],
}

if (isMain(import.meta.url)) {
  await main(incident)
}

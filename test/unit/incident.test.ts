import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { loadEnv } from '../../lib/env/load.ts'
import { actionOf, detectedAt } from '../../lib/incident/event.ts'
import { runsDuring, timelineMarkdown } from '../../lib/incident/format.ts'
import {
  anpdDeadline,
  brazilHolidays,
  easter,
  type IncidentEvent,
  incidentId,
  incidentOf,
  keptUntil,
  lgpdClock,
} from '../../lib/incident/model.ts'
import { InputError } from '../../lib/report/errors.ts'
import { putRunRecord } from '../../lib/run/records.ts'
import { incident } from '../../runbooks/incident.ts'
import { suite } from '../harness.ts'
import { startReceiver } from '../sandbox/webhook-receiver.ts'
import { auditRecord, incidentEvent } from '../support/delivery-records.ts'
import { runOnFixtureEnv } from '../support/offline-run.ts'
import { ciEnvYaml } from './ci-env.ts'

const test = suite('incident: the register, its timeline and the LGPD clock')

const ev = (kind: IncidentEvent['kind'], at: string, more: Partial<IncidentEvent> = {}) =>
  incidentEvent('INC-20261207-1830-a1b2', kind, at, more)

test('ids; an incident from its events: detection, mitigation, resolution, personal data since when', () => {
  assert.is(incidentId(new Date('2026-12-07T18:30:59Z'), 'a1b2'), 'INC-20261207-1830-a1b2')
  const i = incidentOf([
    ev('resolved', '2026-12-07T19:40:00Z'),
    ev('update', '2026-12-07T18:50:00Z', { personal_data: true, recorded_at: '2026-12-07T18:51:00Z' }),
    ev('opened', '2026-12-07T18:30:00Z', { severity: 'sev1', text: 'api 502' }),
    ev('mitigated', '2026-12-07T19:05:00Z'),
  ])
  assert.ok(i)
  assert.equal(
    [
      i?.title,
      i?.severity,
      i?.detected_at,
      i?.mitigated_at,
      i?.resolved_at,
      i?.personal_data,
      i?.personal_data_known_at,
    ],
    [
      'api 502',
      'sev1',
      '2026-12-07T18:30:00Z',
      '2026-12-07T19:05:00Z',
      '2026-12-07T19:40:00Z',
      true,
      '2026-12-07T18:51:00Z',
    ],
  )
  assert.is(i?.events.map((e) => e.kind).join(','), 'opened,update,mitigated,resolved')
  assert.is(keptUntil(i as NonNullable<typeof i>), '2031-12-07')
  // Resolved without a mitigation: mitigated then; no opening: no incident.
  assert.is(
    incidentOf([ev('opened', '2026-12-07T18:30:00Z'), ev('resolved', '2026-12-07T18:45:00Z')])?.mitigated_at,
    '2026-12-07T18:45:00Z',
  )
  assert.is(incidentOf([ev('update', '2026-12-07T18:30:00Z')]), undefined)
})

test('the ANPD deadline: 3 business days in Brasilia, weekends and national holidays skipped', () => {
  assert.is(easter(2026).toISOString().slice(0, 10), '2026-04-05')
  assert.is(easter(2027).toISOString().slice(0, 10), '2027-03-28')
  assert.ok(brazilHolidays(2026).has('2026-04-03'), 'Good Friday')
  assert.ok(brazilHolidays(2026).has('2026-11-20'), 'Black Consciousness')
  // Friday noon in Brasilia: Mon, Tue, Wed -> Wednesday 23:59:59 BRT.
  assert.is(anpdDeadline(new Date('2026-12-04T15:00:00Z')).toISOString(), '2026-12-10T02:59:59.000Z')
  // Friday 22:00 in Brasilia is already Saturday in UTC: still Friday's clock.
  assert.is(anpdDeadline(new Date('2026-12-05T01:00:00Z')).toISOString(), '2026-12-10T02:59:59.000Z')
  // Thursday 19 Nov 2026: the 20th is a holiday -> Mon 23, Tue 24, Wed 25.
  assert.is(anpdDeadline(new Date('2026-11-19T12:00:00Z')).toISOString(), '2026-11-26T02:59:59.000Z')
  // Wednesday 1 Apr 2026: Thu 2, (Good Friday), Mon 6, Tue 7.
  assert.is(anpdDeadline(new Date('2026-04-01T12:00:00Z')).toISOString(), '2026-04-08T02:59:59.000Z')
  const i = incidentOf([ev('opened', '2026-12-04T15:00:00Z', { personal_data: true })])
  const clock = lgpdClock(i as NonNullable<typeof i>, new Date('2026-12-09T03:00:00Z'))
  assert.equal(clock, {
    known_at: '2026-12-04T15:00:00Z',
    deadline: '2026-12-10T02:59:59.000Z',
    hours_left: 24,
    overdue: false,
  })
  assert.is(lgpdClock(i as NonNullable<typeof i>, new Date('2026-12-11T03:00:00Z'))?.overdue, true)
  assert.is(
    lgpdClock(
      incidentOf([ev('opened', '2026-12-04T15:00:00Z')]) as NonNullable<ReturnType<typeof incidentOf>>,
      new Date(),
    ),
    null,
  )
})

test('arguments: one action per run, one line of text; DETECTED= not in the future', () => {
  assert.equal(actionOf({ open: ' api 502 ' }), { kind: 'opened', text: 'api 502' })
  assert.equal(actionOf({ resolve: 'rolled back to v11' }), { kind: 'resolved', text: 'rolled back to v11' })
  assert.is(actionOf({}), undefined)
  assert.throws(() => actionOf({ open: 'a', resolve: 'b' }), /OPEN and RESOLVE: give one/)
  assert.throws(() => actionOf({ update: '' }), /UPDATE=: one line/)
  const now = new Date('2026-12-07T18:30:00Z')
  assert.is(detectedAt('2026-12-07T18:00:00Z', now).toISOString(), '2026-12-07T18:00:00.000Z')
  assert.throws(
    () => detectedAt('2026-12-08T18:00:00Z', now),
    (e: Error) => e instanceof InputError && /DETECTED=/.test(e.message),
  )
  assert.throws(() => detectedAt('yesterday', now), /DETECTED=yesterday/)
})

test('the timeline lists the runbooks run meanwhile (not dry runs, not nested runs, not other envs)', () => {
  const i = incidentOf([
    ev('opened', '2026-12-07T18:30:00Z', { text: 'api 502' }),
    ev('resolved', '2026-12-07T19:00:00Z'),
  ])
  const inc = i as NonNullable<typeof i>
  const records = [
    auditRecord('ci', 'rollback', '2026-12-07T18:40:00Z', 50, { release: 'v11' }),
    auditRecord('ci', 'health', '2026-12-07T18:41:00Z', 5, { dry_run: true, outcome: 'dry-run' }),
    auditRecord('ci', 'deploy', '2026-12-07T18:39:00Z', 20, { within: 'emergency' }),
    auditRecord('other', 'rollback', '2026-12-07T18:40:00Z', 50),
    auditRecord('ci', 'deploy', '2026-12-07T20:00:00Z', 50),
  ]
  const during = runsDuring(records, inc, new Date('2026-12-07T21:00:00Z'))
  assert.equal(
    during.map((r) => r.runbook),
    ['rollback'],
  )
  const md = timelineMarkdown(inc, during, null)
  assert.match(md, '## INC-20261207-1830-a1b2 (sev2, resolved): api 502')
  assert.match(md, 'resolved 2026-12-07 19:00 UTC (30 min after detection)')
  assert.match(md, '| 2026-12-07 18:39 UTC | make rollback (success, 50 s) | ana | release v11 |')
})

test('make incident on a fixture env: open (the team told, the LGPD clock), update, resolve; each event an object of its own', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ce-incident-'))
  const rx = await startReceiver()
  try {
    const store = join(dir, 'store')
    writeFileSync(
      join(dir, 'ci.yaml'),
      ciEnvYaml(
        ['BACKUP_KEY', 'ALERT_URL'],
        `backup:\n  store: { type: local, dir: ${store} }\nnotify:\n  - { name: oncall, type: json, url_secret: ALERT_URL, events: [alert] }`,
      ),
    )
    const vars = { ALERT_URL: `${rx.url}/alerts`, BACKUP_KEY: 'x'.repeat(44) }
    const opened = await runOnFixtureEnv(
      incident,
      dir,
      ['--open', 'saas answers 502 to everyone', '--severity', 'sev1', '--personal-data'],
      vars,
    )
    assert.is(opened.code, 0, opened.out)
    const id = /opened: (INC-\d{8}-\d{4}-[a-z0-9]{4})/.exec(opened.out)?.[1] as string
    assert.ok(id, opened.out)
    assert.match(opened.out, 'LGPD: personal data may be involved')
    assert.match(opened.out, 'Notice to the ANPD and to the')
    const told = JSON.parse(rx.received[0]?.body ?? '{}') as {
      title: string
      severity: string
      details: string[]
    }
    assert.match(told.title, `incident ${id} opened (sev1): saas answers 502 to everyone`)
    assert.is(told.severity, 'critical')
    assert.ok(told.details.some((d) => d.includes('3 business days')))
    // A run of a runbook meanwhile, as the step runner records it.
    process.env.CE_ENV_DIR = dir
    const env = loadEnv('ci')
    delete process.env.CE_ENV_DIR
    const rb = auditRecord('ci', 'rollback', new Date(Date.now() + 1000).toISOString(), 1, { release: 'v11' })
    await putRunRecord(env, {}, 'rollback', JSON.stringify(rb), new Date(rb.ended_at))
    assert.is((await runOnFixtureEnv(incident, dir, ['--update', 'rolled back saas'], vars)).code, 0)
    // Two open ones are told apart by ID=; a second RESOLVE of the same one is refused.
    const resolved = await runOnFixtureEnv(
      incident,
      dir,
      ['--resolve', 'v11 is live again', '--id', id],
      vars,
    )
    assert.is(resolved.code, 0, resolved.out)
    assert.match(resolved.out, `(sev1, resolved): saas answers 502 to everyone`)
    assert.match(resolved.out, 'make rollback (success')
    assert.is(rx.received.length, 2)
    const again = await runOnFixtureEnv(incident, dir, ['--resolve', 'again', '--id', id], vars)
    assert.is(again.code, 2)
    assert.match(again.out, 'only UPDATE= (a note, e.g. the post-mortem) can be added now')
    assert.is(readdirSync(join(store, 'records', 'ci', 'incidents', id)).length, 3)
    // Nothing open now: an UPDATE without ID= says so.
    const none = await runOnFixtureEnv(incident, dir, ['--update', 'x'], vars)
    assert.is(none.code, 2)
    assert.match(none.out, 'no open incident on ci')
  } finally {
    await rx.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()

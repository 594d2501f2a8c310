import * as assert from 'uvu/assert'
import { reportMarkdown } from '../../lib/delivery/format.ts'
import { renderReport } from '../../lib/delivery/html.ts'
import { incidentFigures } from '../../lib/delivery/incidents.ts'
import { deliveryMetrics, monthWindow, percentile, previousMonth } from '../../lib/delivery/metrics.ts'
import { dedupe, keyMayHold, parseRecords } from '../../lib/delivery/records.ts'
import type { Env } from '../../lib/env/load.ts'
import { type IncidentEvent, incidentOf } from '../../lib/incident/model.ts'
import { InputError } from '../../lib/report/errors.ts'
import { holdsStore } from '../../lib/run/records.ts'
import { runRecordKey } from '../../lib/store/record-keys.ts'
import { parseMonth } from '../../runbooks/report.ts'
import { suite } from '../harness.ts'
import { auditRecord, incidentEvent, novemberRecords } from '../support/delivery-records.ts'

const test = suite('report: records off the host, delivery metrics, the report')

test("a run's record key: records/<env>/runs/<month>/<ended>-<runbook>-<rand>.json, no colon", () => {
  const key = runRecordKey('production', 'deploy', new Date('2026-12-07T18:20:05.123Z'), 'a1b2c3')
  assert.is(key, 'records/production/runs/2026-12/2026-12-07T18-20-05.123Z-deploy-a1b2c3.json')
})

test('which keys the report reads: the months asked for, and audit copies made since the first', () => {
  const months = ['2026-10', '2026-11']
  assert.ok(keyMayHold('records/ci/runs/2026-11/x-deploy-1.json', 'ci', months))
  assert.ok(keyMayHold('records/ci/runs/2026-10/x-deploy-1.json', 'ci', months))
  assert.not.ok(keyMayHold('records/ci/runs/2026-09/x-deploy-1.json', 'ci', months))
  assert.ok(keyMayHold('records/ci/2026-12-01/99-1/audit/audit.jsonl', 'ci', months))
  assert.not.ok(keyMayHold('records/ci/2026-09-30/99-1/audit/audit.jsonl', 'ci', months))
  assert.not.ok(keyMayHold('records/ci/2026-11-01/99-1/state/emergency-ci.json', 'ci', months))
})

test('records: lines that are not an audit record are counted, a run kept twice counts once', () => {
  const a = auditRecord('ci', 'deploy', '2026-11-02T10:00:00Z', 10)
  const parsed = parseRecords(`${JSON.stringify(a)}\n{"half":\nnot json\n{"runbook":"x"}\n\n`)
  assert.is(parsed.records.length, 1)
  assert.is(parsed.malformed, 3)
  assert.is(dedupe([a, { ...a }, { ...a, who: 'bia' }]).length, 2)
})

test('the must-show month: 20 deploys, 1 failed -> 0.95; lead p50; 1 of 19 undone; restore 3660 s', () => {
  const m = deliveryMetrics(novemberRecords('ci'), 'ci', '2026-11')
  assert.is(m.deploys, 20)
  assert.is(m.deploys_ok, 19)
  assert.is(m.success_rate, 0.95)
  // Lead times 1800 + 60 i s for i = 0..19 but 6: the 10th of 19 is i = 10.
  assert.is(m.lead_time_p50_s, 2400)
  assert.is(m.lead_time_p90_s, 2880)
  assert.is(m.change_failures, 1)
  assert.is(m.change_failure_rate, 0.053)
  // The rollback undid v12 (live 10:00, restored 11:01) and the emergency took 600 s: mean 2130 s.
  assert.equal(
    m.restore_rows.map((r) => [r.runbook, r.release, r.restore_s]),
    [
      ['rollback', 'v12', 3660],
      ['emergency', null, 600],
    ],
  )
  assert.is(m.mttr_s, 2130)
  assert.is(m.rollbacks, 1)
  assert.is(m.emergencies, 1)
  assert.is(m.deploy_rows.find((d) => d.release === 'v12')?.undone_by, 'rollback 2026-11-12T11:01:00.000Z')
  assert.is(m.deploy_rows.find((d) => d.release === 'v7')?.lead_time_s, null)
  assert.equal(m.time_by_runbook.deploy, { runs: 20, seconds: 2400 })
})

test('a rollback early in the month undoes the last deploy of the month before; empty months say n/a', () => {
  const records = [
    auditRecord('ci', 'deploy', '2026-10-31T23:00:00Z', 60, { release: 'v1' }),
    auditRecord('ci', 'rollback', '2026-11-01T00:30:00Z', 30),
  ]
  const nov = deliveryMetrics(records, 'ci', '2026-11')
  assert.is(nov.deploys, 0)
  assert.is(nov.success_rate, null)
  assert.is(nov.mttr_s, 5400)
  const oct = deliveryMetrics(records, 'ci', '2026-10')
  assert.is(oct.change_failure_rate, 1)
  const empty = deliveryMetrics([], 'ci', '2026-11')
  assert.match(reportMarkdown(empty, undefined), '| success rate | n/a |')
})

test('percentile, months', () => {
  assert.is(percentile([], 50), null)
  assert.is(percentile([5, 1, 3], 50), 3)
  assert.is(percentile([1, 2, 3, 4], 90), 4)
  assert.is(previousMonth('2026-01'), '2025-12')
  assert.equal(monthWindow('2026-02'), { from: Date.UTC(2026, 1, 1), to: Date.UTC(2026, 2, 1) })
  const now = new Date('2026-12-07T12:00:00Z')
  assert.is(parseMonth(undefined, now), '2026-12')
  assert.is(parseMonth('2026-11', now), '2026-11')
  assert.throws(
    () => parseMonth('2026-13', now),
    (e: Error) => e instanceof InputError && /MONTH=2026-13/.test(e.message),
  )
  assert.throws(() => parseMonth('2027-01', now), /has not begun/)
})

test('the Markdown and the HTML page carry the figures, every record value escaped', () => {
  const records = novemberRecords('ci')
  records.push(
    auditRecord('ci', 'deploy', '2026-11-27T10:00:00Z', 60, { release: '<script>x</script>', who: 'a|b' }),
  )
  const m = deliveryMetrics(records, 'ci', '2026-11')
  const md = reportMarkdown(m, undefined)
  assert.match(md, '| success rate | 95.2% |')
  assert.match(md, 'a\\|b')
  assert.match(md, 'deploy success rate 95.2% (goal > 95%): met')
  const html = renderReport(m, undefined)
  assert.not.match(html, '<script>')
  assert.match(html, '&lt;script&gt;x&lt;/script&gt;')
  // Deploys on 21 days (the 1st..20th and the 27th); 20 successful deploys with a lead time... but the 27th has none.
  assert.match(html, 'data-testid="deploys-chart" data-bars="21"')
  assert.match(html, 'data-testid="lead-chart" data-bars="19"')
})

test('incidents of the month: response times against the 15-minute goal', () => {
  const e = (id: string, kind: IncidentEvent['kind'], at: string) => incidentEvent(id, kind, at, { text: id })
  const incidents = [
    incidentOf([
      e('INC-20261103-1000-aaaa', 'opened', '2026-11-03T10:00:00Z'),
      e('INC-20261103-1000-aaaa', 'resolved', '2026-11-03T10:12:00Z'),
    ]),
    incidentOf([
      e('INC-20261110-1000-bbbb', 'opened', '2026-11-10T10:00:00Z'),
      e('INC-20261110-1000-bbbb', 'mitigated', '2026-11-10T10:05:00Z'),
      e('INC-20261110-1000-bbbb', 'resolved', '2026-11-10T11:00:00Z'),
    ]),
    incidentOf([e('INC-20261130-2350-cccc', 'opened', '2026-11-30T23:50:00Z')]),
    incidentOf([e('INC-20261201-0000-dddd', 'opened', '2026-12-01T00:00:00Z')]),
  ].flatMap((i) => (i ? [i] : []))
  const f = incidentFigures(incidents, '2026-11')
  assert.equal(
    [f.incidents, f.open, f.mitigate_p50_s, f.resolve_p50_s, f.within_goal_rate],
    [3, 1, 300, 720, 0.5],
  )
  assert.match(
    reportMarkdown(deliveryMetrics([], 'ci', '2026-11'), undefined, f),
    '3 opened (1 still open, 0 with personal data)',
  )
})

test("a run holds the store when it is a local directory or the run loaded the store's key", () => {
  const local = { backup: { store: { type: 'local', dir: '/x' } } } as unknown as Env
  assert.ok(holdsStore(local, []))
  const s3 = {
    backup: { store: { type: 's3', bucket: 'b', endpoint: 'https://e', region: 'r', prefix: 'p' } },
  } as unknown as Env
  assert.not.ok(holdsStore(s3, ['SSH_PRIVATE_KEY']))
  assert.ok(holdsStore(s3, ['SPACES_ACCESS_KEY_ID', 'SPACES_SECRET_ACCESS_KEY']))
  assert.not.ok(holdsStore({} as Env, []))
})

test.run()

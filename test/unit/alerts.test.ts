import * as assert from 'uvu/assert'
import {
  type AlertState,
  type CheckResult,
  duration,
  emptyAlertState,
  evaluate,
  formatNotice,
  markUndelivered,
  type Notice,
} from '../../lib/notify/alerts.ts'
import { slackPayload } from '../../lib/notify/format.ts'
import { suite } from '../harness.ts'

const test = suite('alert state machine')
const cfg = { failureThreshold: 2, reminderMin: 60 }
const T0 = Date.parse('2026-03-01T12:03:00.000Z')
const at = (min: number) => new Date(T0 + min * 60_000)
const down = (check: string, detail = 'exited (137)', extra: Partial<CheckResult> = {}): CheckResult => ({
  check,
  ok: false,
  detail,
  runbook: 'docs/runbooks/rollback.md',
  ...extra,
})
const up = (check: string, detail = 'running'): CheckResult => ({
  check,
  ok: true,
  detail,
  runbook: 'docs/runbooks/rollback.md',
})
const API = 'container:ce-production-blue/api'

/** Feeds runs in order (one a minute from T0), returning the notices of each run. */
function runs(results: CheckResult[][], rules = cfg, start: AlertState = emptyAlertState()) {
  let state = start
  return {
    notices: results.map((r, i) => {
      const out = evaluate(state, r, at(i), rules)
      state = out.state
      return out.notices
    }),
    state: () => state,
  }
}

test('a check alerts once it failed failure_threshold runs in a row, not before', () => {
  const { notices, state } = runs([[down(API)], [down(API)], [down(API)]])
  assert.equal(notices[0], [])
  assert.is(notices[1]?.length, 1)
  assert.is(notices[1]?.[0]?.kind, 'alert')
  assert.equal(
    notices[1]?.[0]?.checks.map((c) => [c.check, c.fresh]),
    [[API, true]],
  )
  assert.equal(notices[2], [], 'no duplicate while it keeps failing')
  assert.equal(state().checks[API]?.failures, 3)
})

test('since is the first failure of the streak and survives every later run', () => {
  const { notices, state } = runs([[down(API)], [down(API)], [down(API)], [down(API)]])
  assert.is(notices[1]?.[0]?.checks[0]?.since, at(0).toISOString())
  assert.is(state().checks[API]?.since, at(0).toISOString())
})

test('flapping below the threshold stays silent, and a pass resets the count', () => {
  const { notices, state } = runs([[down(API)], [up(API)], [down(API)], [up(API)], [down(API)]])
  assert.equal(notices.flat(), [])
  assert.is(state().checks[API]?.failures, 1)
  assert.is(state().checks[API]?.since, at(4).toISOString())
})

test('one recovery notice when an alerted check passes again, then nothing', () => {
  const { notices, state } = runs([[down(API)], [down(API)], [up(API, 'running, healthy')], [up(API)]])
  assert.is(notices[2]?.length, 1)
  const [recovery] = notices[2] ?? []
  assert.is(recovery?.kind, 'recovery')
  assert.equal(recovery?.checks, [
    {
      check: API,
      detail: 'running, healthy',
      runbook: 'docs/runbooks/rollback.md',
      since: at(0).toISOString(),
      fresh: false,
    },
  ])
  assert.equal(notices[3], [])
  assert.equal(state().checks, {})
})

test('reminders every reminder_min while it fails, not in between', () => {
  const rules = { failureThreshold: 1, reminderMin: 3 }
  const { notices } = runs(
    Array.from({ length: 8 }, () => [down(API)]),
    rules,
  )
  assert.equal(
    notices.map((n) => n.map((x) => x.kind).join()),
    ['alert', '', '', 'reminder', '', '', 'reminder', ''],
  )
})

test('many checks failing in one run: one grouped notice, not one each', () => {
  const checks = ['nginx', 'postgres', 'redis', 'http:app.example.com', API]
  const { notices } = runs([checks.map((c) => down(c)), checks.map((c) => down(c))])
  assert.is(notices[1]?.length, 1)
  assert.is(notices[1]?.[0]?.checks.length, 5)
})

test('a new failure while others still fail: one alert listing both, the reminder clock restarts', () => {
  const rules = { failureThreshold: 1, reminderMin: 10 }
  const { notices } = runs(
    [[down('nginx')], [down('nginx')], [down('nginx'), down('redis')], [down('nginx'), down('redis')]],
    rules,
  )
  const alert = notices[2]?.[0]
  assert.is(alert?.kind, 'alert')
  assert.equal(
    alert?.checks.map((c) => [c.check, c.fresh]),
    [
      ['redis', true],
      ['nginx', false],
    ],
  )
  assert.equal(notices[3], [])
})

test('recoveries and new failures in one run: at most one notice of each', () => {
  const rules = { failureThreshold: 1, reminderMin: 60 }
  const { notices } = runs(
    [
      [down('nginx'), down('redis'), up(API)],
      [up('nginx'), up('redis'), down(API)],
    ],
    rules,
  )
  assert.equal(
    notices[1]?.map((n) => [n.kind, n.checks.map((c) => c.check)]),
    [
      ['alert', [API]],
      ['recovery', ['nginx', 'redis']],
    ],
  )
})

test('a per-result threshold (a container the watchdog restarted) alerts at once', () => {
  const { notices } = runs([[down(API, 'exited (0); restarted', { threshold: 1 })], [up(API)]])
  assert.equal(
    notices.map((n) => n.map((x) => x.kind)),
    [['alert'], ['recovery']],
  )
})

test('a check that is no longer reported is closed: a recovery if it had alerted', () => {
  const rules = { failureThreshold: 1, reminderMin: 60 }
  const first = evaluate(emptyAlertState(), [down(API), down('nginx')], at(0), rules)
  const gone = evaluate(first.state, [down('nginx')], at(1), rules)
  assert.equal(
    gone.notices.map((n) => [n.kind, n.checks.map((c) => `${c.check}: ${c.detail}`)]),
    [['recovery', [`${API}: no longer checked`]]],
  )
  // Another runner's partial view leaves the checks it does not run alone.
  const partial = evaluate(first.state, [down('nginx')], at(1), rules, { partial: true })
  assert.equal(partial.notices, [])
  assert.equal(partial.state.checks[API], first.state.checks[API])
  const later = evaluate(partial.state, [down('nginx')], at(90), rules, { partial: true })
  assert.equal(
    later.notices.map((n) => [n.kind, n.checks.map((c) => c.check)]),
    [['reminder', ['nginx']]],
  )
  assert.is(later.state.checks[API]?.lastSent, at(0).toISOString(), 'the other runner reminds of its own')
})

test('an alert no webhook took is due again on the next run', () => {
  const rules = { failureThreshold: 1, reminderMin: 60 }
  const first = evaluate(emptyAlertState(), [down(API)], at(0), rules)
  const notice = first.notices[0] as Notice
  const retry = evaluate(markUndelivered(first.state, notice), [down(API)], at(1), rules)
  assert.equal(
    retry.notices.map((n) => n.kind),
    ['reminder'],
  )
  assert.equal(evaluate(retry.state, [down(API)], at(2), rules).notices, [])
})

test('evaluate is pure: the state passed in is not changed', () => {
  const first = evaluate(emptyAlertState(), [down(API)], at(0), { failureThreshold: 1, reminderMin: 1 })
  const copy = structuredClone(first.state)
  evaluate(first.state, [down(API)], at(5), { failureThreshold: 1, reminderMin: 1 })
  assert.equal(first.state, copy)
})

test('an alert says what failed, since when, and which page to open', () => {
  const rules = { failureThreshold: 1, reminderMin: 60 }
  const { notices } = runs([[down(API, 'exited (137) at 12:02:41 UTC; restarted (1 of 3 in 30 min)')]], rules)
  const e = formatNotice(notices[0]?.[0] as Notice, 'production', 'watchdog on web-1')
  assert.equal(e, {
    event: 'alert',
    env: 'production',
    outcome: 'failed',
    title: 'ALERT production: container ce-production-blue/api down since 12:03 UTC',
    details: [
      'container ce-production-blue/api: exited (137) at 12:02:41 UTC; restarted (1 of 3 in 30 min) · since 12:03 UTC · runbook: docs/runbooks/rollback.md',
    ],
    runbook: 'docs/runbooks/rollback.md',
    who: 'watchdog on web-1',
    severity: 'critical',
    resolves: false,
  })
  assert.match(
    slackPayload(e).text,
    'ALERT production: container ce-production-blue/api down since 12:03 UTC',
  )
})

test('grouped, reminder and recovery texts', () => {
  const rules = { failureThreshold: 1, reminderMin: 60 }
  const disk = { ...down('disk:/', '9% free (minimum 15%)'), runbook: 'docs/runbooks/health.md#disk' }
  const { notices } = runs(
    [
      [down('nginx', 'inactive'), disk],
      ...Array.from({ length: 60 }, () => [down('nginx', 'inactive'), disk]),
      [up('nginx', 'active'), up('disk:/')],
    ],
    rules,
  )
  const grouped = formatNotice(notices[0]?.[0] as Notice, 'staging')
  assert.is(grouped.title, 'ALERT staging: 2 checks failing since 12:03 UTC: nginx, disk /')
  assert.is(grouped.runbook, 'docs/runbooks/rollback.md, docs/runbooks/health.md#disk')
  const reminder = formatNotice(notices[60]?.[0] as Notice, 'staging')
  assert.is(reminder.title, 'STILL FAILING staging: 2 checks failing since 12:03 UTC: nginx, disk /')
  assert.match(reminder.details?.[1] ?? '', 'disk /: 9% free (minimum 15%) · since 12:03 UTC (1 h 0 min)')
  assert.is(reminder.severity, 'warning')
  const recovery = formatNotice(notices[61]?.[0] as Notice, 'staging')
  assert.is(recovery.outcome, 'success')
  assert.equal([recovery.severity, recovery.resolves], ['info', true])
  assert.is(recovery.title, 'RECOVERED staging: 2 checks ok again: nginx, disk /')
  assert.is(
    recovery.details?.[0],
    'nginx: ok again (active) · down since 12:03 UTC, for 1 h 1 min · runbook: docs/runbooks/rollback.md',
  )
  const one = runs([[down(API)], [up(API)]], rules).notices[1]?.[0] as Notice
  assert.is(
    formatNotice(one, 'production').title,
    'RECOVERED production: container ce-production-blue/api ok again after 1 min (down since 12:03 UTC)',
  )
})

test('a recovery while another check still fails does not end the incident', () => {
  const rules = { failureThreshold: 1, reminderMin: 60 }
  const { notices } = runs(
    [
      [down('nginx', 'inactive'), down(API)],
      [up('nginx', 'active'), down(API)],
      [up('nginx', 'active'), up(API)],
    ],
    rules,
  )
  const partial = notices[1]?.[0] as Notice
  assert.equal([partial.kind, partial.allClear], ['recovery', false])
  assert.is(formatNotice(partial, 'production').resolves, false)
  const last = notices[2]?.[0] as Notice
  assert.equal([last.kind, last.allClear], ['recovery', true])
  assert.is(formatNotice(last, 'production').resolves, true)
})

test('since on another day carries its date', () => {
  const rules = { failureThreshold: 1, reminderMin: 60 * 24 }
  const { notices } = runs(
    Array.from({ length: 1442 }, () => [down(API)]),
    rules,
  )
  const reminder = notices[1440]?.[0] as Notice
  assert.is(reminder.kind, 'reminder')
  assert.is(
    formatNotice(reminder, 'production').title,
    'STILL FAILING production: container ce-production-blue/api down since 2026-03-01 12:03 UTC',
  )
})

test('durations: seconds under a minute, then minutes, hours, days', () => {
  const from = at(0).toISOString()
  assert.equal(
    [6 / 60, 1, 59, 61, 24 * 60 + 5, 3 * 24 * 60 + 120].map((m) => duration(from, at(m))),
    ['6 s', '1 min', '59 min', '1 h 1 min', '24 h 5 min', '3 days 2 h'],
  )
})

test.run()

import * as assert from 'uvu/assert'
import { isBackupId, newBackupId, parseBackupId } from '../../lib/backup/catalog.ts'
import { isoWeek, planRetention, type RetentionPlan } from '../../lib/backup/retention.ts'
import { InputError } from '../../lib/report/errors.ts'
import { suite } from '../harness.ts'

const test = suite('backup retention')
const NOW = new Date('2026-11-26T12:00:00Z') // a Thursday, ISO week 2026-W48
const HOUR = 3_600_000
const DAY = 24 * HOUR

type Entry = { id: string; createdAt: Date; complete: boolean }
const entry = (id: string, complete = true): Entry => ({ id, createdAt: parseBackupId(id), complete })
const at = (ms: number, complete = true) => entry(newBackupId(new Date(ms)), complete)
const kept = (plan: RetentionPlan) => plan.keep.map((k) => k.id)
const reasonsOf = (plan: RetentionPlan, id: string) => plan.keep.find((k) => k.id === id)?.reasons

/** 120 days ending today: a backup at 02:00 UTC every day, and one at 11:00 every other day. */
function history(): Entry[] {
  const out: Entry[] = []
  const today = Date.UTC(2026, 10, 26)
  for (let i = 0; i < 120; i++) {
    out.push(at(today - i * DAY + 2 * HOUR))
    if (i % 2 === 0) out.push(at(today - i * DAY + 11 * HOUR))
  }
  return out
}

test('backup ids: UTC YYYYMMDDTHHMMSSZ, round trip, seconds precision', () => {
  assert.is(newBackupId(new Date('2026-11-26T12:30:00.789Z')), '20261126T123000Z')
  assert.is(newBackupId(new Date('2027-01-01T00:00:05-03:00')), '20270101T030005Z')
  assert.equal(parseBackupId('20261126T123000Z'), new Date('2026-11-26T12:30:00Z'))
  assert.is(newBackupId(parseBackupId('20240229T235959Z')), '20240229T235959Z')
  assert.ok(isBackupId('20261126T123000Z'))
  assert.not.ok(isBackupId('not-an-id'))
})

test('malformed backup ids are InputErrors naming BACKUP', () => {
  for (const bad of [
    '',
    'latest',
    '2026-11-26T12:30:00Z',
    '20261126T123000',
    '20261126t123000z',
    '20261326T123000Z', // month 13
    '20230229T120000Z', // not a leap year
    '20261126T246000Z',
    ' 20261126T123000Z',
  ]) {
    try {
      parseBackupId(bad)
      assert.unreachable(`${bad} parsed`)
    } catch (err) {
      assert.instance(err, InputError, bad)
      assert.match((err as Error).message, `BACKUP=${JSON.stringify(bad)} is not a backup id`)
      assert.match((err as Error).message, 'YYYYMMDDTHHMMSSZ')
    }
  }
})

test('ISO weeks, across year ends', () => {
  assert.is(isoWeek(NOW), '2026-W48')
  assert.is(isoWeek(new Date('2026-11-23T00:00:00Z')), '2026-W48') // Monday starts the week
  assert.is(isoWeek(new Date('2026-11-22T23:59:59Z')), '2026-W47') // Sunday ends the previous one
  assert.is(isoWeek(new Date('2021-01-01T12:00:00Z')), '2020-W53')
  assert.is(isoWeek(new Date('2024-12-30T12:00:00Z')), '2025-W01')
  assert.is(isoWeek(new Date('2027-01-01T12:00:00Z')), '2026-W53')
})

test('120 days of history: 7 daily, 4 weekly, 6 monthly (only 5 months exist), newest of each', () => {
  const entries = history()
  assert.is(entries.length, 180)
  const plan = planRetention(entries, { keepDaily: 7, keepWeekly: 4, keepMonthly: 6 }, NOW)
  assert.equal(kept(plan), [
    '20261126T110000Z',
    '20261125T020000Z',
    '20261124T110000Z',
    '20261123T020000Z',
    '20261122T110000Z',
    '20261121T020000Z',
    '20261120T110000Z',
    '20261115T020000Z',
    '20261108T110000Z',
    '20261031T110000Z',
    '20260930T020000Z',
    '20260831T020000Z',
    '20260731T110000Z',
  ])
  assert.equal(reasonsOf(plan, '20261126T110000Z'), [
    'newest verified',
    'daily 2026-11-26',
    'weekly 2026-W48',
    'monthly 2026-11',
  ])
  assert.equal(reasonsOf(plan, '20261122T110000Z'), ['daily 2026-11-22', 'weekly 2026-W47'])
  assert.equal(reasonsOf(plan, '20261115T020000Z'), ['weekly 2026-W46'])
  assert.equal(reasonsOf(plan, '20261108T110000Z'), ['weekly 2026-W45'])
  assert.equal(reasonsOf(plan, '20261031T110000Z'), ['monthly 2026-10'])
  assert.equal(reasonsOf(plan, '20260731T110000Z'), ['monthly 2026-07'])
  // Everything else goes, each exactly once, newest first.
  assert.is(plan.delete.length, 180 - 13)
  assert.equal(new Set([...kept(plan), ...plan.delete.map((d) => d.id)]).size, 180)
  assert.is(plan.delete[0]?.id, '20261126T020000Z') // the older of today's two
  assert.is(plan.delete[0]?.reason, 'not selected by the retention policy')
  assert.is(plan.delete.at(-1)?.id, '20260730T020000Z')
})

test('the plan does not depend on input order, and duplicate ids count once', () => {
  const entries = history()
  const policy = { keepDaily: 3, keepWeekly: 2, keepMonthly: 2 }
  const forward = planRetention(entries, policy, NOW)
  const shuffled = [...entries].reverse().concat(entries.slice(0, 10))
  assert.equal(planRetention(shuffled, policy, NOW), forward)
})

test('days without a backup do not count: daily 3 reaches back to the last 3 days that have one', () => {
  const entries = ['20261126T020000Z', '20261120T020000Z', '20261101T020000Z', '20261031T020000Z'].map((id) =>
    entry(id),
  )
  const plan = planRetention(entries, { keepDaily: 3, keepWeekly: 0, keepMonthly: 0 }, NOW)
  assert.equal(kept(plan), ['20261126T020000Z', '20261120T020000Z', '20261101T020000Z'])
  assert.equal(
    plan.delete.map((d) => d.id),
    ['20261031T020000Z'],
  )
})

test('a policy of all zeros still keeps the newest complete backup', () => {
  const plan = planRetention(history(), { keepDaily: 0, keepWeekly: 0, keepMonthly: 0 }, NOW)
  assert.equal(plan.keep, [{ id: '20261126T110000Z', reasons: ['newest verified'] }])
  assert.is(plan.delete.length, 179)
})

test('incomplete backups: never the newest verified, kept while young, deleted once stale', () => {
  const entries = [
    at(NOW.getTime() - 10 * 60_000, false), // started 10 minutes ago, still uploading
    at(NOW.getTime() - 23 * HOUR, false),
    at(NOW.getTime() - 25 * HOUR, false),
    entry('20261124T020000Z'),
    entry('20261123T020000Z'),
    at(NOW.getTime() - 30 * DAY, false),
  ]
  const plan = planRetention(entries, { keepDaily: 0, keepWeekly: 0, keepMonthly: 0 }, NOW)
  assert.equal(plan.keep, [
    { id: '20261126T115000Z', reasons: ['in progress?'] },
    { id: '20261125T130000Z', reasons: ['in progress?'] },
    { id: '20261124T020000Z', reasons: ['newest verified'] },
  ])
  assert.equal(plan.delete, [
    { id: '20261125T110000Z', reason: 'incomplete and older than 24h' },
    { id: '20261123T020000Z', reason: 'not selected by the retention policy' },
    { id: '20261027T120000Z', reason: 'incomplete and older than 24h' },
  ])
  // An incomplete backup is not a day's newest either: daily picks the complete one.
  const daily = planRetention(
    [at(NOW.getTime() - HOUR, false), entry('20261126T020000Z')],
    { keepDaily: 1, keepWeekly: 0, keepMonthly: 0 },
    NOW,
  )
  assert.equal(reasonsOf(daily, '20261126T020000Z'), ['newest verified', 'daily 2026-11-26'])
  // keepIncompleteHours changes the window; 0 deletes every incomplete one that is in the past.
  const strict = planRetention(
    entries,
    { keepDaily: 0, keepWeekly: 0, keepMonthly: 0, keepIncompleteHours: 0 },
    NOW,
  )
  assert.equal(kept(strict), ['20261124T020000Z'])
  assert.match(strict.delete[0]?.reason ?? '', 'older than 0h')
  const lax = planRetention(
    entries,
    { keepDaily: 0, keepWeekly: 0, keepMonthly: 0, keepIncompleteHours: 48 },
    NOW,
  )
  assert.equal(kept(lax), ['20261126T115000Z', '20261125T130000Z', '20261125T110000Z', '20261124T020000Z'])
})

test('with no complete backup at all nothing is "newest verified", and young incomplete ones stay', () => {
  const plan = planRetention(
    [at(NOW.getTime() - HOUR, false), at(NOW.getTime() - 3 * DAY, false)],
    { keepDaily: 7, keepWeekly: 4, keepMonthly: 12 },
    NOW,
  )
  assert.equal(plan.keep, [{ id: '20261126T110000Z', reasons: ['in progress?'] }])
  assert.equal(
    plan.delete.map((d) => d.id),
    ['20261123T120000Z'],
  )
  assert.equal(planRetention([], { keepDaily: 1, keepWeekly: 1, keepMonthly: 1 }, NOW), {
    keep: [],
    delete: [],
  })
})

test('days are UTC days: 23:30Z and 00:30Z the next day are different days', () => {
  const plan = planRetention(
    [entry('20261125T233000Z'), entry('20261126T003000Z'), entry('20261125T010000Z')],
    { keepDaily: 2, keepWeekly: 0, keepMonthly: 0 },
    NOW,
  )
  assert.equal(kept(plan), ['20261126T003000Z', '20261125T233000Z'])
  assert.equal(reasonsOf(plan, '20261125T233000Z'), ['daily 2026-11-25'])
})

test('an invalid policy is an InputError listing every bad field', () => {
  try {
    planRetention(
      [],
      { keepDaily: -1, keepWeekly: 1.5, keepMonthly: 3, keepIncompleteHours: Number.NaN },
      NOW,
    )
    assert.unreachable('accepted')
  } catch (err) {
    assert.instance(err, InputError)
    const msg = (err as Error).message
    assert.match(msg, 'invalid backup retention policy')
    assert.match(msg, 'keepDaily: expected a whole number >= 0, got -1')
    assert.match(msg, 'keepWeekly: expected a whole number >= 0, got 1.5')
    assert.match(msg, 'keepIncompleteHours: expected a number >= 0')
    assert.not.match(msg, 'keepMonthly')
  }
})

test.run()

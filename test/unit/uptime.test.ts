import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import * as assert from 'uvu/assert'
import {
  errorLinesScript,
  historyFile,
  nginx5xxScript,
  readHistory,
  restartsScript,
} from '../../lib/commands/uptime.ts'
import { loadEnv } from '../../lib/env/load.ts'
import { InputError } from '../../lib/report/errors.ts'
import { errorRows, outageLines, serviceRows } from '../../lib/uptime/format.ts'
import {
  availability,
  budget,
  buildReport,
  errorFindings,
  historySinceDay,
  latency,
  mergeHistories,
  parseErrorCounts,
  parseHistory,
  percentile,
  stats,
} from '../../lib/uptime/index.ts'
import { watcherOf } from '../../lib/uptime/outside-view.ts'
import { parseDays } from '../../runbooks/uptime.ts'
import { suite } from '../harness.ts'

const test = suite('uptime')
const ENV_DIR = join(import.meta.dirname, '..', '..', 'env')

// Recorded histories, written inline: one JSON line per probe, as the watchdog writes them.
const T0 = Date.parse('2025-11-01T00:00:00Z')
const S = 1000
const MIN = 60 * S
const DAY = 1440 * MIN
const CHECK = 'http:app.example.com'
const iso = (ms: number) => new Date(ms).toISOString()

interface Line {
  at: number
  ok?: boolean
  ms?: number
  host?: string
  source?: string
  check?: string
  detail?: string
}

const jsonl = (lines: Line[]) =>
  lines
    .map((l) =>
      JSON.stringify({
        at: iso(l.at),
        source: l.source ?? 'watchdog',
        host: l.host ?? 'web-1',
        check: l.check ?? CHECK,
        ok: l.ok ?? true,
        ...(l.ms === undefined ? {} : { ms: l.ms }),
        ...(l.detail === undefined ? {} : { detail: l.detail }),
      }),
    )
    .join('\n')

/** One probe a minute, `offsetS` past each minute, for minutes [from, to) after T0. */
function everyMinute(from: number, to: number, each: (k: number) => Partial<Line> = () => ({}), offsetS = 0) {
  const lines: Line[] = []
  for (let k = from; k < to; k++) lines.push({ at: T0 + k * MIN + offsetS * S, ms: 100, ...each(k) })
  return lines
}

const day1 = { from: T0, to: T0 + DAY }
const probesOf = (text: string) => parseHistory(text).probes

test('parse: bad lines are skipped and counted; markers, blank lines and the host fallback', () => {
  const text = [
    '#file ./qa.jsonl',
    '{"at":"2025-11-01T00:00:00Z","source":"watchdog","host":"web-1","check":"http:a.com","ok":true,"ms":87}',
    'not json at all',
    '{"at":"2025-11-01T00:01:00Z","source":"watchdog","host":"web-1","check":"http:a.com","ok":tr', // cut short
    '{"at":"2025-11-01T00:02:00Z","check":"http:a.com"}', // no ok
    '{"at":"2025-11-01T00:03:00","check":"http:a.com","ok":true}', // no time zone
    '{"at":"2025-13-45T00:04:00Z","check":"http:a.com","ok":true}', // no such date
    '[1,2,3]',
    '{"at":"2025-11-01T00:05:00Z","check":"","ok":true}',
    '',
    '   ',
    '{"at":"2025-11-01T03:06:00+03:00","check":"http:a.com","ok":false,"ms":-5,"detail":"timeout"}',
    '#unreadable ./qa.jsonl.2.gz',
  ].join('\n')
  const h = parseHistory(text, { host: 'qa-1' })
  assert.is(h.lines, 9)
  assert.is(h.malformed, 7)
  assert.equal(h.unreadable, ['./qa.jsonl.2.gz'])
  assert.equal(h.probes, [
    {
      at: Date.parse('2025-11-01T00:00:00Z'),
      source: 'watchdog',
      host: 'web-1',
      check: 'http:a.com',
      ok: true,
      ms: 87,
    },
    // +03:00 is 00:06Z; a negative ms is dropped, the probe kept; no host: the host it was read from
    {
      at: Date.parse('2025-11-01T00:06:00Z'),
      source: '',
      host: 'qa-1',
      check: 'http:a.com',
      ok: false,
      detail: 'timeout',
    },
  ])
  assert.is(h.clockBackwards, 0)
})

test('steady 100% over 30 days: no downtime, no unknown, the whole budget left', () => {
  // a probe 5 s past every minute, starting before the window (it carries in)
  const a = availability(probesOf(jsonl(everyMinute(-3, 30 * 1440, () => ({}), 5))), CHECK, {
    from: T0,
    to: T0 + 30 * DAY,
  })
  assert.is(a.windowMin, 43200)
  assert.is(a.upMin, 43200)
  assert.is(a.downMin, 0)
  assert.is(a.unknownMin, 0)
  assert.is(a.availabilityPct, 100)
  assert.is(a.coveragePct, 100)
  assert.is(a.samples, 43201) // the one at -55 s carries into the window
  assert.equal(a.budget, {
    targetPct: 99.9,
    allowedMin: 43.2,
    usedMin: 0,
    remainingMin: 43.2,
    usedPct: 0,
    exhausted: false,
  })
  assert.equal(a.outages, [])
  assert.equal(a.gaps, [])
})

test('a 10-minute outage: 10 min down, from the first failed probe to the first good one', () => {
  const lines = everyMinute(-1, 1440, (k) => (k >= 600 && k < 610 ? { ok: false } : {}))
  const a = availability(probesOf(jsonl(lines)), CHECK, day1)
  assert.is(a.downMin, 10)
  assert.is(a.upMin, 1430)
  assert.is(a.unknownMin, 0)
  assert.is(a.availabilityPct, 99.306) // 1430 / 1440
  assert.equal(a.outages, [{ from: '2025-11-01T10:00:00.000Z', to: '2025-11-01T10:10:00.000Z', minutes: 10 }])
  // over one day the 99.9% budget is 1.44 min: spent almost seven times
  assert.equal(a.budget, {
    targetPct: 99.9,
    allowedMin: 1.44,
    usedMin: 10,
    remainingMin: -8.56,
    usedPct: 694.4,
    exhausted: true,
  })
  // the same outage in a 30-day window: 99.977%, 23.1% of the 43.2 min budget
  const month = everyMinute(-1, 30 * 1440, (k) => (k >= 600 && k < 610 ? { ok: false } : {}))
  const m = availability(probesOf(jsonl(month)), CHECK, { from: T0, to: T0 + 30 * DAY })
  assert.is(m.availabilityPct, 99.977)
  assert.equal(m.budget, {
    targetPct: 99.9,
    allowedMin: 43.2,
    usedMin: 10,
    remainingMin: 33.2,
    usedPct: 23.1,
    exhausted: false,
  })
})

test('a gap (watchdog stopped for an hour) is unknown, not down; a failure before it holds 150 s only', () => {
  // no probes for minutes 120..179: the one at 119 holds until 121.5, then nothing until 180
  const lines = everyMinute(-1, 1440).filter((l) => l.at < T0 + 120 * MIN || l.at >= T0 + 180 * MIN)
  const a = availability(probesOf(jsonl(lines)), CHECK, day1)
  assert.is(a.upMin, 1381.5)
  assert.is(a.downMin, 0)
  assert.is(a.unknownMin, 58.5)
  assert.is(a.availabilityPct, 100)
  assert.is(a.coveragePct, 95.9)
  assert.equal(a.gaps, [{ from: '2025-11-01T02:01:30.000Z', to: '2025-11-01T03:00:00.000Z', minutes: 58.5 }])
  // the last probe before the gap failed (the host went down with its watchdog): 2.5 min down, not 61
  const failing = lines.map((l) => (l.at === T0 + 119 * MIN ? { ...l, ok: false } : l))
  const b = availability(probesOf(jsonl(failing)), CHECK, day1)
  assert.is(b.downMin, 2.5)
  assert.is(b.unknownMin, 58.5)
  assert.is(b.upMin, 1379)
  // a longer hold is a choice: maxGapS 300 covers 5 min after the last probe
  assert.is(availability(probesOf(jsonl(lines)), CHECK, day1, { maxGapS: 300 }).unknownMin, 56)
  // no data at all: no availability, all unknown
  const none = availability([], CHECK, day1)
  assert.is(none.availabilityPct, null)
  assert.is(none.unknownMin, 1440)
  assert.is(none.coveragePct, 0)
  assert.equal(none.budget.exhausted, false)
})

test('overlapping probes (two hosts, two sources, a line written twice) count once; any failure in a minute = down', () => {
  const a = everyMinute(-1, 1440, () => ({ host: 'web-1' }), 0)
  // web-2 probes 30 s later each minute, and fails once, at 05:00:30
  const b = everyMinute(-1, 1440, (k) => ({ host: 'web-2', ...(k === 300 ? { ok: false } : {}) }), 30)
  const health = [{ at: T0 + 900 * MIN + 10 * S, source: 'health' }] // make health, same minute as the watchdog
  const dup = a.slice(500, 501) // a line written twice
  const text = jsonl([...a, ...b, ...health, ...dup])
  const r = availability(probesOf(text), CHECK, day1)
  // minute -1 ends where minute 0 starts (00:00:00): it does not reach the window
  assert.is(r.probes, 2 * 1440 + 1 + 1)
  assert.is(r.samples, 1440) // one per minute
  assert.is(r.upMin, 1439)
  assert.is(r.downMin, 1) // the whole minute 05:00-05:01, though web-1 said up
  assert.equal(r.outages, [{ from: '2025-11-01T05:00:00.000Z', to: '2025-11-01T05:01:00.000Z', minutes: 1 }])
  // the result does not depend on the order of the lines (hosts read in another order, shuffled files)
  const reversed = text.split('\n').reverse().join('\n')
  assert.equal(availability(probesOf(reversed), CHECK, day1), r)
  const merged = mergeHistories(
    [parseHistory(jsonl(b)), parseHistory(jsonl([...a, ...health, ...dup]))],
    T0 + DAY,
  )
  assert.equal(availability(merged.probes, CHECK, day1), r)
})

test('out-of-order lines and a clock jumping forward then back: sorted, counted, no double counting', () => {
  // The clock ran 60 min ahead for minutes 100..109 (stamped 160..169), then was corrected.
  const lines = everyMinute(-1, 1440).map((l, i) => {
    const k = i - 1
    return k >= 100 && k < 110 ? { ...l, at: l.at + 60 * MIN } : l
  })
  // a late writer: a `make health` line stamped 30 s before the line it follows (within the tolerance)
  lines.splice(300, 0, { at: T0 + 298 * MIN + 30 * S, source: 'health' })
  const h = parseHistory(jsonl(lines))
  assert.is(h.clockBackwards, 1) // 10:10 after 02:49: one jump back; the late writer is not one
  const a = availability(h.probes, CHECK, day1)
  // minutes 100..109 have no stamp: 99 holds until 101.5, unknown until 110; 160..169 counted once
  assert.is(a.unknownMin, 8.5)
  assert.is(a.upMin, 1431.5)
  assert.is(a.downMin, 0)
  assert.equal(a.gaps, [{ from: '2025-11-01T01:41:30.000Z', to: '2025-11-01T01:50:00.000Z', minutes: 8.5 }])

  // The clock set back 60 min at minute 1000 and never corrected: the repeated hour merges with the
  // first (a failure in it is still one minute down), the last hour has no stamps at all.
  const back = everyMinute(-1, 1440).map((l, i) => {
    const k = i - 1
    return k >= 1000 ? { ...l, at: l.at - 60 * MIN, ...(k === 1010 ? { ok: false } : {}) } : l
  })
  const hb = parseHistory(jsonl(back))
  assert.is(hb.clockBackwards, 1)
  const b = availability(hb.probes, CHECK, day1)
  assert.is(b.downMin, 1) // stamped 15:50 (really 16:50): minute 950 is down
  assert.equal(b.outages, [{ from: '2025-11-01T15:50:00.000Z', to: '2025-11-01T15:51:00.000Z', minutes: 1 }])
  assert.is(b.unknownMin, 58.5) // the last stamp is 22:59 (really 23:59): holds until 23:01:30
  assert.is(b.upMin, 1380.5)
})

test('future timestamps (a clock ahead) are dropped and counted per host; within the tolerance they are kept', () => {
  const now = T0 + DAY
  const web1 = parseHistory(
    jsonl([
      ...everyMinute(1430, 1440),
      { at: now + 30 * S }, // 30 s ahead: a small skew, kept (outside the window anyway)
      { at: now + 60 * MIN, ok: false },
      { at: now + 61 * MIN, ok: false },
      { at: now + 3 * DAY },
    ]),
  )
  const web2 = parseHistory(jsonl([{ at: now - 5 * MIN, host: 'web-2' }]))
  const { probes, future } = mergeHistories([web1, web2], now)
  assert.equal(future, [3, 0])
  assert.is(probes.length, 12)
  assert.equal(
    probes.map((p) => p.at),
    [...probes.map((p) => p.at)].sort((x, y) => x - y),
  )
  const a = availability(probes, CHECK, { from: now - 10 * MIN, to: now })
  assert.is(a.upMin, 10)
  assert.is(a.downMin, 0)
})

test('window boundaries: a probe before the start carries in (at most 150 s); a probe at the end is out', () => {
  const w = { from: T0, to: T0 + 60 * MIN }
  const inside = everyMinute(0, 60, () => ({}), 50) // 00:00:50 ... 00:59:50
  // failed 100 s before the window: down from the start until the first probe inside (50 s)
  const a = availability(probesOf(jsonl([{ at: T0 - 100 * S, ok: false }, ...inside])), CHECK, w)
  assert.is(a.downMin, 0.833)
  assert.is(a.upMin, 59.167)
  assert.is(a.unknownMin, 0)
  assert.equal(a.outages, [
    { from: '2025-11-01T00:00:00.000Z', to: '2025-11-01T00:00:50.000Z', minutes: 0.833 },
  ])
  // failed 200 s before: its 150 s end before the window; the start is unknown
  const b = availability(probesOf(jsonl([{ at: T0 - 200 * S, ok: false }, ...inside])), CHECK, w)
  assert.is(b.downMin, 0)
  assert.is(b.unknownMin, 0.833)
  // a failure at `to` belongs to the next window
  const c = availability(probesOf(jsonl([...inside, { at: w.to, ok: false }])), CHECK, w)
  assert.is(c.downMin, 0)
  assert.is(c.upMin, 59.167) // the last probe (00:59:50) holds 10 s to the end
})

test('budget arithmetic: 99.9% of 30 days is 43.2 min; used, remaining, % used, exhausted', () => {
  const month = 30 * DAY
  assert.equal(budget(month, 0), {
    targetPct: 99.9,
    allowedMin: 43.2,
    usedMin: 0,
    remainingMin: 43.2,
    usedPct: 0,
    exhausted: false,
  })
  assert.equal(budget(month, 21.6 * MIN), {
    targetPct: 99.9,
    allowedMin: 43.2,
    usedMin: 21.6,
    remainingMin: 21.6,
    usedPct: 50,
    exhausted: false,
  })
  assert.equal(budget(month, 43.2 * MIN).exhausted, true)
  assert.equal(budget(month, 43.2 * MIN).remainingMin, 0)
  assert.equal(budget(month, 50 * MIN), {
    targetPct: 99.9,
    allowedMin: 43.2,
    usedMin: 50,
    remainingMin: -6.8,
    usedPct: 115.7,
    exhausted: true,
  })
  assert.is(budget(DAY, 0).allowedMin, 1.44)
  assert.is(budget(7 * DAY, 0).allowedMin, 10.08)
  assert.is(budget(month, 0, 99.99).allowedMin, 4.32)
  assert.is(budget(month, 0, 99.5).allowedMin, 216)
})

test('percentiles are nearest-rank: always a measured value, few samples included', () => {
  assert.is(percentile([], 50), null)
  assert.is(percentile([42], 50), 42)
  assert.is(percentile([42], 95), 42)
  assert.is(percentile([10, 20], 50), 10)
  assert.is(percentile([10, 20], 95), 20)
  assert.is(percentile([10, 20, 30, 40], 50), 20)
  assert.is(percentile([10, 20, 30, 40], 95), 40)
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1)
  assert.is(percentile(hundred, 50), 50)
  assert.is(percentile(hundred, 95), 95)
  const twenty = Array.from({ length: 20 }, (_, i) => i + 1)
  assert.is(percentile(twenty, 95), 19) // ceil(0.95 × 20) = 19th
  assert.equal(stats([300, 100, 200]), { samples: 3, p50: 200, p95: 300 })
})

test('latency: p50/p95 of good probes, trend against the previous window, degradation past the factor', () => {
  // previous day: 100..119 ms evenly (p50 109, p95 118); this day 200..238 ms step 2 (p50 218, p95 236)
  const before = everyMinute(-1440, 0, (k) => ({ ms: 100 + (((k % 20) + 20) % 20) }))
  const now = everyMinute(0, 1440, (k) => ({ ms: 200 + 2 * (k % 20) }))
  const failed = [{ at: T0 + 5 * MIN + 30 * S, ok: false, ms: 10000 }] // a timeout: downtime, not latency
  const l = latency(probesOf(jsonl([...before, ...now, ...failed])), CHECK, day1, { factor: 2 })
  assert.equal(l.current, { samples: 1440, p50: 218, p95: 236 })
  assert.equal(l.previous, { samples: 1440, p50: 109, p95: 118 })
  assert.equal(l.trend, { p50Pct: 100, p95Pct: 100 })
  assert.is(l.baselineP95, 118)
  assert.is(l.degraded, false) // 236 is exactly 2 × 118: not past it
  assert.equal(l.daily, [{ day: '2025-11-01', samples: 1440, p50: 218, p95: 236 }])

  const worse = everyMinute(0, 1440, (k) => ({ ms: 201 + 2 * (k % 20) }))
  const d = latency(probesOf(jsonl([...before, ...worse])), CHECK, day1, { factor: 2 })
  assert.is(d.current.p95, 237)
  assert.is(d.degraded, true)
  assert.equal(d.trend, { p50Pct: 100.9, p95Pct: 100.8 })
  assert.is(latency(probesOf(jsonl([...before, ...worse])), CHECK, day1, { factor: 3 }).degraded, false)

  // too few samples in a window to trust a p95: never degraded
  const few = latency(probesOf(jsonl([...before.slice(0, 10), ...worse.slice(0, 10)])), CHECK, day1, {
    factor: 2,
  })
  assert.is(few.current.samples, 10)
  assert.is(few.degraded, false)
  // no previous window (a new env): no baseline, no trend
  const fresh = latency(probesOf(jsonl(worse)), CHECK, day1, { factor: 2 })
  assert.equal(fresh.trend, { p50Pct: null, p95Pct: null })
  assert.is(fresh.baselineP95, null)
  assert.is(fresh.degraded, false)
  // daily figures over a 2-day window
  const two = latency(
    probesOf(jsonl([...now, ...worse.map((x) => ({ ...x, at: x.at + DAY }))])),
    CHECK,
    {
      from: T0,
      to: T0 + 2 * DAY,
    },
    { factor: 2 },
  )
  assert.equal(two.daily, [
    { day: '2025-11-01', samples: 1440, p50: 218, p95: 236 },
    { day: '2025-11-02', samples: 1440, p50: 219, p95: 237 },
  ])
})

const COUNTS = [
  'log /var/log/nginx/qa-access.log',
  'requests 1200',
  'unparsed 2',
  '5xx 202511261337 25',
  '5xx 202511261336 3',
  'restarts ce-qa-data/postgres 0 2025-11-20T10:00:00.123456789Z running',
  'restarts ce-qa-blue/api 2 2025-11-26T13:30:01.5Z running',
  'restarts ce-qa-blue/saas 7 2025-11-20T13:30:01Z running',
  'errors ce-qa-blue/api 450',
  'errors ce-qa-blue/saas 0',
  'errors ce-qa-blue/site 3',
  'some noise the parser ignores',
].join('\n')
const NOW = Date.parse('2025-11-26T13:45:00Z')
const LAST30 = { from: NOW - 30 * MIN, to: NOW }
const THRESHOLDS = { windowMin: 30, max5xxPerMin: 10, maxRestarts: 3, maxErrorLinesPerMin: 10 }
// The watchdog's container lines (lib/watchdog/containers.ts): a restart carries its budget note.
const API = 'container:ce-qa-blue/api'
const RESTARTS = jsonl([
  {
    at: NOW - 25 * MIN,
    check: API,
    ok: false,
    detail: 'exited (137) at 13:19; restarted (1 of 3 in 30 min), running, healthy again after 4 s',
  },
  {
    at: NOW - 20 * MIN,
    check: API,
    ok: false,
    detail: 'unhealthy; restarted (2 of 3 in 30 min), still unhealthy 20 s later',
  },
  { at: NOW - 45 * MIN, check: API, ok: false, detail: 'exited (1); restarted (1 of 3 in 30 min)' }, // before the window
  {
    at: NOW - 15 * MIN,
    check: API,
    ok: false,
    detail: 'exited (1); gave up after 3 restarts in 30 min: left alone',
  },
  {
    at: NOW - 12 * MIN,
    check: API,
    ok: false,
    detail: 'exited (0); not restarted (watchdog.max_restarts is 0)',
  },
  { at: NOW - 10 * MIN, check: API, ok: true, detail: 'running, healthy' },
  { at: NOW - 5 * MIN, check: API, ok: false, source: 'health', detail: 'restarted (1 of 3 in 30 min)' }, // not the watchdog
  {
    at: NOW - 5 * MIN,
    check: 'container:ce-qa-data/redis',
    ok: false,
    host: 'web-2',
    detail: 'exited (0); restarted (1 of 3 in 30 min)',
  },
])

test('error tracking: 5xx peak per minute, restarts (Docker + watchdog), app error lines against thresholds', () => {
  const counts = parseErrorCounts(COUNTS, 'web-1')
  assert.is(counts.log, '/var/log/nginx/qa-access.log')
  assert.is(counts.requests, 1200)
  assert.is(counts.unparsed, 2)
  assert.equal(counts.fivexx, [
    { minute: '2025-11-26T13:36', count: 3 },
    { minute: '2025-11-26T13:37', count: 25 },
  ])
  assert.is(counts.containers.length, 3)
  const findings = errorFindings([counts], probesOf(RESTARTS), LAST30, THRESHOLDS)
  assert.equal(findings, [
    {
      kind: '5xx',
      host: 'web-1',
      subject: 'nginx',
      value: 25,
      limit: 10,
      alert: true,
      message:
        'nginx 5xx: 28 of 1200 requests in the last 30 min, peak 25/min at 2025-11-26T13:37 (limit 10/min)',
    },
    {
      kind: 'restarts',
      host: 'web-1',
      subject: 'ce-qa-blue/api',
      value: 4,
      limit: 3,
      alert: true,
      message: 'ce-qa-blue/api restarted 4 time(s) in the last 30 min (watchdog 2, Docker 2; limit 3)',
    },
    {
      kind: 'error-lines',
      host: 'web-1',
      subject: 'ce-qa-blue/api',
      value: 450,
      limit: 300,
      alert: true,
      message: 'ce-qa-blue/api: 450 error line(s) in the last 30 min (15/min; limit 10/min)',
    },
    {
      kind: 'error-lines',
      host: 'web-1',
      subject: 'ce-qa-blue/site',
      value: 3,
      limit: 300,
      alert: false,
      message: 'ce-qa-blue/site: 3 error line(s) in the last 30 min (0.1/min; limit 10/min)',
    },
  ])
  // the saas container restarted 7 times, but its current run started days ago: 0 in the window
  assert.not.ok(findings.some((f) => f.subject === 'ce-qa-blue/saas'))
  // a quiet host: one nginx row, not alerting; exactly at the thresholds is not above them
  const quiet = parseErrorCounts(
    'requests 10\nunparsed 0\n5xx 202511261340 10\nerrors ce-qa-blue/api 300',
    'web-2',
  )
  const q = errorFindings([quiet], probesOf(RESTARTS), LAST30, THRESHOLDS)
  assert.equal(
    q.map((f) => [f.kind, f.subject, f.value, f.alert]),
    [
      ['5xx', 'nginx', 10, false],
      ['restarts', 'ce-qa-data/redis', 1, false],
      ['error-lines', 'ce-qa-blue/api', 300, false],
    ],
  )
  assert.is(
    q[0]?.message,
    'nginx 5xx: 10 of 10 requests in the last 30 min, peak 10/min at 2025-11-26T13:40 (limit 10/min)',
  )
  const none = errorFindings([parseErrorCounts('', 'web-3')], [], LAST30, THRESHOLDS)
  assert.equal(none[0]?.message, 'nginx 5xx: 0 of 0 requests in the last 30 min (limit 10/min)')
})

test('the report: services, history stats, alerts that fail the run, warnings that do not', () => {
  const now = T0 + DAY
  const web1 = everyMinute(-1441, 1440, (k) => ({
    ms: k < 0 ? 100 + (((k % 20) + 20) % 20) : 201 + 2 * (k % 20),
    ...(k >= 600 && k < 610 ? { ok: false } : {}),
  }))
  const web1Text = `${jsonl(web1)}\n{"at":"2025-11-01T12:00:00Z","sou\n${jsonl([{ at: now + DAY }])}`
  const web2Text = jsonl([
    { at: T0 + 700 * MIN, host: 'web-2', check: 'http:example.com', ms: 50 },
    { at: T0 + 100 * MIN, host: 'web-2', check: 'http:example.com', ms: 60 },
  ])
  const report = buildReport({
    env: 'qa',
    now,
    days: 1,
    services: [
      { service: 'saas', domain: 'app.example.com' },
      { service: 'site', domain: 'example.com' },
    ],
    histories: [
      { host: 'web-1', history: parseHistory(web1Text, { host: 'web-1' }) },
      { host: 'web-2', history: parseHistory(web2Text, { host: 'web-2' }) },
    ],
    errors: [parseErrorCounts('requests 5\nunparsed 1', 'web-1')],
    p95DegradeFactor: 2,
    errorThresholds: THRESHOLDS,
  })
  assert.equal(report.window, { from: '2025-11-01T00:00:00.000Z', to: '2025-11-02T00:00:00.000Z' })
  assert.equal(report.previousWindow, { from: '2025-10-31T00:00:00.000Z', to: '2025-11-01T00:00:00.000Z' })
  assert.equal(report.errorWindow, {
    from: '2025-11-01T23:30:00.000Z',
    to: '2025-11-02T00:00:00.000Z',
    minutes: 30,
  })
  assert.equal(report.history, [
    { host: 'web-1', lines: 2883, probes: 2882, malformed: 1, clockBackwards: 0, future: 1, unreadable: [] },
    { host: 'web-2', lines: 2, probes: 2, malformed: 0, clockBackwards: 1, future: 0, unreadable: [] },
  ])
  const [saas, site] = report.services
  assert.is(saas?.availability.downMin, 10)
  // the 10 failed probes have no latency: 1430 samples, 201..219 ms 71 times each, 221..239 72 times
  assert.equal(saas?.latency.current, { samples: 1430, p50: 221, p95: 239 })
  assert.is(site?.availability.upMin, 5) // two probes (out of order: web-2's clock jump), 2.5 min each
  assert.equal(report.alerts, [
    'saas (app.example.com): error budget exhausted: 10 of 1.44 min of downtime allowed at 99.9% over 1 days (694.4%)',
    'saas (app.example.com): p95 239 ms is more than 2× its baseline 118 ms (the previous 1 days)',
  ])
  assert.equal(report.warnings, [
    'web-1: 1 malformed or cut-short history line(s) skipped',
    'web-1: 1 probe(s) stamped in the future ignored (a clock ahead)',
    "web-2: the history's clock jumped back 1 time(s) (lines sorted by time)",
    'site: probes cover 0.3% of the window (1435 min without data): is the watchdog running?',
    'web-1: no nginx access log found',
    'web-1: 1 access log line(s) without a time or status',
  ])
  assert.is(historySinceDay(now, 1), '2025-10-29')
  assert.is(historySinceDay(Date.parse('2025-11-26T13:45:00Z'), 30), '2025-09-26')
  // what the terminal shows
  const rows = serviceRows(report)
  assert.equal(rows[1], [
    'saas (app.example.com)',
    'host',
    '99.306%',
    '10.0 min',
    '0.0 min',
    '694.4% of 1.44 min',
    '221 ms',
    '239 ms',
    '118 ms',
    '+102.8% / +102.5%',
    'BUDGET EXHAUSTED, P95 > 2x',
  ])
  assert.equal(rows[2]?.slice(0, 5), ['site (example.com)', 'host', '100.000%', '0.0 min', '1435.0 min'])
  assert.equal(outageLines(report), [
    'saas: down 2025-11-01T10:00:00.000Z -> 2025-11-01T10:10:00.000Z (10.0 min)',
  ])
  assert.equal(errorRows(report)[1]?.slice(0, 5), ['web-1', 'nginx 5xx/min (peak)', '0', '10', 'ok'])
  // JSON=1 prints this very object: it must survive a round trip unchanged
  assert.equal(JSON.parse(JSON.stringify(report)), report)
})

test('the outside view: a dead droplet is unknown on its own history and down as the watching env saw it', () => {
  const now = T0 + DAY
  const OUT = 'outside:qa/app.example.com'
  // qa's own watchdog wrote nothing from 10:00 to 11:00 (the droplet was gone); the watching env's
  // watchdog (ops) probed qa's domain every minute from its own droplet and failed for that hour
  const host = jsonl(
    everyMinute(-1, 1440, () => ({})).filter((l) => l.at < T0 + 600 * MIN || l.at >= T0 + 660 * MIN),
  )
  const seen = jsonl(
    everyMinute(-1, 1440, (k) => ({
      check: OUT,
      host: 'ops-1',
      ms: 40,
      ...(k >= 600 && k < 660 ? { ok: false, detail: 'GET https://app.example.com/healthz: no answer' } : {}),
    })),
  )
  const input = {
    env: 'qa',
    now,
    days: 1,
    services: [{ service: 'saas', domain: 'app.example.com' }],
    histories: [{ host: 'web-1', history: parseHistory(host, { host: 'web-1' }) }],
    errors: [parseErrorCounts('requests 5\nunparsed 0\nlog /var/log/nginx/access.log', 'web-1')],
    p95DegradeFactor: 2,
    errorThresholds: THRESHOLDS,
  }
  const report = buildReport({
    ...input,
    outside: { from: 'ops', histories: [{ host: 'ops/web-1', history: parseHistory(seen) }] },
  })
  const [saas] = report.services
  assert.is(saas?.availability.downMin, 0)
  // the last probe before the gap holds 150 s: 58.5 of the 60 min without data
  assert.is(saas?.availability.unknownMin, 58.5)
  assert.is(saas?.outside?.availability.downMin, 60)
  assert.is(saas?.outside?.availability.unknownMin, 0)
  assert.equal(saas?.outside?.latency.current, { samples: 1380, p50: 40, p95: 40 })
  assert.equal(report.outside, {
    from: 'ops',
    history: [
      {
        host: 'ops/web-1',
        lines: 1441,
        probes: 1441,
        malformed: 0,
        clockBackwards: 0,
        future: 0,
        unreadable: [],
      },
    ],
  })
  // 60 min down from outside is over the day's 1.44 min: the outside view's budget alerts on its own
  assert.equal(report.alerts, [
    "saas (app.example.com) seen from outside (ops's watchdog): error budget exhausted: 60 of 1.44 min of downtime allowed at 99.9% over 1 days (4166.7%)",
  ])
  const rows = serviceRows(report)
  assert.equal(rows[0]?.slice(0, 3), ['service', 'view', 'availability'])
  assert.equal(rows[1]?.slice(0, 5), ['saas (app.example.com)', 'host', '100.000%', '0.0 min', '58.5 min'])
  assert.equal(rows[2]?.slice(0, 6), [
    '',
    'outside (ops)',
    '95.833%',
    '60.0 min',
    '0.0 min',
    '4166.7% of 1.44 min',
  ])
  assert.equal(outageLines(report), [
    'saas seen from ops: down 2025-11-01T10:00:00.000Z -> 2025-11-01T11:00:00.000Z (60.0 min)',
  ])
  assert.equal(JSON.parse(JSON.stringify(report)), report)

  // the watching env's host did not answer: a warning, and the host view stands alone
  const unread = buildReport({
    ...input,
    outside: { from: 'ops', histories: [], error: 'ops/web-1 as ce-check: timed out' },
  })
  assert.equal(unread.alerts, [])
  assert.ok(
    unread.warnings.includes('the outside view (ops) could not be read: ops/web-1 as ce-check: timed out'),
  )
  // read, but the watcher's watchdog wrote no probe of qa: said, with what to check
  const silent = buildReport({
    ...input,
    outside: { from: 'ops', histories: [{ host: 'ops/web-1', history: parseHistory(host) }] },
  })
  assert.ok(
    silent.warnings.some((w) =>
      w.startsWith(
        "saas seen from outside: probes cover 0% of the window (1440 min without data): is ops's watchdog running",
      ),
    ),
    silent.warnings.join('\n'),
  )
  // the env's own droplet did not answer (make uptime goes on without it): named first
  const dead = buildReport({
    ...input,
    histories: [],
    unreachable: [{ host: 'web-1', reason: 'Cannot reach web-1 (ce-check@10.0.0.2:22): ETIMEDOUT' }],
    outside: { from: 'ops', histories: [{ host: 'ops/web-1', history: parseHistory(seen) }] },
  })
  assert.equal(dead.unreachable, [
    { host: 'web-1', reason: 'Cannot reach web-1 (ce-check@10.0.0.2:22): ETIMEDOUT' },
  ])
  assert.is(
    dead.warnings[0],
    'web-1 did not answer: its history is not in the host view (the outside view shows what visitors saw): Cannot reach web-1 (ce-check@10.0.0.2:22): ETIMEDOUT',
  )
  assert.is(dead.services[0]?.availability.availabilityPct, null)
  assert.is(dead.services[0]?.outside?.availability.downMin, 60)
  // no outside view configured: nothing of it in the report
  assert.is(buildReport(input).outside, undefined)
  assert.is(buildReport(input).services[0]?.outside, undefined)
})

test('outside_view: the committed envs read each other; a watcher that does not watch, or does not load, is refused', () => {
  const production = loadEnv('production')
  const staging = loadEnv('staging')
  assert.is(watcherOf(production)?.name, 'staging')
  assert.is(watcherOf(staging)?.name, 'production')
  assert.is(watcherOf({ ...production, outsideView: undefined }), undefined)
  assert.throws(
    () => watcherOf({ ...production, outsideView: { env: 'nowhere', checkerKey: { file: 'k' } } }),
    /outside_view.env names nowhere, whose env file does not load/,
  )
  // staging stops watching production: production's outside view would read nothing, so it is refused
  const dir = mkdtempSync(join(tmpdir(), 'uptime-envs-'))
  const saved = process.env.CE_ENV_DIR
  try {
    for (const name of ['production', 'staging'])
      writeFileSync(join(dir, `${name}.yaml`), readFileSync(join(ENV_DIR, `${name}.yaml`), 'utf8'))
    const text = readFileSync(join(dir, 'staging.yaml'), 'utf8')
    assert.ok(text.includes('watch: [production]'))
    writeFileSync(join(dir, 'staging.yaml'), text.replace('watch: [production]', 'watch: []'))
    process.env.CE_ENV_DIR = dir
    assert.throws(
      () => watcherOf(loadEnv('production')),
      (err: Error) =>
        err instanceof InputError &&
        /outside_view.env is staging, but .*staging.yaml's watchdog.watch does not name production/.test(
          err.message,
        ) &&
        /Add production to watchdog.watch in .*staging.yaml/.test(err.next ?? ''),
    )
  } finally {
    if (saved === undefined) delete process.env.CE_ENV_DIR
    else process.env.CE_ENV_DIR = saved
    rmSync(dir, { recursive: true, force: true })
  }
})

test('DAYS: 30 by default, a whole number from 1 to 365', () => {
  assert.is(parseDays(undefined), 30)
  assert.is(parseDays('7'), 7)
  assert.is(parseDays('365'), 365)
  for (const bad of ['0', '366', '1.5', '-1', 'thirty'])
    assert.throws(() => parseDays(bad), /expected a whole number of days from 1 to 365/)
})

test('host commands: the exact scripts for restarts and app error lines', () => {
  assert.is(historyFile('qa'), '/var/log/conciliaextrato/health/qa.jsonl')
  assert.is(
    restartsScript('qa'),
    `for p in ce-qa-data ce-qa-blue ce-qa-green; do for c in $(docker ps -a -q --filter "label=com.docker.compose.project=$p" 2>/dev/null); do docker inspect -f 'restarts {{index .Config.Labels "com.docker.compose.project"}}/{{index .Config.Labels "com.docker.compose.service"}} {{.RestartCount}} {{.State.StartedAt}} {{.State.Status}}' "$c" 2>/dev/null || true; done; done`,
  )
  assert.is(
    errorLinesScript('qa', 30),
    `for p in ce-qa-blue ce-qa-green; do for c in $(docker ps -q --filter "label=com.docker.compose.project=$p" 2>/dev/null); do n=$(docker logs --since 30m "$c" 2>&1 | grep -ciE 'error|panic' || true); echo "errors $(docker inspect -f '{{index .Config.Labels "com.docker.compose.project"}}/{{index .Config.Labels "com.docker.compose.service"}}' "$c" 2>/dev/null) \${n:-0}"; done; done`,
  )
  assert.throws(() => readHistory('qa', '2025-9-1'), /not YYYY-MM-DD/)
  const cmd = readHistory('qa', '2025-09-26')
  assert.match(cmd, "find . -maxdepth 1 -type f -name 'qa.jsonl*' -newermt 2025-09-26 2>/dev/null | sort -V")
  assert.match(cmd, 'if cd /var/log/conciliaextrato/health 2>/dev/null; then')
  assert.match(cmd, "awk -v since=2025-09-26 '")
  assert.ok(cmd.endsWith('| gzip -c'))
})

const bash = (script: string) =>
  execFileSync('bash', ['-o', 'pipefail', '-c', script], { env: { ...process.env, TZ: 'UTC' } })

test('host commands run: the history reader filters by day and check, keeps broken lines, reads rotations', () => {
  const dir = mkdtempSync(join(tmpdir(), 'uptime-history-'))
  try {
    writeFileSync(
      join(dir, 'qa.jsonl'),
      [
        '{"at":"2025-09-25T23:59:00Z","check":"http:a.com","ok":true}', // before the day: out
        '{"at":"2025-09-26T00:00:00Z","check":"http:a.com","ok":true,"ms":10}',
        '{"at":"2025-09-26T00:00:00Z","check":"disk:/","ok":true}', // not needed: out
        '{"at":"2025-09-26T00:01:00Z","check":"container:ce-qa-blue/api","ok":false,"detail":"restarted"}',
        '{"at":"2025-09-26T00:02:00Z","sou', // cut short, no newline: kept, to be counted
      ].join('\n'),
    )
    writeFileSync(
      join(dir, 'qa.jsonl.1.gz'),
      gzipSync('{"at":"2025-09-27T00:00:00Z","check":"http:a.com","ok":false}\n'),
    )
    writeFileSync(join(dir, 'prod.jsonl'), '{"at":"2025-09-27T00:00:00Z","check":"http:b.com","ok":true}\n')
    mkdirSync(join(dir, 'qa.jsonl.d')) // not a file
    const out = execFileSync('gunzip', ['-c'], {
      input: bash(readHistory('qa', '2025-09-26', dir)),
    }).toString()
    const h = parseHistory(out, { host: 'qa-1' })
    assert.is(h.lines, 4)
    assert.is(h.malformed, 1)
    assert.equal(
      h.probes.map((p) => [p.check, p.ok]),
      [
        ['http:a.com', true],
        ['container:ce-qa-blue/api', false],
        ['http:a.com', false],
      ],
    )
    assert.is(h.clockBackwards, 0) // each file after its own #file line
    // no directory at all: an empty (gzipped) answer, exit 0
    const empty = execFileSync('gunzip', ['-c'], {
      input: bash(readHistory('qa', '2025-09-26', join(dir, 'nope'))),
    })
    assert.is(empty.length, 0)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

const pad = (n: number) => String(n).padStart(2, '0')
const MONTHS = 'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split(' ')
const timeLocal = (d: Date) =>
  `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`
const minuteKey = (d: Date) => d.toISOString().slice(0, 16)

test('host commands run: nginx 5xx per minute from the combined format and the env format, rotation included', () => {
  const dir = mkdtempSync(join(tmpdir(), 'uptime-nginx-'))
  try {
    const now = Date.now()
    const ago5 = new Date(now - 5 * MIN)
    const ago2 = new Date(now - 2 * MIN)
    const ago40 = new Date(now - 40 * MIN)
    const combined = (d: Date, status: number) =>
      `203.0.113.9 - - [${timeLocal(d)}] "GET /health?x=1 HTTP/1.1" ${status} 612 "-" "curl/8.0"`
    const edge = (d: Date, status: number) =>
      `203.0.113.0 [${d.toISOString().slice(0, 19)}+00:00] "GET /api/v1 HTTP/2.0" ${status} 0 0.004 "api.qa" "ua 1.0" tls=TLSv1.3 origin_pull=NONE colour=blue`
    writeFileSync(join(dir, 'qa-access.log.1'), `${combined(ago40, 500)}\n${combined(ago5, 502)}\n`)
    writeFileSync(
      join(dir, 'qa-access.log'),
      [
        combined(ago5, 200),
        edge(ago2, 503),
        edge(ago2, 404),
        'garbage without a time',
        `203.0.113.9 - - [${timeLocal(ago2)}] "GET / HTTP/1.1`, // cut short: no status
        '',
      ].join('\n'),
    )
    const counts = parseErrorCounts(bash(nginx5xxScript('qa', 30, dir)).toString(), 'web-1')
    assert.is(counts.log, `${dir}/qa-access.log`)
    assert.is(counts.requests, 4)
    assert.is(counts.unparsed, 2)
    assert.equal(counts.fivexx, [
      { minute: minuteKey(ago5), count: 1 },
      { minute: minuteKey(ago2), count: 1 },
    ])
    // no env log: nginx's default one (the sandbox, no edge: section)
    rmSync(join(dir, 'qa-access.log'))
    rmSync(join(dir, 'qa-access.log.1'))
    writeFileSync(join(dir, 'access.log'), `${combined(ago5, 504)}\n${combined(ago5, 504)}\n`)
    const fallback = parseErrorCounts(bash(nginx5xxScript('qa', 30, dir)).toString(), 'web-1')
    assert.is(fallback.log, `${dir}/access.log`)
    assert.equal(fallback.fivexx, [{ minute: minuteKey(ago5), count: 2 }])
    // no log at all
    rmSync(join(dir, 'access.log'))
    const none = parseErrorCounts(bash(nginx5xxScript('qa', 30, dir)).toString(), 'web-1')
    assert.equal([none.log, none.requests, none.fivexx], [null, 0, []])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { loadEnv } from '../../lib/env/load.ts'
import { InputError, PreconditionError } from '../../lib/report/errors.ts'
import { dailyOf } from '../../lib/uptime/availability.ts'
import { dayClass, deployMarks, renderPage, stateNow } from '../../lib/uptime/html.ts'
import { buildReport, type Probe } from '../../lib/uptime/index.ts'
import { pageKey, pageLocation, publishPage, putRequest } from '../../lib/uptime/publish.ts'
import { suite } from '../harness.ts'
import { S3RVER_SECRETS, startS3Server } from '../sandbox/s3.ts'
import { RUNBOOKS } from '../support/runbooks.ts'

// The status page's pure parts (days cut at midnight, a day's mark, the state now, escaping, who never
// shown), its env section, and publishing: a directory, and a bucket on s3rver (written, replaced, read
// back). Opening the page in Chromium is test/integration/status-page.test.ts.
const test = suite('status page: days, marks, rendering, the env section, publishing')

const H = 3_600_000
const T0 = Date.parse('2026-11-30T00:00:00Z')

test('daily availability: segments cut at UTC midnight into up, down and unknown minutes per day', () => {
  const days = dailyOf([
    { from: T0 - 2 * H, to: T0 + H, state: 'up' },
    { from: T0 + H, to: T0 + H + 30 * 60_000, state: 'down' },
    { from: T0 + H + 30 * 60_000, to: T0 + 24 * H, state: 'unknown' },
    { from: T0 + 24 * H, to: T0 + 25 * H, state: 'up' },
  ])
  assert.equal(days, [
    { day: '2026-11-29', upMin: 120, downMin: 0, unknownMin: 0, availabilityPct: 100 },
    { day: '2026-11-30', upMin: 60, downMin: 30, unknownMin: 1350, availabilityPct: 66.667 },
    { day: '2026-12-01', upMin: 60, downMin: 0, unknownMin: 0, availabilityPct: 100 },
  ])
  const mark = (availabilityPct: number | null) =>
    dayClass({ day: 'd', upMin: 0, downMin: 0, unknownMin: 0, availabilityPct }, 99.9)
  assert.equal(
    [mark(100), mark(99.9), mark(99.5), mark(99), mark(98.9), mark(null)],
    ['up', 'up', 'partial', 'partial', 'down', 'nodata'],
  )
})

const probe = (at: number, check: string, ok: boolean, ms = 50): Probe => ({
  at,
  source: 'watchdog',
  host: 'web-1',
  check,
  ok,
  ms,
})

function reportWith(hostProbes: Probe[], outsideProbes?: Probe[]) {
  const history = (probes: Probe[]) => ({
    probes,
    lines: probes.length,
    malformed: 0,
    clockBackwards: 0,
    unreadable: [],
  })
  return buildReport({
    env: 'qa',
    now: T0 + 2 * H,
    days: 1,
    services: [{ service: 'api', domain: 'api.example.com' }],
    histories: [{ host: 'web-1', history: history(hostProbes) }],
    ...(outsideProbes
      ? { outside: { from: 'ops', histories: [{ host: 'ops/web-1', history: history(outsideProbes) }] } }
      : {}),
    errors: [],
    p95DegradeFactor: 2,
    errorThresholds: { windowMin: 30, max5xxPerMin: 10, maxRestarts: 3, maxErrorLinesPerMin: 10 },
  })
}

const minutes = (from: number, to: number, check: string, ok: (at: number) => boolean) => {
  const out: Probe[] = []
  for (let at = from; at < to; at += 60_000) out.push(probe(at, check, ok(at)))
  return out
}

test('the state now: from outside when it has data (a dead droplet has no host data), else the host view', () => {
  const host = minutes(T0 - 22 * H, T0 + H, 'http:api.example.com', () => true) // stops an hour ago
  const outside = minutes(T0 - 22 * H, T0 + 2 * H, 'outside:qa/api.example.com', (at) => at < T0 + H)
  const dead = reportWith(host, outside).services[0]
  assert.ok(dead)
  assert.is(dead.availability.lastState, 'unknown')
  assert.is(dead.outside?.availability.lastState, 'down')
  assert.is(stateNow(dead), 'down')
  const hostOnly = reportWith(minutes(T0 - 22 * H, T0 + 2 * H, 'http:api.example.com', () => true))
    .services[0]
  assert.ok(hostOnly)
  assert.is(stateNow(hostOnly), 'up')
  // an outside view without data (its watchdog stopped): the host's state, not "no data"
  const silent = reportWith(
    minutes(T0 - 22 * H, T0 + 2 * H, 'http:api.example.com', () => true),
    [],
  ).services[0]
  assert.ok(silent)
  assert.is(stateNow(silent), 'up')
})

test('the page: values escaped, who deployed never shown, an outage listed, the state at the top', () => {
  const report = reportWith(
    minutes(T0 - 22 * H, T0 + 2 * H, 'http:api.example.com', () => true),
    minutes(T0 - 22 * H, T0 + 2 * H, 'outside:qa/api.example.com', (at) => at < T0 || at >= T0 + 20 * 60_000),
  )
  const marks = deployMarks([
    {
      id: 'v7"><script>alert(1)</script>',
      colour: 'blue',
      images: {},
      digests: {},
      who: 'ana.souza@conciliaextrato.com',
      at: '2026-11-30T01:00:00Z',
      duration_s: 95.4,
      outcome: 'live',
      action: 'deploy',
      previous: 'v6',
    },
  ])
  assert.equal(Object.keys(marks[0] ?? {}).sort(), ['action', 'at', 'duration_s', 'id', 'outcome'])
  const html = renderPage(report, marks, { title: 'ConciliaExtrato status' })
  assert.not.match(html, '<script')
  assert.match(html, 'v7&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;')
  assert.not.match(html, 'ana.souza')
  assert.match(html, '<title>ConciliaExtrato status: qa</title>')
  assert.match(html, 'data-testid="summary">All services operational</p>')
  assert.match(
    html,
    '<td>api</td><td>outside (ops)</td><td>2026-11-30 00:00</td><td>2026-11-30 00:20</td><td>20.0</td>',
  )
  assert.match(html, '<td>95 s</td>')
  // a mark per day of the window: 2026-11-29 (from 02:00) and 2026-11-30 (to 02:00), per view
  assert.is(html.match(/<rect class="day /g)?.length, 4)
  assert.match(html, 'data-day="2026-11-30"')
  // nothing the page would fetch: no script, no link, no external URL
  assert.not.match(html, /<(script|link|img|iframe)\b/)
  assert.not.match(html, /https?:\/\//)
})

test('status_page in the env file: a store, an optional URL, days; its Spaces key listed; committed envs have one', () => {
  const production = loadEnv('production')
  assert.equal(production.statusPage?.store, {
    type: 's3',
    endpoint: 'https://sfo3.digitaloceanspaces.com',
    region: 'sfo3',
    bucket: 'conciliaextrato-status',
    prefix: 'production',
  })
  assert.is(production.statusPage?.days, 90)
  assert.is(loadEnv('staging').statusPage?.store.type, 's3')
  assert.equal(RUNBOOKS['status-page']?.needs(production, {}).sort(), [
    'checker-ssh',
    'outside-view',
    'status-page',
  ])
  // without the section: refused before anything is read, with what to add
  assert.throws(
    () => RUNBOOKS['status-page']?.needs({ ...production, statusPage: undefined }, {}),
    (err: Error) => err instanceof InputError && /has no status_page: section/.test(err.message),
  )
})

test('pure: object keys, the PutObject request (public-read, short cache), where it is said to be', () => {
  const s3 = {
    type: 's3' as const,
    endpoint: 'https://sfo3.digitaloceanspaces.com',
    region: 'sfo3',
    bucket: 'st',
    prefix: 'production',
  }
  assert.is(pageKey(s3, 'index.html'), 'production/index.html')
  assert.is(pageKey({ ...s3, prefix: '' }, 'status.json'), 'status.json')
  assert.equal(putRequest(s3, { name: 'index.html', body: '<p>', contentType: 'text/html; charset=utf-8' }), {
    Bucket: 'st',
    Key: 'production/index.html',
    Body: '<p>',
    ContentType: 'text/html; charset=utf-8',
    ACL: 'public-read',
    CacheControl: 'public, max-age=60',
  })
  assert.is(pageLocation(s3), 's3://st/production/index.html at https://sfo3.digitaloceanspaces.com')
  assert.is(pageLocation({ type: 'local', dir: '/srv/page' }), '/srv/page/index.html')
})

test('publish: a directory (replaced whole) and a bucket on s3rver (written, replaced, read back)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'status-page-'))
  const s3 = await startS3Server({ buckets: ['conciliaextrato-status'] })
  try {
    const files = (v: string) => [
      { name: 'index.html' as const, body: `<p>${v}</p>`, contentType: 'text/html; charset=utf-8' },
      { name: 'status.json' as const, body: `{"v":"${v}"}\n`, contentType: 'application/json' },
    ]
    const local = { type: 'local' as const, dir: join(dir, 'page') }
    await publishPage(local, {}, files('one'))
    writeFileSync(join(dir, 'page', 'other.txt'), 'left alone')
    await publishPage(local, {}, files('two'))
    assert.is(readFileSync(join(dir, 'page', 'index.html'), 'utf8'), '<p>two</p>')
    assert.is(readFileSync(join(dir, 'page', 'other.txt'), 'utf8'), 'left alone')

    const bucket = {
      type: 's3' as const,
      endpoint: s3.endpoint,
      region: 'us-east-1',
      bucket: 'conciliaextrato-status',
      prefix: 'qa',
    }
    await publishPage(bucket, S3RVER_SECRETS, files('one'))
    await publishPage(bucket, S3RVER_SECRETS, files('two'))
    const puts = s3.requests.filter((r) => r.startsWith('PUT /conciliaextrato-status/qa/'))
    assert.equal(puts.length, 4, s3.requests.join('\n'))
    const object = readFileSync(
      join(s3.dir, 'conciliaextrato-status', 'qa', 'index.html._S3rver_object'),
      'utf8',
    )
    assert.is(object, '<p>two</p>')
    // no Spaces key: said before anything is sent; a bucket that does not exist: named, with what to do
    await publishPage(bucket, {}, files('x')).then(
      () => assert.unreachable('published without a key'),
      (err: Error) =>
        assert.ok(
          err instanceof InputError && /needs the secret\(s\) SPACES_ACCESS_KEY_ID/.test(err.message),
        ),
    )
    await publishPage({ ...bucket, bucket: 'no-such-bucket' }, S3RVER_SECRETS, files('x')).then(
      () => assert.unreachable('published to a missing bucket'),
      (err: Error) => {
        assert.instance(err, PreconditionError)
        assert.match(err.message, 'writing s3://no-such-bucket/qa/index.html at')
        assert.match(err.message, 'NoSuchBucket')
        assert.not.match(err.message, S3RVER_SECRETS.SPACES_SECRET_ACCESS_KEY)
      },
    )
  } finally {
    await s3.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()

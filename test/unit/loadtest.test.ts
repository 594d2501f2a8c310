import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as assert from 'uvu/assert'
import type { Env } from '../../lib/env/load.ts'
import {
  loadTargets,
  parseDuration,
  parsePath,
  parseRps,
  summarise,
  type Target,
  type TargetResult,
  verdictProblems,
} from '../../lib/loadtest/plan.ts'
import { preflight } from '../../lib/loadtest/preflight.ts'
import { connectionsFor, loadOne } from '../../lib/loadtest/run.ts'
import { InputError } from '../../lib/report/errors.ts'
import { suite } from '../harness.ts'

const test = suite('loadtest: the plan, the verdict, autocannon against a local server', { timeoutS: 60 })

const env = (edge: boolean, kind = 'staging') =>
  ({
    name: 'qa',
    kind,
    file: 'env/qa.yaml',
    domains: { site: 'qa.example.com', saas: 'app.qa.example.com', api: 'api.qa.example.com' },
    hosts: [
      {
        name: 'qa-1',
        address: '127.0.0.1',
        sshPort: 2222,
        httpPort: 8080,
        hostKey: 'SHA256:x',
        roles: ['web', 'data'],
      },
    ],
    health: { edge, path: '/health' },
  }) as unknown as Env

test('RPS=, DURATION=, URL_PATH=: defaults (production gentle) and clear refusals', () => {
  assert.is(parseRps(undefined, { kind: 'staging' }), 50)
  assert.is(parseRps(undefined, { kind: 'production' }), 5)
  assert.is(parseRps('120', { kind: 'production' }), 120)
  for (const bad of ['0', '-1', '1.5', 'lots', '2001'])
    assert.throws(
      () => parseRps(bad, { kind: 'staging' }),
      (e: Error) => e instanceof InputError && e.message.startsWith(`RPS=${bad}`),
    )
  assert.is(parseDuration(undefined), 60)
  assert.is(parseDuration('45s'), 45)
  assert.is(parseDuration('2m'), 120)
  assert.is(parseDuration('90'), 90)
  for (const bad of ['0s', '31m', '1h', 'x']) assert.throws(() => parseDuration(bad), /DURATION=/)
  assert.is(parsePath(undefined), '/')
  assert.is(parsePath('/reconcile?x=1'), '/reconcile?x=1')
  assert.throws(() => parsePath('reconcile'), /URL_PATH=reconcile/)
  assert.throws(() => parsePath('/a b'), /URL_PATH=/)
})

test('targets: through the edge (HTTPS, each name resolved) or the web host (HTTP, its published port); the rate split', () => {
  const edged = loadTargets(env(true), 50, (d) => (d === 'qa.example.com' ? '203.0.113.7' : '203.0.113.8'))
  assert.equal(
    edged.map((t) => [t.domain, t.address, t.port, t.via, t.rps, t.path]),
    [
      ['qa.example.com', '203.0.113.7', 443, 'edge', 17, '/'],
      ['app.qa.example.com', '203.0.113.8', 443, 'edge', 17, '/'],
      ['api.qa.example.com', '203.0.113.8', 443, 'edge', 17, '/'],
    ],
  )
  assert.throws(() => loadTargets(env(true), 50, () => undefined), /qa\.example\.com does not resolve/)
  const origin = loadTargets(env(false), 2, () => undefined, '/health')
  assert.equal(
    origin.map((t) => [t.address, t.port, t.via, t.rps, t.path]),
    [
      ['127.0.0.1', 8080, 'origin', 1, '/health'],
      ['127.0.0.1', 8080, 'origin', 1, '/health'],
      ['127.0.0.1', 8080, 'origin', 1, '/health'],
    ],
  )
  assert.is(connectionsFor(1), 1)
  assert.is(connectionsFor(17), 17)
  assert.is(connectionsFor(1000), 100)
})

const result = (latenciesMs: number[], errors = 0, failedAnswers = 0): TargetResult => ({
  target: {} as Target,
  requests: latenciesMs.length,
  errors,
  failedAnswers,
  latenciesMs,
  durationS: 10,
})

test('the verdict: p95 at 2 s fails, errors over 1% fail, no answer at all fails', () => {
  const fast = summarise([result(Array.from({ length: 100 }, (_, i) => 10 + i))])
  assert.equal([fast.rps, fast.p50_ms, fast.p95_ms, fast.p99_ms, fast.passed], [10, 59, 104, 108, true])
  const slow = summarise([result([...Array(94).fill(100), ...Array(6).fill(2500)])])
  assert.is(slow.p95_ms, 2500)
  assert.equal(verdictProblems(slow), ['p95 2500 ms >= 2000 ms'])
  const erring = summarise([result(Array(99).fill(50), 1, 1)])
  assert.is(erring.error_pct, 2.02)
  assert.equal(verdictProblems(erring), ['errors 2.02% > 1% (2 of 99)'])
  assert.ok(summarise([result(Array(100).fill(50), 0, 1)]).passed, 'one error in 100 is within 1%')
  const none = summarise([result([], 12)])
  assert.not.ok(none.passed)
  assert.equal(verdictProblems(none), ['no request was answered', 'errors 100% > 1% (12 of 0)'])
})

let server: Server
let port = 0
let mode: 'ok' | 'half-500' = 'ok'
test.before(async () => {
  server = createServer((req, res) => {
    const fail = mode === 'half-500' && Math.random() < 0.5
    res.writeHead(fail ? 500 : 200, { 'content-type': 'text/plain' })
    res.end(`${req.headers.host}\n`)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  port = (server.address() as AddressInfo).port
})
test.after(() => new Promise<void>((r) => server.close(() => r())))

const local = (): Target => ({
  service: 'api',
  domain: 'api.qa.example.com',
  path: '/',
  address: '127.0.0.1',
  port,
  via: 'origin',
  rps: 20,
})

test('autocannon at a fixed rate against a server on 127.0.0.1: every answer timed; 500s are errors', async () => {
  assert.equal(await preflight(local(), 5), { ok: true, said: 'HTTP 200' })
  mode = 'ok'
  const ok = await loadOne(local(), 2)
  // 20/s for 2 s: about 40 answers. autocannon's pacing is per connection and per tick, and each
  // connection starts at once: a loaded machine sees 30 to 80. Unpaced, localhost answers thousands.
  assert.ok(ok.requests >= 10 && ok.requests <= 100, `${ok.requests} answers`)
  assert.is(ok.latenciesMs.length, ok.requests)
  assert.is(ok.failedAnswers, 0)
  assert.ok(summarise([ok]).passed)
  mode = 'half-500'
  const bad = summarise([await loadOne(local(), 2)])
  assert.not.ok(bad.passed)
  assert.ok(bad.error_pct > 10, `${bad.error_pct}%`)
  mode = 'ok'
})

test('the preflight names a domain that does not answer (a closed port), within its bound', async () => {
  const t0 = Date.now()
  const r = await preflight({ ...local(), port: 9 }, 3)
  assert.not.ok(r.ok)
  assert.match(r.said, 'ECONNREFUSED')
  assert.ok(Date.now() - t0 < 15_000)
})

test.run()

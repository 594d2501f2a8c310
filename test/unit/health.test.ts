import * as assert from 'uvu/assert'
import {
  containersProbe,
  probeDomain,
  responseHeaders,
  smokeCheck,
  tlsProbe,
} from '../../lib/commands/health.ts'
import type { Env } from '../../lib/env/load.ts'
import {
  containerChecks,
  headerChecks,
  httpChecks,
  missingHeaders,
  parseContainers,
  parseResources,
  parseSamples,
  parseTls,
  percentile,
  REQUIRED_HEADERS,
  sectionsOf,
  settledContainers,
  tlsChecks,
} from '../../lib/health/checks.ts'
import type { HostSession } from '../../lib/host/session.ts'
import { suite } from '../harness.ts'

const test = suite('health checks')
const ZONE = 'conciliaextrato.com'
const env = {
  name: 'production',
  domains: { site: ZONE, saas: `app.${ZONE}`, api: `api.${ZONE}` },
  health: { path: '/health', certMinDays: 14 },
  edge: { tlsProfile: 'intermediate' },
} as unknown as Env

/** A host whose commands answer from a table (first matching substring wins). */
function fakeHost(answers: [string, string][]): HostSession {
  return {
    name: 'web-1',
    exec: async (cmd: string) => ({
      code: 0,
      stdout: answers.find(([k]) => cmd.includes(k))?.[1] ?? '',
      stderr: '',
      durationMs: 0,
      dryRun: false,
    }),
  } as unknown as HostSession
}

test('every domain in one command: each answer read from its own section; a missing one is "no answer"', async () => {
  const seen: string[] = []
  const host = {
    name: 'web-1',
    exec: async (cmd: string) => {
      seen.push(cmd)
      // As bash prints it: each section's header, then curl's line (api: nothing, curl could not connect).
      return {
        code: 0,
        stdout: '== site\n200 0.012\n== saas\n503 0.020\n== api\n',
        stderr: '',
        durationMs: 0,
        dryRun: false,
      }
    },
  } as unknown as HostSession
  const results = await httpChecks(host, { ...env, health: { ...env.health, timeoutS: 5 } } as Env)
  assert.is(seen.length, 1, 'one command, one SSH channel')
  assert.match(seen[0] ?? '', "echo '== site'; curl")
  assert.match(seen[0] ?? '', "echo '== api'; curl")
  assert.equal(
    results.map((r) => [r.target, r.ok, r.value]),
    [
      [`web-1 https://${ZONE}/health`, true, '200 in 12 ms'],
      [`web-1 https://app.${ZONE}/health`, false, '503 in 20 ms'],
      [`web-1 https://api.${ZONE}/health`, false, 'no answer'],
    ],
  )
  assert.equal(
    [...sectionsOf('junk\n== a\nx\ny\n== b\n').entries()],
    [
      ['a', 'x\ny\n'],
      ['b', '\n'],
    ],
  )
})

test('probes: HTTPS through the host nginx with SNI for edge envs, Host header over HTTP otherwise', () => {
  assert.match(
    probeDomain(`app.${ZONE}`, '/health', 3, true),
    `--resolve app.${ZONE}:443:127.0.0.1 -k -o /dev/null https://app.${ZONE}/health -o /dev/null https://app.${ZONE}/health -o /dev/null https://app.${ZONE}/health || true`,
  )
  assert.match(
    probeDomain(`app.${ZONE}`, '/health', 3, false),
    `-H 'Host: app.${ZONE}' -o /dev/null http://127.0.0.1/health`,
  )
  // The n requests in one curl (one process, one kept-alive connection), each its own line.
  assert.is(probeDomain('a', '/h', 3, false).match(/^curl /g)?.length, 1)
  assert.is(probeDomain('a', '/h', 3, false).split('-o /dev/null http://127.0.0.1/h').length - 1, 3)
  assert.match(responseHeaders(ZONE, '/health', true), '-D -')
  assert.match(tlsProbe(ZONE), `openssl s_client -connect 127.0.0.1:443 -servername ${ZONE}`)
  assert.match(containersProbe('production'), 'label=com.docker.compose.project=ce-production-$c')
})

test('parsing: samples, nearest-rank percentiles, containers, resources, TLS', () => {
  assert.equal(parseSamples('200 0.012\n503 0.100\n'), [
    { code: '200', ms: 12 },
    { code: '503', ms: 100 },
  ])
  const values = Array.from({ length: 20 }, (_, i) => (i + 1) * 10)
  assert.is(percentile(values, 95), 190)
  assert.is(percentile(values, 50), 100)
  assert.is(percentile([7], 95), 7)
  assert.is(percentile([], 95), Number.POSITIVE_INFINITY)
  assert.equal(parseContainers('postgres running healthy\napi exited none\n'), [
    { service: 'postgres', state: 'running', health: 'healthy' },
    { service: 'api', state: 'exited', health: 'none' },
  ])
  assert.equal(parseResources('disk / 42\ndisk /var/lib/docker 42\nmemory 63\n'), {
    disks: [
      { mount: '/', freePct: 42 },
      { mount: '/var/lib/docker', freePct: 42 },
    ],
    memPct: 63,
  })
  const tls = parseTls('TLSv1.3 Nov  1 17:00:00 2029 GMT')
  assert.is(tls.protocol, 'TLSv1.3')
  assert.is(tls.notAfter?.toISOString(), '2029-11-01T17:00:00.000Z')
  assert.equal(parseTls('none none'), { protocol: 'none', notAfter: undefined })
})

test('a soon-expiring or expired certificate and a weak protocol are reported', async () => {
  const now = Date.parse('2026-11-26T00:00:00Z')
  const host = fakeHost([
    [`-servername app.${ZONE}`, 'TLSv1.3 Dec  1 00:00:00 2026 GMT'],
    [`-servername api.${ZONE}`, 'TLSv1.1 Nov  1 00:00:00 2026 GMT'],
    [`-servername ${ZONE}`, 'TLSv1.3 Nov  1 00:00:00 2040 GMT'],
  ])
  const results = await tlsChecks(host, env, now)
  const by = (check: string, d: string) => results.find((r) => r.check === check && r.target === `web-1 ${d}`)
  assert.equal([by('certificate', ZONE)?.ok, by('tls', ZONE)?.ok], [true, true])
  assert.equal(
    [by('certificate', `app.${ZONE}`)?.ok, by('certificate', `app.${ZONE}`)?.value],
    [false, '5 days left'],
  )
  assert.equal(
    [by('certificate', `api.${ZONE}`)?.ok, by('certificate', `api.${ZONE}`)?.value],
    [false, '-25 days left'],
  )
  assert.equal([by('tls', `api.${ZONE}`)?.ok, by('tls', `api.${ZONE}`)?.limit], [false, 'TLSv1.2 or TLSv1.3'])
  const modern = await tlsChecks(host, { ...env, edge: { tlsProfile: 'modern' } } as unknown as Env, now)
  assert.is(modern.find((r) => r.check === 'tls')?.limit, 'TLSv1.3')
  const plain = await tlsChecks(host, { ...env, edge: undefined } as unknown as Env, now)
  assert.equal([plain[0]?.ok, plain[0]?.value], [null, 'n/a: no edge: section (plain HTTP)'])
})

test('a missing security header is reported by name', async () => {
  const all = REQUIRED_HEADERS.map((h) => `${h}: x`).join('\n')
  assert.equal(missingHeaders(`http/2 200\n${all}\n`), [])
  const host = fakeHost([
    [`https://api.${ZONE}`, `http/1.1 200 ok\n${all.replace('permissions-policy: x\n', '')}\n`],
    ['https://', `http/1.1 200 ok\n${all}\n`],
  ])
  const results = await headerChecks(host, env)
  const api = results.find((r) => r.target === `web-1 api.${ZONE}`)
  assert.equal([api?.ok, api?.value], [false, 'missing permissions-policy'])
  assert.ok(results.filter((r) => r.target !== `web-1 api.${ZONE}`).every((r) => r.ok === true))
})

test("deploy's smoke check retries within the health timeout: a 503 or a refused connection is not the end", () => {
  const cmd = smokeCheck(18081, '/health', 30)
  assert.is(
    cmd,
    'curl -fsS -m 5 --retry 30 --retry-delay 1 --retry-max-time 30 --retry-all-errors -o /dev/null http://127.0.0.1:18081/health',
  )
  // Never a single shot, even with a tiny timeout.
  assert.match(smokeCheck(18081, '/health', 1), '--retry 5 --retry-delay 1 --retry-max-time 5')
})

/** A host whose answers to every command come one after another from `outs` (the last one repeats). */
function sequenceHost(outs: string[]): { host: HostSession; asked: () => number } {
  let n = 0
  const host = {
    name: 'web-1',
    exec: async () => ({
      code: 0,
      stdout: outs[Math.min(n++, outs.length - 1)],
      stderr: '',
      durationMs: 0,
      dryRun: false,
    }),
  } as unknown as HostSession
  return { host, asked: () => n }
}

test('a container just started (health "starting") is asked again until it is judged, within the timeout', async () => {
  const starting = 'api running starting\nredis running starting\npostgres running healthy\n'
  const settled = 'api running healthy\nredis running healthy\npostgres running healthy\n'
  const soon = sequenceHost([starting, starting, settled])
  const list = await settledContainers(soon.host, 'probe', 5, 1)
  assert.is(soon.asked(), 3)
  assert.ok(list.every((c) => c.health === 'healthy'))
  const e = { ...env, health: { ...env.health, timeoutS: 5 } } as Env
  const checks = await containerChecks(sequenceHost([starting, settled]).host, e, 'probe', 1)
  assert.ok(
    checks.every((c) => c.ok),
    JSON.stringify(checks),
  )
  // Still starting when the time is up: judged as it is (a failure), never waited for longer.
  const never = sequenceHost([starting])
  const stuck = await containerChecks(
    never.host,
    { ...env, health: { ...env.health, timeoutS: 0.05 } } as Env,
    'probe',
    10,
  )
  assert.equal(
    stuck.filter((c) => !c.ok).map((c) => c.value),
    ['running/starting', 'running/starting'],
  )
  // An unhealthy container is not waited for: judged at once.
  const bad = sequenceHost(['api running unhealthy\n'])
  assert.not.ok((await containerChecks(bad.host, e, 'probe', 1))[0]?.ok)
  assert.is(bad.asked(), 1)
})

test.run()

import * as assert from 'uvu/assert'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { health } from '../../runbooks/health.ts'
import { loadtest } from '../../runbooks/loadtest.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { suite } from '../harness.ts'
import { buildFixtureImages } from '../sandbox/fixtures.ts'
import {
  createTestBed,
  destroyTestBed,
  FIXTURE_DOMAINS,
  onDroplet,
  runCaptured,
  type TestBed,
  writeManagedEnv,
} from '../support/test-bed.ts'

// make health on a deployed sandbox droplet: all good, then a service answering 5xx, then a slow one.
const test = suite('health on a deployed sandbox droplet', { timeoutS: 240 })
let bed: TestBed
let web: SandboxDroplet

/** Fault injection in a fixture service (its /tmp/fault file, read at each request). */
async function fault(service: 'site' | 'saas' | 'api', spec: string): Promise<void> {
  await onDroplet(
    web,
    `c=$(docker ps -q --filter label=com.docker.compose.service=${service} --filter status=running | head -1); printf '%s' '${spec}' > /tmp/fault-spec; docker cp /tmp/fault-spec "$c":/tmp/fault`,
  )
}

test.before(async () => {
  await buildFixtureImages()
  bed = await createTestBed('health', ['web-1'], { image: 'provisioned' })
  web = bed.droplets[0] as SandboxDroplet
  writeManagedEnv(bed, 'hc', { health: { path: '/health', timeout_s: 20, api_p95_ms: 2000, burst: 10 } })
  const setup = await runCaptured(setupServer, ['--env', 'hc'])
  if (setup.code !== 0) throw new Error(`setup-server failed:\n${setup.out}`)
  const dep = await runCaptured(deploy, ['--env', 'hc', '--release', 'v1'])
  if (dep.code !== 0) throw new Error(`deploy failed:\n${dep.out}`)
})

test.after(async () => {
  await destroyTestBed(bed)
})

test('all checks pass on a healthy deploy; JSON=1 gives one document; checks that do not apply say why', async () => {
  const { code, out } = await runCaptured(health, ['--env', 'hc'])
  assert.is(code, 0, out)
  // As the read-only checker: containers, services and the last deploy came through its helper.
  assert.match(out, /web-1: ce-check@127\.0\.0\.1:\d+ \(read-only checker\)/)
  assert.match(out, /all \d+ checks passed \(\d+ not applicable here\)/)
  for (const d of Object.values(FIXTURE_DOMAINS))
    assert.match(
      out,
      new RegExp(`ok\\s+http\\s+web-1 http://${d.replace(/\./g, '\\.')}/health\\s+200 in \\d+ ms`),
    )
  assert.match(out, /ok\s+container\s+web-1 postgres\s+running\/healthy/)
  assert.match(out, /ok\s+service\s+web-1 redis\s+answers/)
  assert.match(out, /ok\s+last deploy\s+web-1\s+deploy of v1: live/)
  assert.match(out, /-\s+tls\s+web-1\s+n\/a: no edge: section/)
  const json = await runCaptured(health, ['--env', 'hc', '--json'])
  const doc = JSON.parse(json.out.split('\n').find((l) => l.startsWith('{"env"')) ?? '{}')
  assert.is(doc.ok, true)
  assert.ok(doc.results.some((r: { check: string; ok: boolean }) => r.check === 'disk' && r.ok === true))
})

test('a service answering 5xx: health fails naming the check and the domain', async () => {
  await fault('saas', 'status=503')
  try {
    const { code, out } = await runCaptured(health, ['--env', 'hc'])
    assert.is(code, 4, out)
    assert.match(out, `http web-1 http://${FIXTURE_DOMAINS.saas}/health: 503 in`)
    assert.match(out, 'see docs/runbooks/rollback.md')
    assert.not.match(out, `http web-1 http://${FIXTURE_DOMAINS.site}/health: `)
  } finally {
    await fault('saas', '')
  }
})

test('a slow API (injected latency): the latency gate fails at 2 s', async () => {
  await fault('api', 'delay_ms=2100')
  try {
    const { code, out } = await runCaptured(health, ['--env', 'hc'])
    assert.is(code, 4, out)
    assert.match(
      out,
      /latency web-1 api p95 over 10 requests: 2\d{3} ms, 0 error\(s\) \(want < 2000 ms, 0 errors\)/,
    )
  } finally {
    await fault('api', '')
  }
  const again = await runCaptured(health, ['--env', 'hc'])
  assert.is(again.code, 0, again.out)
})

/** make loadtest on the env (no edge: the droplet's port 80, published on 127.0.0.1): its code and figures. */
async function load(
  args: string[],
): Promise<{ code: number; out: string; figures: Record<string, number | boolean> }> {
  const r = await runCaptured(loadtest, ['--env', 'hc', ...args])
  const line = r.out.split('\n').find((l) => l.trim().startsWith('{"rps"')) ?? '{}'
  return { ...r, figures: JSON.parse(line.trim()) }
}

test('make loadtest: every domain at 30/s for 5 s through nginx on the droplet: p95 and errors within the limits', async () => {
  const { code, out, figures } = await load(['--rps', '30', '--duration', '5s'])
  assert.is(code, 0, out)
  for (const d of Object.values(FIXTURE_DOMAINS))
    assert.match(out, new RegExp(`${d.replace(/\./g, '\\.')}\\s+127\\.0\\.0\\.1:\\d+/\\s+origin\\s+10/s`))
  // 30/s for 5 s is about 150 answers; a loaded machine may send fewer, never none.
  assert.ok((figures.requests as number) >= 60, out)
  assert.is(figures.errors, 0, out)
  assert.ok((figures.p95_ms as number) < 2000, out)
  assert.is(figures.passed, true)
  // A dry run plans and sends nothing.
  const dry = await load(['--rps', '30', '--duration', '5s', '--dry-run'])
  assert.is(dry.code, 0, dry.out)
  assert.match(dry.out, 'dry run: would send 10/s to')
  assert.equal(dry.figures, {})
})

test('make loadtest with injected latency in the api (2.5 s): exit 4, p95 named', async () => {
  await fault('api', 'delay_ms=2500')
  try {
    const { code, out, figures } = await load(['--rps', '30', '--duration', '5s'])
    assert.is(code, 4, out)
    assert.match(out, /load test failed: p95 \d+(\.\d)? ms >= 2000 ms/)
    assert.ok((figures.p95_ms as number) >= 2000, out)
    assert.is(figures.passed, false)
  } finally {
    await fault('api', '')
  }
})

test.run()

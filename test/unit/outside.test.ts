import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { parse as parseYaml } from 'yaml'
import { outsideTargets, watchdogFile } from '../../lib/commands/watchdog.ts'
import { type Env, loadEnv, validateEnv } from '../../lib/env/load.ts'
import { formatNotice } from '../../lib/notify/alerts.ts'
import { InputError } from '../../lib/report/errors.ts'
import { outsideChecks, outsideVerdict, probe } from '../../lib/watchdog/outside.ts'
import { suite } from '../harness.ts'
import { startReceiver } from '../sandbox/webhook-receiver.ts'

// The outside view: each env's watchdog probes the other env's public domains as a visitor does.
const test = suite('watchdog: the outside view of another env')
const ROOT = join(import.meta.dirname, '..', '..')

test('the committed envs watch each other: staging watches production, production watches staging; an env cannot watch itself', () => {
  assert.equal(loadEnv('staging').watchdog.watch, ['production'])
  assert.equal(loadEnv('production').watchdog.watch, ['staging'])
  const raw = parseYaml(readFileSync(join(ROOT, 'env/staging.yaml'), 'utf8')) as Record<string, unknown>
  const problem = (watchdog: unknown) => {
    try {
      validateEnv({ ...raw, watchdog }, 'staging', 'env/staging.yaml')
      return ''
    } catch (err) {
      assert.instance(err, InputError)
      return (err as InputError).problems.join('\n')
    }
  }
  assert.match(problem({ watch: ['staging'] }), 'watchdog.watch: names staging itself')
  assert.match(problem({ watch: ['Production!'] }), 'watchdog.watch')
  assert.is(problem({ watch: [] }), '')
})

test('targets: an edge env through DNS and HTTPS (its resolver when overridden); a sandbox env at its web host', () => {
  const production = loadEnv('production')
  assert.equal(outsideTargets(production), [
    { check: 'outside:production/conciliaextrato.com', url: 'https://conciliaextrato.com/health' },
    { check: 'outside:production/app.conciliaextrato.com', url: 'https://app.conciliaextrato.com/health' },
    { check: 'outside:production/api.conciliaextrato.com', url: 'https://api.conciliaextrato.com/health' },
  ])
  const sandboxResolver = { ...production, health: { ...production.health, edgeResolver: '127.0.0.53:5353' } }
  assert.is(outsideTargets(sandboxResolver as Env)[0]?.resolver, '127.0.0.53:5353')
  const local = {
    ...production,
    name: 'wd',
    edge: undefined,
    hosts: [
      { ...production.hosts[0], roles: ['web', 'data'], address: '127.0.0.1', privateAddress: '172.30.0.5' },
    ],
  } as Env
  assert.equal(outsideTargets(local)[2], {
    check: 'outside:wd/api.conciliaextrato.com',
    url: 'http://api.conciliaextrato.com/health',
    connect: '172.30.0.5',
  })
  const staging = loadEnv('staging')
  const cfg = watchdogFile(staging, 'qa-1', {}, undefined, [production])
  assert.equal(
    cfg.outside?.map((t) => t.check),
    outsideTargets(production).map((t) => t.check),
  )
  assert.is(watchdogFile(staging, 'qa-1', {}).outside, undefined)
})

test('probes: 200 ok; a 500 is tried once more, then fails; the maintenance page is planned; refused and unresolvable fail, saying so', async () => {
  const rx = await startReceiver()
  try {
    const port = new URL(rx.url).port
    const target = (path: string) => ({
      check: 'outside:wd/api.example.test',
      url: `http://api.example.test:${port}${path}`,
      connect: '127.0.0.1',
    })
    const [ok] = await outsideChecks([target('/health')], 5, 1)
    assert.is(ok?.ok, true)
    assert.match(ok?.detail ?? '', /^GET http:\/\/api\.example\.test:\d+\/health: 200 in \d+ ms$/)
    assert.is(rx.received[0]?.headers.host, `api.example.test:${port}`)
    rx.received.length = 0
    rx.script([{ status: 500 }, { status: 502 }])
    const [bad] = await outsideChecks([target('/health')], 5, 1)
    assert.is(rx.received.length, 2, 'tried twice')
    assert.is(bad?.ok, false)
    assert.match(bad?.detail ?? '', ': 502 in ')
    assert.is(bad?.runbook, 'docs/runbooks/watchdog.md#the-outside-view')
    rx.received.length = 0
    rx.script([{ status: 500 }, { status: 200 }])
    const [blip] = await outsideChecks([target('/health')], 5, 1)
    assert.is(blip?.ok, true, 'one blip, then an answer: ok')
    rx.script([{ status: 503, headers: { 'x-maintenance': 'on' } }])
    const planned = await probe(target('/health'), 5)
    assert.is(outsideVerdict(target('/h'), planned).ok, true)
    assert.match(outsideVerdict(target('/h'), planned).detail, 'the maintenance page (503, planned)')
    const [refused] = await outsideChecks(
      [{ check: 'outside:wd/x', url: 'http://x.example.test:9/health', connect: '127.0.0.1' }],
      2,
      1,
    )
    assert.match(refused?.detail ?? '', 'connection failed (ECONNREFUSED)')
    const lost = await probe(
      { check: 'outside:wd/x', url: 'https://x.example.test/health', resolver: '127.0.0.1:9' },
      2,
    )
    assert.match(lost.error ?? '', 'x.example.test does not resolve (at 127.0.0.1:9)')
  } finally {
    await rx.close()
  }
})

test("the alert names the other env's domain, seen from outside, and the page to open", () => {
  const now = new Date('2026-12-07T12:10:00Z')
  const event = formatNotice(
    {
      kind: 'alert',
      at: now.toISOString(),
      checks: [
        {
          check: 'outside:production/api.conciliaextrato.com',
          detail: 'GET https://api.conciliaextrato.com/health: connection failed (ECONNREFUSED)',
          runbook: 'docs/runbooks/watchdog.md#the-outside-view',
          since: '2026-12-07T12:08:00Z',
          fresh: true,
        },
      ],
    },
    'staging',
    'watchdog on qa-1',
  )
  assert.is(
    event.title,
    "ALERT staging: production's api.conciliaextrato.com (seen from outside) down since 12:08 UTC",
  )
  assert.match(event.details?.[0] ?? '', 'runbook: docs/runbooks/watchdog.md#the-outside-view')
  assert.is(event.severity, 'critical')
})

test.run()

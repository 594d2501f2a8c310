import * as assert from 'uvu/assert'
import { type NotifyTarget, notifySecretNames, readNotify } from '../../lib/env/notify.ts'
import { Validator } from '../../lib/env/validate.ts'
import { discordPayload, jsonPayload, type NotifyEvent, slackPayload } from '../../lib/notify/format.ts'
import { notify, reportNotifyResults } from '../../lib/notify/send.ts'
import { setSinks } from '../../lib/report/output.ts'
import { clearSecrets, registerSecret } from '../../lib/report/redact.ts'
import { suite } from '../harness.ts'
import { closedPort, type Receiver, startReceiver } from '../sandbox/webhook-receiver.ts'

const test = suite('notify')
const NOW = new Date('2026-03-01T12:00:00.000Z')
const TOKEN_PATH = '/hooks/T000/B000/XXXXsecret'
const fast = { retryDelayMs: 10 }
const event: NotifyEvent = {
  event: 'deploy',
  env: 'production',
  outcome: 'failed',
  title: 'deploy of saas failed',
  release: 'abc1234',
  who: 'ana',
  duration_s: 95,
  link: 'https://github.com/org/repo/actions/runs/1',
  details: ['step 4 (migrate) failed on web-1', 'exit 1: <!channel> relation missing'],
  runbook: 'deploy',
}
const target = (name: string, type: NotifyTarget['type'], events = ['deploy']): NotifyTarget => ({
  name,
  type,
  secret: `${name.toUpperCase().replace(/-/g, '_')}_URL`,
  events,
  minSeverity: 'info',
})
// The facts every provider shows for `event`, in order.
const FACTS = 'Environment=production Outcome=failed Release=abc1234 Who=ana Duration=1m 35s Runbook=deploy'
  .split(/ (?=[A-Z])/)
  .map((f) => f.split('=') as [string, string])
let rx: Receiver

test.before(async () => {
  rx = await startReceiver()
})
test.after(async () => {
  await rx.close()
})
test.beforeEach(() => {
  rx.received.length = 0
  rx.script([])
})
test.afterEach(() => {
  clearSecrets()
  const write = (stream: NodeJS.WriteStream) => (t: string) => void stream.write(t)
  setSinks(write(process.stdout), write(process.stderr))
})

test('slack payload: header, fields, details, link and a complete plain-text fallback', () => {
  const p = slackPayload(event)
  type Block = { type: string; text?: { text: string }; fields?: { text: string }[] }
  const [header, fields, details, link] = p.blocks as Block[]
  assert.equal(header, {
    type: 'header',
    text: { type: 'plain_text', text: '❌ deploy of saas failed', emoji: true },
  })
  assert.equal(
    fields?.fields?.map((f) => f.text),
    FACTS.map(([k, v]) => `*${k}*\n${v}`),
  )
  assert.is(
    details?.text?.text,
    'step 4 (migrate) failed on web-1\nexit 1: &lt;!channel&gt; relation missing',
  )
  assert.is(link?.text?.text, '<https://github.com/org/repo/actions/runs/1|Open the run>')
  assert.is(
    p.text,
    '❌ deploy of saas failed (environment: production, outcome: failed, release: abc1234, who: ana, ' +
      'duration: 1m 35s, runbook: deploy) https://github.com/org/repo/actions/runs/1',
  )
  const minimal = slackPayload({ event: 'backup', env: 'staging', outcome: 'success', title: 'backup done' })
  assert.is(minimal.blocks.length, 2)
  assert.is(minimal.text, '✅ backup done (environment: staging, outcome: success)')
})

test('discord payload: embed with color by outcome, fields, url, timestamp; no pings', () => {
  const p = discordPayload(event, NOW) as { content: string; embeds: Record<string, unknown>[] }
  assert.is(p.content, '❌ deploy of saas failed')
  assert.equal(p.embeds[0], {
    title: '❌ deploy of saas failed',
    description: 'step 4 (migrate) failed on web-1\nexit 1: <!channel> relation missing',
    color: 0xe01e5a,
    fields: FACTS.map(([name, value]) => ({ name, value, inline: true })),
    timestamp: '2026-03-01T12:00:00.000Z',
    url: 'https://github.com/org/repo/actions/runs/1',
  })
  assert.equal((p as Record<string, unknown>).allowed_mentions, { parse: [] })
  const colors = ['success', 'rolled-back', 'recovered'].map(
    (outcome) => (discordPayload({ ...event, outcome }).embeds as { color: number }[])[0]?.color,
  )
  assert.equal(colors, [0x2eb67d, 0xf2a900, 0x2eb67d])
  const noLink = discordPayload({ ...event, link: 'javascript:alert(1)' }).embeds as object[]
  assert.not.ok('url' in (noLink[0] ?? {}))
})

test('discord payload stays within Discord limits and never splits an emoji', () => {
  const long = {
    ...event,
    title: '🚀'.repeat(400),
    who: 'w'.repeat(3000),
    release: 'r'.repeat(3000),
    details: Array.from({ length: 500 }, (_, i) => `line ${i} ${'x'.repeat(50)}`),
  }
  const p = discordPayload(long) as { content: string; embeds: { title: string; description: string }[] }
  const e = p.embeds[0] as { title: string; description: string; fields: { name: string; value: string }[] }
  assert.ok(e.title.length <= 256 && e.title.endsWith('…'))
  assert.not.match(e.title, /[\ud800-\udbff]…$/)
  assert.ok(e.description.length <= 4096 && e.description.endsWith('…'))
  assert.ok(e.fields.length <= 25 && e.fields.every((f) => f.value.length <= 1024))
  const total =
    e.title.length + e.description.length + e.fields.reduce((n, f) => n + f.name.length + f.value.length, 0)
  assert.ok(total <= 6000, `embed total ${total}`)
  assert.ok(p.content.length <= 2000)
})

test('json payload: the event plus ts and source', () => {
  assert.equal(jsonPayload(event, NOW), {
    ...event,
    ts: '2026-03-01T12:00:00.000Z',
    source: 'conciliaextrato-runbooks',
  })
})

test('delivery: each provider gets its payload as JSON; only subscribed targets are sent to', async () => {
  const targets = [
    target('team-slack', 'slack'),
    target('team-discord', 'discord'),
    target('ops-json', 'json'),
  ]
  targets.push(target('backups-only', 'json', ['backup']))
  const secrets = Object.fromEntries(targets.map((t) => [t.secret, `${rx.url}/${t.name}`]))
  const results = await notify(targets, secrets, event)
  assert.equal(results, [
    { target: 'team-slack', ok: true, status: 200, attempts: 1 },
    { target: 'team-discord', ok: true, status: 200, attempts: 1 },
    { target: 'ops-json', ok: true, status: 200, attempts: 1 },
  ])
  const byPath = Object.fromEntries(rx.received.map((r) => [r.path, r]))
  assert.equal(Object.keys(byPath).sort(), ['/ops-json', '/team-discord', '/team-slack'])
  for (const r of rx.received) {
    assert.is(r.method, 'POST')
    assert.is(r.headers['content-type'], 'application/json')
  }
  assert.equal(JSON.parse(byPath['/team-slack']?.body ?? ''), slackPayload(event))
  const discord = JSON.parse(byPath['/team-discord']?.body ?? '')
  assert.equal(discord.embeds[0].fields, (discordPayload(event).embeds as { fields: unknown }[])[0]?.fields)
  const json = JSON.parse(byPath['/ops-json']?.body ?? '')
  assert.equal({ ...json, ts: 'x' }, { ...event, ts: 'x', source: 'conciliaextrato-runbooks' })
})

test('registered secrets in the event are redacted before they leave', async () => {
  registerSecret('DB_PASSWORD', 'hunter2-very-secret')
  const e = { ...event, details: ['psql: password hunter2-very-secret rejected'] }
  await notify([target('ops-json', 'json')], { OPS_JSON_URL: `${rx.url}/x` }, e)
  assert.not.match(rx.received[0]?.body ?? '', 'hunter2')
  assert.match(rx.received[0]?.body ?? '', '[secret:DB_PASSWORD]')
})

const one = (t = target('team-slack', 'slack')) => ({
  targets: [t],
  secrets: { [t.secret]: `${rx.url}${TOKEN_PATH}` },
})

test('a 500 then a 200 is retried and succeeds', async () => {
  rx.script([{ status: 500, body: 'oops' }, { status: 200 }])
  const { targets, secrets } = one()
  assert.equal(await notify(targets, secrets, event, fast), [
    { target: 'team-slack', ok: true, status: 200, attempts: 2 },
  ])
})

test("a 429's retry-after is honoured", async () => {
  rx.script([{ status: 429, headers: { 'retry-after': '1' } }, { status: 204 }])
  const { targets, secrets } = one()
  const started = Date.now()
  const [r] = await notify(targets, secrets, event, fast)
  assert.ok(Date.now() - started >= 950, `waited only ${Date.now() - started} ms`)
  assert.equal(r, { target: 'team-slack', ok: true, status: 204, attempts: 2 })
})

test('a permanent 500 fails after retries + 1 attempts; a 404 is not retried', async () => {
  rx.script([500, 500, 500].map((status) => ({ status, body: 'internal error' })))
  const { targets, secrets } = one()
  const [r] = await notify(targets, secrets, event, fast)
  assert.equal(r, {
    target: 'team-slack',
    ok: false,
    status: 500,
    error: 'HTTP 500: internal error',
    attempts: 3,
  })
  rx.script([{ status: 404, body: 'no_service' }])
  const [gone] = await notify(targets, secrets, event, fast)
  assert.equal(gone, {
    target: 'team-slack',
    ok: false,
    status: 404,
    error: 'HTTP 404: no_service',
    attempts: 1,
  })
})

test('a receiver that never answers hits the timeout', async () => {
  rx.script(['hang', 'hang'])
  const { targets, secrets } = one()
  const started = Date.now()
  const [r] = await notify(targets, secrets, event, { ...fast, timeoutMs: 300, retries: 1 })
  assert.equal(r, { target: 'team-slack', ok: false, error: 'no answer within 300 ms', attempts: 2 })
  assert.ok(Date.now() - started < 3000)
})

test('connection refused fails after its retries', async () => {
  const t = target('team-slack', 'slack')
  const secrets = { [t.secret]: `http://127.0.0.1:${await closedPort()}${TOKEN_PATH}` }
  const [r] = await notify([t], secrets, event, fast)
  assert.equal(r, { target: 'team-slack', ok: false, error: 'connection failed (ECONNREFUSED)', attempts: 3 })
})

test('the webhook URL never appears in results or printed lines, even unregistered', async () => {
  const lines: string[] = []
  setSinks((t) => lines.push(t))
  const { targets, secrets } = one()
  const url = secrets.TEAM_SLACK_URL ?? ''
  const leaky = (async () => {
    throw new TypeError(`Failed to parse URL from ${url}`, { cause: new Error(`bad ${url}`) })
  }) as typeof fetch
  rx.script([{ status: 400, body: `unknown webhook ${url} (${TOKEN_PATH})` }])
  const results = [
    ...(await notify(targets, secrets, event, fast)),
    ...(await notify(targets, secrets, event, { ...fast, fetchImpl: leaky })),
    ...(await notify(targets, { TEAM_SLACK_URL: `ftp://x${TOKEN_PATH}` }, event)),
    ...(await notify(targets, {}, event)),
  ]
  reportNotifyResults(results)
  const text = JSON.stringify(results) + lines.join('')
  assert.not.match(text, 'XXXXsecret')
  assert.not.match(text, '/hooks/')
  const unchanged = (why: string) =>
    `could not notify team-slack: ${why} (the runbook's outcome is unchanged)\n`
  assert.equal(lines, [
    unchanged('HTTP 400: unknown webhook [webhook url] ([webhook url]) after 1 attempt'),
    unchanged('connection failed (Error) after 3 attempts'),
    unchanged('secret TEAM_SLACK_URL is not an http(s) URL'),
    unchanged('secret TEAM_SLACK_URL is not set'),
  ])
  lines.length = 0
  reportNotifyResults([{ target: 'team-slack', ok: true, status: 200, attempts: 1 }])
  assert.equal(lines, ['notified team-slack\n'])
})

const parse = (raw: unknown) => {
  const v = new Validator('env/qa.yaml')
  return { targets: readNotify(v, raw), problems: v.problems }
}

test('readNotify: a valid section, defaults, and the secret names', () => {
  const { targets, problems } = parse([
    { name: 'team-slack', type: 'slack', url_secret: 'SLACK_WEBHOOK_URL', events: ['deploy', 'rollback'] },
    { name: 'ops', type: 'json', url_secret: 'OPS_HOOK' },
    { name: 'ops-2', type: 'discord', url_secret: 'OPS_HOOK' },
  ])
  assert.equal(problems, [])
  assert.equal(targets[0], {
    name: 'team-slack',
    type: 'slack',
    secret: 'SLACK_WEBHOOK_URL',
    events: ['deploy', 'rollback'],
    minSeverity: 'info',
  })
  assert.equal(targets[1]?.events, ['deploy', 'rollback', 'backup', 'restore', 'emergency', 'alert'])
  assert.equal(notifySecretNames(targets), ['SLACK_WEBHOOK_URL', 'OPS_HOOK'])
  assert.equal(parse(undefined), { targets: [], problems: [] })
})

test('readNotify: every problem reported with its path', () => {
  const { targets, problems } = parse([
    { name: 'a', type: 'teams', url_secret: 'A_URL' },
    { name: 'b', type: 'slack' },
    { name: 'c', type: 'slack', url_secret: 'slack_url' },
    { name: 'd', type: 'json', url_secret: 'D_URL', channel: '#ops', events: ['deploy', 'deplyo'] },
    { name: 'e', type: 'json', url_secret: 'E_URL' },
    { name: 'e', type: 'slack', url_secret: 'E2_URL' },
  ])
  const secretForm = 'an UPPER_CASE secret name (the webhook URL is a secret)'
  const events = 'deploy, rollback, backup, restore, emergency, alert'
  assert.equal(
    problems.map((p) => p.replace('env/qa.yaml: ', '')),
    [
      'notify[0].type: expected one of slack, discord, json, email, telegram, pagerduty, got "teams"',
      `notify[1].url_secret: missing; expected ${secretForm}`,
      `notify[2].url_secret: expected ${secretForm}, got "slack_url"`,
      'notify[3].channel: unknown field; expected one of: name, type, events, min_severity, url_secret',
      `notify[3].events[1]: expected one of ${events}, got "deplyo"`,
      'notify: target name "e" is used twice; names must be unique',
    ],
  )
  assert.ok(problems.every((p) => p.startsWith('env/qa.yaml: notify')))
  assert.equal(
    targets.map((t) => t.name),
    ['d', 'e', 'e'],
  )
  assert.equal(parse({ name: 'x' }).problems, ['env/qa.yaml: notify: expected a list, got a mapping'])
})

test.run()

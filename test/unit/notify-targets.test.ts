import * as assert from 'uvu/assert'
import { type NotifyTarget, PAGERDUTY_API, readNotify } from '../../lib/env/notify.ts'
import { Validator } from '../../lib/env/validate.ts'
import { emailMessage, smtpOptions } from '../../lib/notify/email.ts'
import { type NotifyEvent, plainText, slackPayload } from '../../lib/notify/format.ts'
import { notify, reportNotifyResults, wants } from '../../lib/notify/send.ts'
import { setSinks } from '../../lib/report/output.ts'
import { suite } from '../harness.ts'
import { type SmtpReceiver, startSmtpReceiver } from '../sandbox/smtp-receiver.ts'
import { closedPort, type Receiver, startReceiver } from '../sandbox/webhook-receiver.ts'

const test = suite('notify targets: e-mail, Telegram, PagerDuty, severity')
const fast = { retryDelayMs: 10, timeoutMs: 3000 }
const BOT = 'bot123456789:AAH-very-secret-bot-token_xyz'
const ROUTING_KEY = 'R0UT1NGKEYabcdef0123456789abcdef'
const alert: NotifyEvent = {
  event: 'alert',
  env: 'production',
  outcome: 'failed',
  title: 'ALERT production: container ce-production-blue/api down since 12:03 UTC',
  details: [
    'container ce-production-blue/api: exited (137) · since 12:03 UTC · runbook: docs/runbooks/rollback.md',
  ],
  runbook: 'docs/runbooks/rollback.md',
  who: 'watchdog on web-1',
  severity: 'critical',
  resolves: false,
}
const base = { events: ['deploy', 'alert'], minSeverity: 'info' as const }
const email = (over: Partial<NotifyTarget> = {}): NotifyTarget => ({
  name: 'oncall-email',
  type: 'email',
  secret: 'ONCALL_SMTP_URL',
  to: ['oncall@conciliaextrato.com', 'cto@conciliaextrato.com'],
  from: 'alerts@conciliaextrato.com',
  ...base,
  ...over,
})
let smtp: SmtpReceiver
let rx: Receiver

test.before(async () => {
  smtp = await startSmtpReceiver()
  rx = await startReceiver()
})
test.after(async () => {
  await smtp.close()
  await rx.close()
})
test.beforeEach(() => {
  smtp.received.length = 0
  smtp.refuse([])
  rx.received.length = 0
  rx.script([])
})
test.afterEach(() => {
  const write = (stream: NodeJS.WriteStream) => (t: string) => void stream.write(t)
  setSinks(write(process.stdout), write(process.stderr))
})

test('an e-mail alert arrives with the same content as the Slack message', async () => {
  const results = await notify([email()], { ONCALL_SMTP_URL: smtp.url }, alert, fast)
  assert.equal(results, [{ target: 'oncall-email', ok: true, status: 250, attempts: 1 }])
  const [mail] = smtp.received
  assert.ok(mail)
  assert.is(mail.user, smtp.user)
  assert.is(mail.from, 'alerts@conciliaextrato.com')
  assert.equal(mail.to, ['oncall@conciliaextrato.com', 'cto@conciliaextrato.com'])
  assert.is(mail.subject, `❌ ${alert.title}`)
  assert.is(mail.headers['x-conciliaextrato-severity'], 'critical')
  assert.is(mail.text.trim(), plainText(alert).body.trim())
  // Everything the Slack message says, the e-mail says: its header, each field and the details.
  const slack = slackPayload(alert)
  const blocks = slack.blocks as { type: string; text?: { text: string }; fields?: { text: string }[] }[]
  assert.is(blocks[0]?.text?.text, mail.subject)
  for (const f of blocks[1]?.fields ?? []) {
    const [k, v] = f.text.replace(/^\*|\*(?=\n)/g, '').split('\n')
    assert.match(mail.text, `${k}: ${v}`)
  }
  for (const d of alert.details ?? []) assert.match(mail.text, d)
})

test('e-mail: a 451 is tried again, a 550 is final, and the password is never printed', async () => {
  smtp.refuse([451])
  const [retried] = await notify([email()], { ONCALL_SMTP_URL: smtp.url }, alert, fast)
  assert.equal(retried, { target: 'oncall-email', ok: true, status: 250, attempts: 2 })
  smtp.refuse([550, 550, 550])
  const lines: string[] = []
  setSinks((t) => lines.push(t))
  const [refused] = await notify([email()], { ONCALL_SMTP_URL: smtp.url }, alert, fast)
  assert.equal(refused, {
    target: 'oncall-email',
    ok: false,
    status: 550,
    error: 'SMTP 550 to DATA',
    attempts: 1,
  })
  const wrong = smtp.url.replace(encodeURIComponent(smtp.password), 'not-the-password-123')
  const [denied] = await notify([email()], { ONCALL_SMTP_URL: wrong }, alert, fast)
  assert.equal(denied, {
    target: 'oncall-email',
    ok: false,
    status: 535,
    error: 'SMTP 535 to AUTH',
    attempts: 1,
  })
  const down = `smtp://u:${smtp.password}@127.0.0.1:${await closedPort()}/?requireTLS=false`
  const [gone] = await notify([email()], { ONCALL_SMTP_URL: down }, alert, fast)
  assert.equal(gone, {
    target: 'oncall-email',
    ok: false,
    error: 'connection failed (ECONNREFUSED)',
    attempts: 3,
  })
  const [notUrl] = await notify([email()], { ONCALL_SMTP_URL: 'https://smtp.example.com' }, alert, fast)
  assert.is(notUrl?.error, 'secret ONCALL_SMTP_URL is not an smtp:// or smtps:// URL')
  reportNotifyResults([refused, denied, gone, notUrl].filter((r) => r !== undefined))
  const text = JSON.stringify([refused, denied, gone]) + lines.join('')
  assert.not.match(text, smtp.password)
  assert.not.match(text, 'not-the-password')
  assert.is(lines.length, 4)
})

test('e-mail over smtp:// requires STARTTLS unless the URL says requireTLS=false', async () => {
  const waits = { connectionTimeout: 4000, greetingTimeout: 4000, socketTimeout: 4000 }
  const noFiles = { disableFileAccess: true, disableUrlAccess: true }
  assert.equal(smtpOptions('smtp://alerts%40example.com:p%2Fw@smtp.example.com', 4000), {
    host: 'smtp.example.com',
    port: 587,
    secure: false,
    requireTLS: true,
    auth: { user: 'alerts@example.com', pass: 'p/w' },
    ...waits,
    ...noFiles,
  })
  assert.equal(smtpOptions('smtps://smtp.example.com', 4000), {
    host: 'smtp.example.com',
    port: 465,
    secure: true,
    ...waits,
    ...noFiles,
  })
  assert.is(smtpOptions('smtp://relay.internal:25/?requireTLS=false', 4000).requireTLS, false)
  // The receiver offers no STARTTLS: the password and the alert are not sent in the clear.
  const plain = smtp.url.replace('/?requireTLS=false', '')
  const [r] = await notify([email()], { ONCALL_SMTP_URL: plain }, alert, fast)
  assert.equal([r?.ok, r?.attempts], [false, 1])
  assert.match(r?.error ?? '', /^SMTP /)
  assert.is(smtp.received.length, 0)
  const message = emailMessage(alert, email())
  assert.equal(message.headers, {
    'X-ConciliaExtrato-Env': 'production',
    'X-ConciliaExtrato-Event': 'alert',
    'X-ConciliaExtrato-Severity': 'critical',
    Importance: 'high',
    'X-Priority': '1',
  })
})

test('Telegram: sendMessage on the bot URL with the chat and the text; the token never printed', async () => {
  const t: NotifyTarget = {
    name: 'oncall-tg',
    type: 'telegram',
    secret: 'TG_BOT_URL',
    chatId: '-1001234',
    ...base,
  }
  const secrets = { TG_BOT_URL: `${rx.url}/${BOT}` }
  assert.equal(await notify([t], secrets, alert, fast), [
    { target: 'oncall-tg', ok: true, status: 200, attempts: 1 },
  ])
  const [req] = rx.received
  assert.is(req?.path, `/${BOT}/sendMessage`)
  const body = JSON.parse(req?.body ?? '{}')
  assert.is(body.chat_id, '-1001234')
  assert.is(body.disable_web_page_preview, true)
  assert.ok(body.text.startsWith(`❌ ${alert.title}\n`))
  for (const d of alert.details ?? []) assert.match(body.text, d)
  rx.script([{ status: 401, body: `{"ok":false,"description":"Unauthorized ${BOT}"}` }])
  const [bad] = await notify([t], secrets, alert, fast)
  assert.equal([bad?.ok, bad?.status], [false, 401])
  assert.not.match(JSON.stringify(bad), 'very-secret-bot-token')
})

test('PagerDuty: a failure triggers, what ends it resolves, with the routing key', async () => {
  const pd: NotifyTarget = {
    name: 'pager',
    type: 'pagerduty',
    secret: 'PD_ROUTING_KEY',
    apiBase: rx.url,
    events: ['alert', 'deploy'],
    minSeverity: 'critical',
  }
  const secrets = { PD_ROUTING_KEY: ROUTING_KEY }
  const reminder = { ...alert, title: 'STILL FAILING production: ...', severity: 'warning' as const }
  const recovered = {
    ...alert,
    outcome: 'success',
    title: 'RECOVERED production: ...',
    severity: 'info' as const,
    resolves: true,
  }
  const partly = { ...recovered, resolves: false }
  for (const e of [alert, reminder, partly, recovered]) await notify([pd], secrets, e, fast)
  const sent = rx.received.map((r) => ({ path: r.path, ...JSON.parse(r.body) }))
  // The reminder (warning) and a recovery that leaves a check failing are not sent to a pager.
  assert.is(sent.length, 2)
  assert.is(sent[0]?.path, '/v2/enqueue')
  assert.is(sent[0]?.routing_key, ROUTING_KEY)
  assert.is(sent[0]?.event_action, 'trigger')
  assert.is(sent[0]?.dedup_key, 'conciliaextrato/production/alert')
  assert.equal(
    [sent[0]?.payload.severity, sent[0]?.payload.summary, sent[0]?.payload.source],
    ['critical', alert.title, 'watchdog on web-1'],
  )
  assert.equal(sent[0]?.payload.custom_details.details, alert.details)
  assert.equal(sent[1], {
    path: '/v2/enqueue',
    routing_key: ROUTING_KEY,
    event_action: 'resolve',
    dedup_key: 'conciliaextrato/production/alert',
  })
  const [bad] = await notify([pd], { PD_ROUTING_KEY: 'short' }, alert, fast)
  assert.is(bad?.error, "secret PD_ROUTING_KEY is not a PagerDuty integration's routing key")
  rx.script([{ status: 400, body: `invalid routing key ${ROUTING_KEY}` }])
  const [refused] = await notify([pd], secrets, alert, fast)
  assert.is(refused?.error, 'HTTP 400: invalid routing key [routing key]')
})

test('severity: a target gets its events at its min_severity and above', () => {
  const at = (minSeverity: NotifyTarget['minSeverity']): NotifyTarget => ({
    name: 'x',
    type: 'json',
    secret: 'X_URL',
    events: ['deploy', 'alert'],
    minSeverity,
  })
  const deploy = (outcome: string): NotifyEvent => ({ event: 'deploy', env: 'p', outcome, title: 't' })
  const events = [
    deploy('success'),
    deploy('rolled-back'),
    deploy('failed'),
    { ...deploy('failed'), event: 'backup' },
  ]
  assert.equal(
    (['info', 'warning', 'critical'] as const).map((m) => events.map((e) => wants(at(m), e))),
    [
      [true, true, true, false],
      [false, true, true, false],
      [false, false, true, false],
    ],
  )
  // A pager also gets the success that resolves what a failed deploy paged.
  assert.ok(wants({ ...at('critical'), type: 'pagerduty' }, deploy('success')))
})

const parse = (raw: unknown) => {
  const v = new Validator('env/production.yaml')
  return {
    targets: readNotify(v, raw),
    problems: v.problems.map((p) => p.replace('env/production.yaml: ', '')),
  }
}

test('readNotify: e-mail, Telegram and PagerDuty targets, and what is wrong with them', () => {
  const ok = parse([
    {
      name: 'oncall-email',
      type: 'email',
      url_secret: 'ONCALL_SMTP_URL',
      to: ['oncall@conciliaextrato.com'],
      from: 'alerts@conciliaextrato.com',
      min_severity: 'warning',
    },
    { name: 'oncall-tg', type: 'telegram', url_secret: 'TG_BOT_URL', chat_id: -1001234 },
    {
      name: 'pager',
      type: 'pagerduty',
      key_secret: 'PD_ROUTING_KEY',
      events: ['alert'],
      min_severity: 'critical',
    },
  ])
  assert.equal(ok.problems, [])
  assert.equal(ok.targets[0]?.minSeverity, 'warning')
  assert.equal(ok.targets[0]?.to, ['oncall@conciliaextrato.com'])
  assert.is(ok.targets[1]?.chatId, '-1001234')
  assert.equal(
    [ok.targets[2]?.secret, ok.targets[2]?.apiBase, ok.targets[2]?.minSeverity],
    ['PD_ROUTING_KEY', PAGERDUTY_API, 'critical'],
  )
  const bad = parse([
    { name: 'a', type: 'email', url_secret: 'A_URL', to: ['not-an-address'] },
    { name: 'b', type: 'telegram', url_secret: 'B_URL' },
    { name: 'c', type: 'pagerduty', url_secret: 'C_KEY' },
    { name: 'd', type: 'slack', url_secret: 'D_URL', min_severity: 'urgent', to: ['x@example.com'] },
  ])
  assert.equal(bad.problems, [
    'notify[0].to[0]: expected an e-mail address, got "not-an-address"',
    'notify[0].from: missing; expected an e-mail address like alerts@example.com',
    'notify[1].chat_id: missing; expected a chat id (a number, negative for groups) or @channelname',
    'notify[2].url_secret: unknown field; expected one of: name, type, events, min_severity, key_secret, api_base',
    'notify[2].key_secret: missing; expected an UPPER_CASE secret name (the routing key of the PagerDuty service is a secret)',
    'notify[3].to: unknown field; expected one of: name, type, events, min_severity, url_secret',
    'notify[3].min_severity: expected one of info, warning, critical, got "urgent"',
  ])
  // Only d has all it needs (its problems still fail the env file).
  assert.equal(
    bad.targets.map((t) => t.name),
    ['d'],
  )
})

test.run()

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import * as assert from 'uvu/assert'
import { liveColourProbe } from '../../lib/commands/nginx.ts'
import { quote } from '../../lib/commands/shell.ts'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { heartbeats } from '../../runbooks/heartbeats.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { statusPage } from '../../runbooks/status-page.ts'
import { uptime } from '../../runbooks/uptime.ts'
import { suite } from '../harness.ts'
import { buildFixtureImages } from '../sandbox/fixtures.ts'
import { type HealthchecksStandIn, startHealthchecks } from '../sandbox/healthchecks.ts'
import { type SentryStandIn, startSentry } from '../sandbox/sentry.ts'
import { type SmtpReceiver, startSmtpReceiver } from '../sandbox/smtp-receiver.ts'
import { type Receiver, startReceiver } from '../sandbox/webhook-receiver.ts'
import { inspectStatusPage, launchChromium, type PageInspection } from '../support/browser.ts'
import {
  createTestBed,
  destroyTestBed,
  onDroplet,
  runCaptured,
  type TestBed,
  writeManagedEnv,
} from '../support/test-bed.ts'

// The host watchdog on a set-up, deployed sandbox droplet: a stopped container is restarted, the team's
// webhook (a receiver on this machine, reached over the bed's network) hears one alert, then one recovery,
// and the on-call's e-mail (an SMTP server on this machine) gets the same alert.
const test = suite('watchdog on a deployed sandbox droplet', { timeoutS: 300 })
const ENV = 'wd'
const SERVICE = `conciliaextrato-watchdog@${ENV}.service`
const TIMER = `conciliaextrato-watchdog@${ENV}.timer`
const HISTORY = `/var/log/conciliaextrato/health/${ENV}.jsonl`
const TOKEN = 'B0WATCHDOG/s3cret-webhook-token'
let bed: TestBed
let web: SandboxDroplet
/** The other env's droplet, whose watchdog watches this env from outside (the last tests). */
let out: SandboxDroplet
/** One droplet as an env's only host; its address on the bed's network is where the other env reaches it. */
const hostOf = (d: SandboxDroplet) => [
  { name: d.name, address: '127.0.0.1', ssh_port: d.ports.ssh, host_key: d.hostKey, private_address: d.ip },
]
let rx: Receiver
let smtp: SmtpReceiver
const SECRETS = [
  'POSTGRES_PASSWORD',
  'REDIS_PASSWORD',
  'ONCALL_SLACK_URL',
  'ONCALL_SMTP_URL',
  'HEARTBEAT_PING_URL',
  'HEALTHCHECKS_API_KEY',
  'SENTRY_AUTH_TOKEN',
]
let hc: HealthchecksStandIn
let sentry: SentryStandIn
/** The dead man's switch at the stand-in on the bed's gateway (the service's silence alerts go to rx). */
const heartbeatSection = () => ({
  ping_url_secret: 'HEARTBEAT_PING_URL',
  api_key_secret: 'HEALTHCHECKS_API_KEY',
  api: hc.url,
  grace_s: 5,
})
const NOTIFY = [
  { name: 'oncall', type: 'slack', url_secret: 'ONCALL_SLACK_URL', events: ['alert'] },
  {
    name: 'oncall-email',
    type: 'email',
    url_secret: 'ONCALL_SMTP_URL',
    to: ['oncall@conciliaextrato.test'],
    from: 'alerts@conciliaextrato.test',
    events: ['alert'],
    min_severity: 'critical',
  },
]

/** This env's file: its droplet, the watchdog every `intervalS`, the alert targets and the heartbeat. */
function writeWatchedEnv(intervalS: number, extra: Record<string, unknown> = {}): void {
  writeManagedEnv(bed, ENV, {
    hosts: hostOf(web),
    health: { path: '/health', timeout_s: 20, disk_min_free_pct: 1, mem_min_free_pct: 1 },
    watchdog: { interval_s: intervalS },
    secrets: SECRETS,
    notify: NOTIFY,
    heartbeat: heartbeatSection(),
    error_tracking: {
      api: sentry.url,
      org: sentry.org,
      projects: ['ce-api'],
      token_secret: 'SENTRY_AUTH_TOKEN',
    },
    ...extra,
  })
}

let browser: Browser | undefined
/** The env with its outside view (the other env's history) and a status page in a directory of the bed. */
function writeViewedEnv(): void {
  writeWatchedEnv(10, {
    outside_view: { env: OUT, checker_key: { file: bed.checkerKeyPath } },
    status_page: { store: { type: 'local', dir: join(bed.envDir, 'status-page') } },
  })
}

/** make status-page, then the published page as Chromium shows it (a screenshot in test-output/). */
async function publishedPage(name: string): Promise<PageInspection> {
  const { code, out: text } = await runCaptured(statusPage, ['--env', ENV])
  assert.is(code, 0, text)
  assert.match(text, `published: ${join(bed.envDir, 'status-page', 'index.html')}`)
  browser ??= await launchChromium()
  const page = await inspectStatusPage(
    browser,
    `file://${join(bed.envDir, 'status-page', 'index.html')}`,
    name,
  )
  assert.equal(page.errors, [])
  assert.equal(page.requests, [], 'the page fetches nothing')
  assert.is(page.title, `ConciliaExtrato status: ${ENV}`)
  assert.equal(
    page.services.map((s) => s.service),
    ['site', 'saas', 'api'],
  )
  for (const s of page.services) {
    assert.equal(Object.keys(s.bars), ['outside', 'host'], s.service)
    assert.ok((s.bars.outside ?? 0) >= 90 && s.bars.outside === s.bars.host, JSON.stringify(s))
    assert.is.not(s.p95, 'missing', s.service)
  }
  process.stdout.write(`\n  status page: ${page.summary}; screenshot ${page.screenshot}\n`)
  return page
}

/** The Slack messages the receiver got since the last call. */
function received(): { path: string; text: string; body: string }[] {
  const slack = rx.received.filter((r) => r.path !== '/hooks/hc')
  const out = slack.map((r) => ({
    path: r.path,
    body: r.body,
    text: (JSON.parse(r.body) as { text: string }).text,
  }))
  for (const r of slack) rx.received.splice(rx.received.indexOf(r), 1)
  return out
}

/** One watchdog run, as its timer would start it; returns when it finished (Type=oneshot). */
const runWatchdog = () => onDroplet(web, `systemctl start ${SERVICE}`)

const changedSteps = (out: string) =>
  out.split('\n').filter((l) => /\s(changed|dry-run)\s+\d+\.\d+s$/.test(l))

async function liveApi(): Promise<{ colour: string; id: string }> {
  const colour = (await onDroplet(web, liveColourProbe(ENV))).trim()
  const id = (
    await onDroplet(
      web,
      `docker ps -aq --filter label=com.docker.compose.project=ce-${ENV}-${colour} --filter label=com.docker.compose.service=api`,
    )
  ).trim()
  return { colour, id }
}

test.before(async () => {
  await buildFixtureImages()
  bed = await createTestBed('watchdog', ['web-1', 'out-1'], { image: 'provisioned' })
  web = bed.droplets[0] as SandboxDroplet
  out = bed.droplets[1] as SandboxDroplet
  rx = await startReceiver(bed.gateway)
  smtp = await startSmtpReceiver(bed.gateway)
  hc = await startHealthchecks({
    host: bed.gateway,
    minPeriodS: 1,
    tickMs: 500,
    channels: [`${rx.url}/hooks/hc`],
  })
  sentry = await startSentry()
  process.env.SENTRY_AUTH_TOKEN = sentry.token
  process.env.HEARTBEAT_PING_URL = hc.pingBase
  process.env.HEALTHCHECKS_API_KEY = hc.apiKey
  process.env.ONCALL_SLACK_URL = `${rx.url}/hooks/T0/${TOKEN}`
  process.env.ONCALL_SMTP_URL = smtp.url
  // An hour: the timer stays out of the way of the runs this test starts itself (the last tests shorten it).
  writeWatchedEnv(3600)
  // The checks first (a ping to a check that does not exist is refused), then the host.
  const checks = await runCaptured(heartbeats, ['--env', ENV])
  if (checks.code !== 0) throw new Error(`make heartbeats failed:\n${checks.out}`)
  const setup = await runCaptured(setupServer, ['--env', ENV])
  if (setup.code !== 0) throw new Error(`setup-server failed:\n${setup.out}`)
  // The summary rows of the two steps that install what the watchdog needs (setup-server time impact).
  const rows = setup.out.split('\n').filter((l) => /^\d+\s+(Install packages|Health watchdog)/.test(l))
  process.stdout.write(`\n  ${rows.map((r) => r.replace(/\s{2,}/g, ' ')).join('\n  ')}\n`)
})

test.after(async () => {
  await browser?.close()
  await rx?.close()
  await smtp?.close()
  await hc?.close()
  await sentry?.close()
  await destroyTestBed(bed)
})

test('setup-server installed it: Node 18+, the timer enabled and active, the config 0600 root', async () => {
  assert.ok(Number((await onDroplet(web, `node -p 'process.versions.node.split(".")[0]'`)).trim()) >= 18)
  assert.is(
    (await onDroplet(web, `systemctl is-enabled ${TIMER}; systemctl is-active ${TIMER}`)).trim(),
    'enabled\nactive',
  )
  assert.match(await onDroplet(web, `systemctl cat ${TIMER}`), 'OnUnitActiveSec=3600s')
  const config = `/etc/conciliaextrato/watchdog-${ENV}.json`
  assert.is((await onDroplet(web, `stat -c '%a %U:%G' ${config}`)).trim(), '600 root:root')
  assert.match(await onDroplet(web, `cat ${config}`), TOKEN) // where the URL is kept, and only there
})

test("the watchdog's unit is sandboxed: systemd rates its exposure below 5 (it was 8+ as plain root)", async () => {
  const out = await onDroplet(web, `systemd-analyze security --no-pager ${SERVICE} 2>&1 | tail -n 1`)
  const score = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(out)?.[1] ?? Number.NaN)
  process.stdout.write(`\n  ${out.trim()}\n`)
  assert.ok(score < 5, out)
})

test('before any deploy a run checks nginx, disk and memory, finds nothing wrong and alerts nobody', async () => {
  await runWatchdog()
  const lines = (await onDroplet(web, `cat ${HISTORY}`)).trim().split('\n')
  const checks = lines.map((l) => (JSON.parse(l) as { check: string }).check)
  assert.ok(checks.includes('nginx') && checks.includes('disk:/') && checks.includes('memory'), checks.join())
  assert.not.ok(
    checks.some((c) => c.startsWith('container:') || c.startsWith('http:')),
    checks.join(),
  )
  assert.match(await onDroplet(web, `journalctl -u ${SERVICE} --no-pager -o cat`), /checks, 0 failing/)
  assert.equal(received(), [])
})

test('deployed: every container, Postgres, Redis and each domain are checked, all ok, no alert', async () => {
  const { code, out } = await runCaptured(deploy, ['--env', ENV, '--release', 'v1'])
  assert.is(code, 0, out)
  // error_tracking: the release and a deploy marker for this env at the Sentry stand-in
  assert.equal(sentry.releases.get('v1')?.projects, ['ce-api'])
  assert.equal(
    sentry.releases.get('v1')?.deploys.map((d) => d.environment),
    [ENV],
  )
  assert.not.match(out, sentry.token)
  await onDroplet(web, `: > ${HISTORY}`)
  await runWatchdog()
  const lines = (await onDroplet(web, `cat ${HISTORY}`)).trim().split('\n')
  const results = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  const { colour } = await liveApi()
  const checks = results.map((r) => r.check)
  for (const c of [
    `container:ce-${ENV}-data/postgres`,
    `container:ce-${ENV}-data/redis`,
    `container:ce-${ENV}-${colour}/api`,
    `container:ce-${ENV}-${colour}/saas`,
    `container:ce-${ENV}-${colour}/site`,
    'docker',
    'nginx',
    'postgres',
    'redis',
    'http:api.conciliaextrato.localhost',
    'disk:/',
    'memory',
  ])
    assert.ok(checks.includes(c), `${c} not in ${checks.join()}`)
  assert.equal(
    results.filter((r) => !r.ok),
    [],
  )
  const http = results.find((r) => r.check === 'http:app.conciliaextrato.localhost') ?? {}
  assert.equal(Object.keys(http), ['at', 'source', 'host', 'check', 'ok', 'ms', 'detail'])
  assert.is(http.source, 'watchdog')
  assert.is(http.host, 'web-1')
  assert.match(String(http.detail), /^GET \/health: 200 in \d+ ms$/)
  const nginx = results.find((r) => r.check === 'nginx') ?? {}
  assert.equal(Object.keys(nginx), ['at', 'source', 'host', 'check', 'ok', 'detail'])
  assert.equal(received(), [])
})

test('while a runbook holds the deploy lock a stopped container is left alone, and nobody is alerted', async () => {
  const { id } = await liveApi()
  const lock = `/srv/conciliaextrato/${ENV}/deploy.lock`
  // The lock as a run takes it (deploy's own directory, owner file and heartbeat), e.g. a restore.
  await onDroplet(
    web,
    `su deploy -c ${quote(`mkdir ${lock} && printf 'who=ana\\nrunbook=restore\\ntoken=t0k\\n' > ${lock}/owner && touch ${lock}/heartbeat`)}`,
  )
  try {
    await onDroplet(web, `docker stop ${id} >/dev/null`)
    await runWatchdog()
    assert.is((await onDroplet(web, `docker inspect -f '{{.State.Status}}' ${id}`)).trim(), 'exited')
    const journal = await onDroplet(web, `journalctl -u ${SERVICE} --no-pager -o cat | tail -n 5`)
    assert.match(journal, 'containers left alone this run: restore by ana holds the deploy lock')
    assert.equal(received(), [])
  } finally {
    await onDroplet(web, `rm -rf ${lock}`)
  }
  // Left stopped: the next test finds it so, with the lock gone, and the watchdog restarts it.
})

test('a stopped api container: the run restarts it and one alert names it, since when and the runbook', async () => {
  const { colour, id } = await liveApi()
  await onDroplet(web, `docker stop ${id} >/dev/null`)
  await runWatchdog()
  assert.is((await onDroplet(web, `docker inspect -f '{{.State.Status}}' ${id}`)).trim(), 'running')
  const messages = received()
  assert.is(messages.length, 1, messages.map((m) => m.text).join('\n'))
  const [alert] = messages
  assert.is(alert?.path, `/hooks/T0/${TOKEN}`)
  assert.match(
    alert?.text ?? '',
    new RegExp(`ALERT ${ENV}: container ce-${ENV}-${colour}/api down since \\d\\d:\\d\\d UTC`),
  )
  assert.match(alert?.body ?? '', 'restarted (1 of 3 in 30 min)')
  assert.match(alert?.body ?? '', 'runbook: docs/runbooks/rollback.md')
  assert.match(alert?.body ?? '', /· since \d\d:\d\d UTC/)
  // The same alert by e-mail (sent in the same run): the Slack message's header, fields and details.
  const [mail] = await smtp.waitFor(1, 30_000)
  const blocks = JSON.parse(alert?.body ?? '{}').blocks as {
    text?: { text: string }
    fields?: { text: string }[]
  }[]
  assert.equal(mail?.to, ['oncall@conciliaextrato.test'])
  assert.is(mail?.subject, blocks[0]?.text?.text)
  for (const f of blocks[1]?.fields ?? []) {
    const [k, v] = f.text.replace(/^\*|\*(?=\n)/g, '').split('\n')
    assert.match(mail?.text ?? '', `${k}: ${v}`)
  }
  const details = (blocks[2]?.text?.text ?? '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
  assert.match(details, 'restarted (1 of 3 in 30 min)')
  for (const line of details.split('\n')) assert.ok(mail?.text?.includes(line), `the e-mail lacks: ${line}`)
  assert.is(mail?.headers['x-conciliaextrato-severity'], 'critical')
})

test('the next run sends one recovery notice; the one after sends nothing', async () => {
  const { colour, id } = await liveApi()
  assert.is((await onDroplet(web, `docker inspect -f '{{.State.Health.Status}}' ${id}`)).trim(), 'healthy')
  await runWatchdog()
  const messages = received()
  assert.is(messages.length, 1, messages.map((m) => m.text).join('\n'))
  assert.match(messages[0]?.text ?? '', `RECOVERED ${ENV}: container ce-${ENV}-${colour}/api ok again`)
  await runWatchdog()
  assert.equal(received(), [])
  // The e-mail target takes critical only: the recovery (info) is not mailed.
  assert.is(smtp.received.length, 1)
})

test('the webhook URL is in neither the journal nor the history', async () => {
  const journal = await onDroplet(web, `journalctl -u ${SERVICE} --no-pager -o cat`)
  assert.match(journal, 'notified oncall\n')
  assert.match(journal, 'notified oncall-email\n')
  assert.match(journal, `heartbeat ${ENV}-watchdog sent\n`)
  const history = await onDroplet(web, `cat ${HISTORY}`)
  for (const text of [journal, history]) {
    assert.not.match(text, TOKEN)
    assert.not.match(text, rx.url)
    assert.not.match(text, smtp.password)
    assert.not.match(text, hc.pingBase)
  }
  assert.is((await onDroplet(web, `stat -c '%a %U:%G' ${HISTORY}`)).trim(), '640 root:adm')
})

test('setup-server again changes nothing, the watchdog step included', async () => {
  const { code, out } = await runCaptured(setupServer, ['--env', ENV])
  assert.is(code, 0, out)
  assert.equal(changedSteps(out), [])
  assert.match(out, /Health watchdog[^\n]*\n\s+web-1: ok\n/)
})

test(
  'the timer runs it by itself: with interval_s 10, runs come without anyone starting them',
  async () => {
    writeWatchedEnv(10)
    const { code, out } = await runCaptured(setupServer, ['--env', ENV])
    assert.is(code, 0, out)
    const runs = async () =>
      (
        await onDroplet(
          web,
          `journalctl -u ${SERVICE} --no-pager -o cat | grep -c '^watchdog ${ENV} on' || true`,
        )
      ).trim()
    const before = Number(await runs())
    let after = before
    for (let i = 0; i < 40 && after < before + 2; i++) {
      await new Promise((r) => setTimeout(r, 1000))
      after = Number(await runs())
    }
    assert.ok(after >= before + 2, `${after - before} run(s) in 40 s`)
    assert.equal(received(), [])
    // The check's period follows the interval (make heartbeats updates it), now that runs come every 10 s.
    const checks = await runCaptured(heartbeats, ['--env', ENV])
    assert.is(checks.code, 0, checks.out)
    assert.match(checks.out, `${ENV}-watchdog: updated`)
  },
  { timeoutS: 400 },
)

test('every run pinged the heartbeat, saying what it found; the checks are up', async () => {
  const check = [...hc.checks.values()].find((c) => c.slug === `${ENV}-watchdog`)
  const pings = check?.pings ?? []
  // The runs this suite started and the timer's: one ping each, none a /fail.
  assert.ok(pings.length >= 5, `${pings.length} ping(s)`)
  assert.ok(
    pings.every((p) => p.kind === 'success' && /^\d+ checks, \d+ failing$/.test(p.body)),
    JSON.stringify(pings.slice(0, 3)),
  )
  assert.ok(
    pings.some((p) => / [1-9]\d* failing$/.test(p.body)),
    'the stopped container run said 1 failing',
  )
  const { code, out } = await runCaptured(heartbeats, ['--env', ENV])
  assert.is(code, 0, out)
  // Pinged within its period (up), or a run still going on a loaded machine (grace): not silent.
  assert.match(out, new RegExp(`${ENV}-watchdog\\s+(up|grace)\\s`))
})

test('the watchdog goes quiet (its timer stopped, as when the droplet dies): the service alerts by the silence; started again, up again', async () => {
  const hooks = () => rx.received.filter((r) => r.path === '/hooks/hc')
  const stopped = Date.now()
  await onDroplet(web, `systemctl stop ${TIMER}`)
  let down: number | undefined
  for (let i = 0; i < 120 && down === undefined; i++) {
    await new Promise((r) => setTimeout(r, 500))
    if (hooks().length > 0) down = Date.now()
  }
  assert.ok(down, 'no DOWN notice within 60 s of the last run')
  const [notice] = hooks()
  assert.match(notice?.body ?? '', `The check \\"${ENV}-watchdog\\" is DOWN`)
  process.stdout.write(
    `\n  silence to DOWN notice: ${((down - stopped) / 1000).toFixed(1)} s (interval 10 s, grace 5 s)\n`,
  )
  const { code, out } = await runCaptured(heartbeats, ['--env', ENV])
  assert.is(code, 3, out)
  assert.match(out, `silent: ${ENV}-watchdog`)
  rx.received.length = 0
  await onDroplet(web, `systemctl start ${TIMER}`)
  let up = false
  for (let i = 0; i < 80 && !up; i++) {
    await new Promise((r) => setTimeout(r, 500))
    up = hooks().some((r) => r.body.includes('is UP again'))
  }
  assert.ok(up, 'an UP notice once the timer runs again')
})

test('a panic with a new signature in the api after the deploy reaches the team within 2 minutes, naming the release, with no CPF or e-mail', async () => {
  received()
  const { id } = await liveApi()
  // The fixture's fault file (panic=1: every request but /health panics, echoing its path), put in the
  // container with docker cp (the image has no shell); then one request whose path carries a CPF and an
  // e-mail address, as a customer's would.
  await onDroplet(
    web,
    `mkdir -p /root/fault && printf 'panic=1' > /root/fault/fault && docker cp /root/fault/. ${id}:/tmp`,
  )
  const sent = Date.now()
  await onDroplet(
    web,
    `curl -s -o /dev/null -m 5 -H 'Host: api.conciliaextrato.localhost' http://127.0.0.1/reconcile/123.456.789-09/ana.souza@example.com.br || true`,
  )
  await onDroplet(web, `: > /root/fault/fault && docker cp /root/fault/. ${id}:/tmp`)
  let alert: { text: string; body: string } | undefined
  for (let i = 0; i < 240 && !alert; i++) {
    await new Promise((r) => setTimeout(r, 500))
    alert = received().find((m) => m.text.includes('NEW ERROR in api'))
  }
  assert.ok(alert, 'no new-error alert within 120 s')
  const seconds = (Date.now() - sent) / 1000
  process.stdout.write(`\n  panic to the team's alert: ${seconds.toFixed(1)} s (interval 10 s)\n`)
  // Slack's text escapes <, > and & (its own markup): read back as written
  const text = alert.text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')
  assert.match(
    text,
    `${ENV}: NEW ERROR in api since release v1: panic at crates/common/src/service.rs: reconciliation failed for /reconcile/<cpf>/<email>`,
  )
  for (const personal of ['123.456.789-09', '12345678909', 'ana.souza', 'example.com.br'])
    assert.not.match(alert.body, personal)
  // nor in what the watchdog keeps: the run writes its state after it sent the alert (a run that dies
  // while sending leaves the signature new for the next run), so it is read until written (20 s at most)
  const stateFile = `/var/lib/conciliaextrato/watchdog/${ENV}/errors.json`
  let state = ''
  for (let i = 0; i < 40 && !state.includes('reconciliation failed'); i++) {
    if (i) await new Promise((r) => setTimeout(r, 500))
    state = await onDroplet(web, `cat ${stateFile}`)
  }
  assert.match(state, 'reconciliation failed for /reconcile/<cpf>/<email>')
  assert.not.match(state, /123\.456|ana\.souza/)
})

const OUT = 'wd-out'
test(
  "another env's watchdog on another droplet sees this env's domains from outside: every one ok, nobody alerted",
  async () => {
    writeManagedEnv(bed, OUT, {
      hosts: hostOf(out),
      health: { path: '/health', timeout_s: 20, disk_min_free_pct: 1, mem_min_free_pct: 1 },
      watchdog: { interval_s: 10, watch: [ENV] },
      secrets: SECRETS,
      notify: NOTIFY,
    })
    const { code, out: text } = await runCaptured(setupServer, ['--env', OUT])
    assert.is(code, 0, text)
    await onDroplet(out, `systemctl start conciliaextrato-watchdog@${OUT}.service`)
    const history = await onDroplet(out, `grep -h '"outside:' /var/log/conciliaextrato/health/${OUT}.jsonl`)
    const lines = history
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { check: string; ok: boolean; detail: string })
    assert.equal([...new Set(lines.map((l) => l.check))].sort(), [
      `outside:${ENV}/api.conciliaextrato.localhost`,
      `outside:${ENV}/app.conciliaextrato.localhost`,
      `outside:${ENV}/conciliaextrato.localhost`,
    ])
    assert.ok(
      lines.every((l) => l.ok),
      history,
    )
    assert.match(lines[0]?.detail ?? '', `GET http://`)
    assert.equal(received(), [])
    // The status page now: every service up from both sides, the deploy of v1 listed.
    writeViewedEnv()
    const page = await publishedPage('watchdog-status-page-up')
    assert.is(page.summary, 'All services operational')
    assert.equal(
      page.services.map((s) => s.state),
      ['up', 'up', 'up'],
    )
    assert.ok(page.deploys >= 1, 'the deploy of v1')
  },
  { timeoutS: 300 },
)

test("this env's droplet dies (killed): the other env's watchdog alerts, naming each domain seen from outside", async () => {
  rx.received.length = 0
  const killed = Date.now()
  await onDroplet(out, 'true') // the watcher answers; the watched one is about to go
  const { execFileSync } = await import('node:child_process')
  execFileSync('docker', ['kill', web.container], { stdio: 'ignore' })
  let alert: { text: string } | undefined
  // Bounded: two failed runs of up to 2 x 10 s probes each, on a machine that may be loaded.
  for (let i = 0; i < 360 && !alert; i++) {
    await new Promise((r) => setTimeout(r, 500))
    alert = received().find((m) => m.text.includes('seen from outside'))
  }
  assert.ok(alert, 'no outside alert within 180 s')
  const seconds = (Date.now() - killed) / 1000
  process.stdout.write(
    `\n  droplet killed to alert from the other env: ${seconds.toFixed(1)} s (interval 10 s, failure_threshold 2)\n`,
  )
  assert.match(alert?.text ?? '', `ALERT ${OUT}:`)
  assert.match(alert?.text ?? '', `${ENV}'s`)
})

test('make uptime with the droplet still dead: no host view from it, and the outside view counts the outage as down', async () => {
  // This env's uptime reads the other env's history (outside_view), through that env's checker account.
  writeViewedEnv()
  const html = join(bed.envDir, 'uptime-report.html')
  const { code, out: text } = await runCaptured(uptime, ['--env', ENV, '--html', html])
  // 30 days: a minute or two of downtime leaves the budget (43.2 min): the report is the run's result.
  assert.is(code, 0, text)
  assert.match(text, `web-1: did not answer (Cannot reach web-1`)
  assert.match(text, `${OUT}/out-1 (outside view): `)
  assert.match(
    text,
    'web-1 did not answer: its history is not in the host view (the outside view shows what visitors saw)',
  )
  const rows = [...text.matchAll(new RegExp(`outside \\(${OUT}\\)\\s+(\\S+)\\s+([\\d.]+) min`, 'g'))]
  assert.is(rows.length, 3, text)
  for (const [, availability, down] of rows) {
    assert.ok(
      Number(down) > 0,
      `the outside view counts the dead droplet as down: ${availability}, ${down} min\n${text}`,
    )
    assert.match(availability ?? '', /^\d+\.\d{3}%$/)
  }
  assert.match(text, `seen from ${OUT}: down `)
  // HTML=<file>: the same figures as a page (the status page's, titled as the report)
  assert.match(text, `the report with its charts: ${html}`)
  const page = readFileSync(html, 'utf8')
  assert.match(page, `<title>Uptime report: ${ENV}</title>`)
  assert.is(page.match(/<article class="service" data-service="[a-z]+" data-state="down">/g)?.length, 3)
})

test('the status page with the droplet dead: every service down (seen from outside), the outages listed', async () => {
  const page = await publishedPage('watchdog-status-page-down')
  assert.is(page.summary, '3 service(s) down')
  assert.equal(
    page.services.map((s) => s.state),
    ['down', 'down', 'down'],
  )
  assert.ok(page.incidents >= 3, `an outage per service seen from outside: ${page.incidents}`)
  // the release record lives on the dead droplet: no deploy can be listed now
  assert.is(page.deploys, 0)
})

test.run()

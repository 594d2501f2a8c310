import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { parse as parseYaml } from 'yaml'
import { watchdogFile } from '../../lib/commands/watchdog.ts'
import { pingUrl } from '../../lib/env/heartbeat.ts'
import { type Env, loadEnv, validateEnv } from '../../lib/env/load.ts'
import { secretsFor } from '../../lib/env/needs.ts'
import { checkBody, HeartbeatApi } from '../../lib/heartbeat/api.ts'
import { differs, heartbeatJobs, SCHEDULED, SCHEDULED_ENVS } from '../../lib/heartbeat/jobs.ts'
import { ping } from '../../lib/heartbeat/ping.ts'
import { InputError } from '../../lib/report/errors.ts'
import { setSinks } from '../../lib/report/output.ts'
import { heartbeat } from '../../lib/watchdog/main.ts'
import { heartbeats } from '../../runbooks/heartbeats.ts'
import { suite } from '../harness.ts'
import { type HealthchecksStandIn, parseCron, startHealthchecks } from '../sandbox/healthchecks.ts'
import { startReceiver } from '../sandbox/webhook-receiver.ts'
import { runOnFixtureEnv } from '../support/offline-run.ts'
import { ciEnvYaml } from './ci-env.ts'

// The dead man's switch: the heartbeat: section, the checks make heartbeats keeps at a
// Healthchecks.io-compatible service (its stand-in here), the watchdog's ping, and the silence alert.
const test = suite('heartbeats: the dead man switch, its checks and its pings')
const ROOT = join(import.meta.dirname, '..', '..')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** The parts of an env the job table reads. */
const hbEnv = (name: string, kind: string, intervalS: number, graceS: number) =>
  ({ name, kind, watchdog: { intervalS }, heartbeat: { graceS } }) as Env
const HB = { ping_url_secret: 'HEARTBEAT_PING_URL', api_key_secret: 'HEALTHCHECKS_API_KEY' }

function problems(doc: Record<string, unknown>, name = 'staging'): string {
  try {
    validateEnv(doc, name, `env/${name}.yaml`)
    return ''
  } catch (err) {
    assert.instance(err, InputError)
    return (err as InputError).problems.join('\n')
  }
}

test('env: heartbeat: names two listed secrets; Healthchecks.io refuses a grace under 60 s, so staging and production do too', () => {
  const raw = parseYaml(readFileSync(join(ROOT, 'env/staging.yaml'), 'utf8')) as Record<string, unknown>
  const secrets = raw.secrets as string[]
  assert.ok(secrets.includes('HEARTBEAT_PING_URL') && secrets.includes('HEALTHCHECKS_API_KEY'))
  assert.equal(raw.heartbeat, { ...HB, grace_s: 120 })
  assert.is(problems({ ...raw, heartbeat: HB }), '')
  assert.match(
    problems({ ...raw, secrets: secrets.filter((s) => s !== 'HEARTBEAT_PING_URL'), heartbeat: HB }),
    'heartbeat.ping_url_secret: HEARTBEAT_PING_URL must also be listed under secrets',
  )
  assert.match(problems({ ...raw, secrets, heartbeat: { ...HB, grace_s: 30 } }), 'heartbeat.grace_s')
  assert.match(
    problems({ ...raw, secrets, heartbeat: { ...HB, ping_url: 'https://hc-ping.com/k' } }),
    'heartbeat',
  )
  assert.match(
    problems({ ...raw, secrets, heartbeat: { ...HB, ping_url_secret: 'https://hc-ping.com/key' } }),
    'heartbeat.ping_url_secret',
  )
  assert.match(problems({ ...raw, secrets, heartbeat: { ...HB, api: 'healthchecks.io' } }), 'heartbeat.api')
})

test('jobs: the watchdog every interval_s; staging and production also each scheduled job, as scheduled.yml runs them', () => {
  const env = hbEnv('staging', 'staging', 60, 120)
  const jobs = heartbeatJobs(env)
  assert.equal(
    jobs.map((j) => [j.slug, j.timeoutS ?? j.schedule, j.graceS]),
    [
      ['staging-watchdog', 60, 120],
      ['staging-health', '*/15 * * * *', 1800],
      ['staging-backup', '17 3 * * *', 7200],
      ['staging-restore-drill', '41 4 * * 1', 7200],
      ['staging-security-scan', '23 5 * * 3', 7200],
      ['staging-uptime', '7 6 1 * *', 86400],
    ],
  )
  // A local env: only the watchdog, and its period as given (the stand-in takes seconds).
  const local = heartbeatJobs({ ...env, name: 'wd', kind: 'local', watchdog: { intervalS: 10 } } as Env)
  assert.equal(
    local.map((j) => [j.slug, j.timeoutS]),
    [['wd-watchdog', 10]],
  )
  // Healthchecks.io's shortest period is 60 s: a faster watchdog is checked against 60 s there.
  assert.is(heartbeatJobs({ ...env, watchdog: { intervalS: 10 } } as Env)[0]?.timeoutS, 60)
  assert.equal(heartbeatJobs({ ...env, heartbeat: undefined } as Env), [])

  // The workflow: its crons, the job each cron runs, its matrix, its ping.
  const wf = readFileSync(join(ROOT, '.github/workflows/scheduled.yml'), 'utf8')
  const doc = parseYaml(wf) as {
    on: { schedule: { cron: string }[] }
    jobs: { run: { strategy: { matrix: { environment: string[] } }; env: { JOB: string } } }
  }
  assert.equal(
    doc.on.schedule.map((s) => s.cron),
    SCHEDULED.map((s) => s.schedule),
  )
  const last = SCHEDULED[SCHEDULED.length - 1]
  for (const s of SCHEDULED.slice(0, -1))
    assert.match(doc.jobs.run.env.JOB, `github.event.schedule == '${s.schedule}' && '${s.job}'`)
  assert.match(doc.jobs.run.env.JOB, `|| '${last?.job}' }}`)
  assert.equal(doc.jobs.run.strategy.matrix.environment, SCHEDULED_ENVS)
  assert.match(wf, '"$HEARTBEAT_PING_URL/$ENV_NAME-$JOB"')
  assert.match(wf, '"$HEARTBEAT_PING_URL/$ENV_NAME-$JOB/fail"')
  for (const s of SCHEDULED) assert.ok(parseCron(s.schedule), s.schedule)
})

test('checkBody: an upsert by name, the period or the schedule in UTC, every integration; differs() sees what changed', () => {
  const env = hbEnv('production', 'production', 60, 120)
  const [watchdog, health] = heartbeatJobs(env)
  assert.ok(watchdog && health)
  const w = checkBody('production', watchdog)
  assert.equal(
    { ...w, desc: undefined },
    {
      name: 'production-watchdog',
      slug: 'production-watchdog',
      tags: 'conciliaextrato production',
      desc: undefined,
      timeout: 60,
      grace: 120,
      channels: '*',
      unique: ['name'],
    },
  )
  assert.match(String(w.desc), 'docs/runbooks/heartbeats.md')
  const h = checkBody('production', health)
  assert.is(h.schedule, '*/15 * * * *')
  assert.is(h.tz, 'UTC')
  assert.not.ok('timeout' in h)
  const same = { slug: watchdog.slug, desc: watchdog.desc, timeout: 60, grace: 120 }
  assert.is(differs(watchdog, same), false)
  assert.is(differs(watchdog, { ...same, grace: 3600 }), true)
  assert.is(differs(watchdog, { ...same, timeout: 86400 }), true)
  assert.is(differs(watchdog, undefined), true)
  assert.is(
    differs(health, {
      slug: health.slug,
      desc: health.desc,
      schedule: '*/15 * * * *',
      tz: 'UTC',
      grace: 1800,
    }),
    false,
  )
  assert.is(differs(health, { slug: health.slug, desc: health.desc, timeout: 900, grace: 1800 }), true)
  assert.is(
    pingUrl('https://hc-ping.com/KEY/', 'staging-backup', 'fail'),
    'https://hc-ping.com/KEY/staging-backup/fail',
  )
})

let hc: HealthchecksStandIn
test('the API against the stand-in: created, then updated (the same check), listed by tag; a wrong key is refused without showing it', async () => {
  hc = await startHealthchecks({ minPeriodS: 1, tickMs: 100 })
  const env = hbEnv('staging', 'staging', 60, 120)
  const [job] = heartbeatJobs(env)
  assert.ok(job)
  const api = new HeartbeatApi(hc.url, hc.apiKey, { retries: 0 })
  const first = await api.upsert('staging', job)
  const again = await api.upsert('staging', { ...job, graceS: 300 })
  assert.is(first.created, true)
  assert.is(again.created, false)
  assert.is(hc.checks.size, 1)
  assert.is(again.check.grace, 300)
  assert.equal(
    (await api.list('staging')).map((c) => [c.name, c.status]),
    [['staging-watchdog', 'new']],
  )
  assert.equal(await api.list('production'), [])
  const wrong = new HeartbeatApi(hc.url, 'hcw_wrong-key-123', { retries: 0 })
  const err = await wrong.list('staging').catch((e: Error) => e)
  assert.instance(err, Error)
  assert.match((err as Error).message, 'HTTP 401: the API key was refused')
  assert.not.match((err as Error).message, 'wrong-key-123')
  // The service's own limits: a period under its floor is a 400 with its reason.
  const strict = await startHealthchecks()
  try {
    const err400 = await new HeartbeatApi(strict.url, strict.apiKey, { retries: 0 })
      .upsert('wd', { ...job, timeoutS: 10 })
      .catch((e: Error) => e)
    assert.match((err400 as Error).message, 'HTTP 400')
    assert.match((err400 as Error).message, 'timeout')
  } finally {
    await strict.close()
  }
})

test('silence alerts: pinged = up; no ping for period + grace = down, and the channel hears it; a ping = up again', async () => {
  const rx = await startReceiver()
  const stand = await startHealthchecks({ minPeriodS: 1, tickMs: 100, channels: [`${rx.url}/hooks/oncall`] })
  try {
    const env = hbEnv('wd', 'local', 1, 1)
    const [job] = heartbeatJobs(env)
    assert.ok(job)
    await new HeartbeatApi(stand.url, stand.apiKey).upsert('wd', job)
    const sent = await ping(pingUrl(stand.pingBase, job.slug), '3 checks, 0 failing')
    assert.equal(sent, { ok: true, status: 200, attempts: 1 })
    const check = [...stand.checks.values()][0]
    assert.ok(check)
    assert.is(stand.statusOf(check), 'up')
    assert.is(check.pings[0]?.body, '3 checks, 0 failing')
    const until = async (what: () => boolean, ms: number) => {
      for (const end = Date.now() + ms; Date.now() < end && !what(); ) await sleep(50)
      return what()
    }
    assert.ok(await until(() => rx.received.length === 1, 10_000), 'a down notice within 10 s')
    assert.match(rx.received[0]?.body ?? '', 'The check \\"wd-watchdog\\" is DOWN')
    assert.equal(
      stand.flips.map((f) => f.status),
      ['down'],
    )
    await ping(pingUrl(stand.pingBase, job.slug), 'back')
    assert.ok(await until(() => rx.received.length === 2, 5000), 'an up notice')
    assert.match(rx.received[1]?.body ?? '', 'is UP again')
    // /fail is down at once, whatever the period.
    await new HeartbeatApi(stand.url, stand.apiKey).upsert('wd', { ...job, timeoutS: 3600 })
    await ping(pingUrl(stand.pingBase, job.slug, 'fail'), 'crashed')
    assert.is(stand.statusOf(check), 'down')
  } finally {
    await stand.close()
    await rx.close()
  }
})

test("the stand-in's cron: a daily job pinged yesterday after its time is up until today's time plus grace", () => {
  const check = {
    lastPing: new Date('2026-12-01T03:20:00Z'),
    lastFailed: false,
    schedule: '17 3 * * *',
    tz: 'UTC',
    grace: 7200,
  } as Parameters<HealthchecksStandIn['statusOf']>[0]
  assert.is(hc.statusOf(check, new Date('2026-12-02T03:00:00Z')), 'up')
  assert.is(hc.statusOf(check, new Date('2026-12-02T04:00:00Z')), 'grace')
  assert.is(hc.statusOf(check, new Date('2026-12-02T05:18:00Z')), 'down')
  assert.equal([...(parseCron('41 4 * * 1')?.[4] ?? [])], [1])
  assert.is(parseCron('61 * * * *'), undefined)
  assert.is(parseCron('* * *'), undefined)
})

test('ping: a 5xx is tried again, a 404 is final, and no error says the URL (it holds the ping key)', async () => {
  const rx = await startReceiver()
  try {
    rx.script([{ status: 503 }, { status: 200, body: 'OK' }])
    const ok = await ping(`${rx.url}/SECRET-PING-KEY/x`, 'body', { retryDelayMs: 1 })
    assert.equal(ok, { ok: true, status: 200, attempts: 2 })
    rx.script([{ status: 404, body: 'not found' }])
    const gone = await ping(`${rx.url}/SECRET-PING-KEY/x`, 'body', { retryDelayMs: 1 })
    assert.equal(gone, { ok: false, error: 'HTTP 404: not found', status: 404, attempts: 1 })
    const refused = await ping('http://127.0.0.1:9/SECRET-PING-KEY/x', 'b', { retries: 1, retryDelayMs: 1 })
    assert.is(refused.ok, false)
    assert.is(refused.attempts, 2)
    assert.not.match(JSON.stringify([gone, refused]), 'SECRET-PING-KEY')
  } finally {
    await rx.close()
  }
})

test("the watchdog's config carries the ping URL (0600, like the webhooks); a run pings <env>-watchdog, a crash /fail", async () => {
  const env = {
    ...loadEnv('staging'),
    heartbeat: { pingUrlSecret: 'HEARTBEAT_PING_URL', apiKeySecret: 'HC_KEY', api: hc.url, graceS: 60 },
  } as Env
  const cfg = watchdogFile(env, 'web-1', { HEARTBEAT_PING_URL: hc.pingBase, HC_KEY: 'must-not-be-there' })
  assert.equal(cfg.heartbeat, { secret: 'HEARTBEAT_PING_URL', slug: 'staging-watchdog' })
  assert.is(cfg.urls.HEARTBEAT_PING_URL, hc.pingBase)
  assert.not.match(JSON.stringify(cfg), 'must-not-be-there')
  assert.equal(secretsFor(env, heartbeats.needs(env, {})), ['HC_KEY'])
  await new HeartbeatApi(hc.url, hc.apiKey).upsert('staging', heartbeatJobs(env)[0] as never)
  let out = ''
  setSinks((t) => {
    out += t
  })
  try {
    await heartbeat(cfg, 'success', '12 checks, 1 failing')
    await heartbeat(cfg, 'fail', 'crashed: boom')
  } finally {
    setSinks(
      (t) => process.stdout.write(t),
      (t) => process.stderr.write(t),
    )
  }
  const check = [...hc.checks.values()].find((c) => c.slug === 'staging-watchdog')
  assert.equal(
    check?.pings.map((p) => [p.kind, p.body]),
    [
      ['success', '12 checks, 1 failing'],
      ['fail', 'crashed: boom'],
    ],
  )
  assert.match(out, 'heartbeat staging-watchdog sent')
  assert.not.match(out, hc.pingBase)
})

test('make heartbeats: creates the checks, then nothing to change; a silent check is exit 3 naming it; no key in the output', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ce-heartbeats-'))
  const stand = await startHealthchecks({ minPeriodS: 1, tickMs: 100 })
  writeFileSync(
    join(dir, 'ci.yaml'),
    ciEnvYaml(
      ['HB_PING', 'HB_KEY'],
      `watchdog: { interval_s: 10 }\nheartbeat: { ping_url_secret: HB_PING, api_key_secret: HB_KEY, api: '${stand.url}', grace_s: 1 }`,
    ),
  )
  let out = ''
  const run = async (args: string[] = []) => {
    const r = await runOnFixtureEnv(heartbeats, dir, args, { HB_PING: stand.pingBase, HB_KEY: stand.apiKey })
    out = r.out
    return r.code
  }
  try {
    assert.is(await run(['--dry-run']), 0, out)
    assert.match(out, 'ci-watchdog: every 10 s, grace 1 s')
    assert.is(stand.checks.size, 0, 'a dry run creates nothing')
    assert.is(await run(), 0, out)
    assert.match(out, 'ci-watchdog: created')
    assert.match(out, 'new (no ping yet)')
    assert.is(await run(), 0, out)
    assert.match(out, 'all 1 check(s) as they should be')
    await ping(pingUrl(stand.pingBase, 'ci-watchdog', 'fail'), 'crashed')
    assert.is(await run(), 3, out)
    assert.match(out, 'silent: ci-watchdog (last ping 20')
    for (const secret of [stand.apiKey, stand.pingBase]) assert.not.match(out, secret)
  } finally {
    await stand.close()
    await hc?.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()

import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import * as assert from 'uvu/assert'
import { timeKey } from '../../lib/commands/logs.ts'
import { quote } from '../../lib/commands/shell.ts'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { access } from '../../runbooks/access.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { exec as execRunbook } from '../../runbooks/exec.ts'
import { logs } from '../../runbooks/logs.ts'
import { psql as psqlRunbook } from '../../runbooks/psql.ts'
import { releases } from '../../runbooks/releases.ts'
import { rollback } from '../../runbooks/rollback.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { status } from '../../runbooks/status.ts'
import { suite } from '../harness.ts'
import { buildFixtureImages } from '../sandbox/fixtures.ts'
import { closedPort, type Receiver, startReceiver } from '../sandbox/webhook-receiver.ts'
import {
  asProduction,
  auditRecords,
  createTestBed,
  destroyTestBed,
  FIXTURE_DOMAINS,
  getThrough,
  onDroplet,
  runCaptured,
  spawnScript,
  type TestBed,
  writeManagedEnv,
} from '../support/test-bed.ts'

// deploy and rollback on a set-up sandbox droplet: blue/green, gates, migrations, lock, data kept.
const test = suite('deploy and rollback on a sandbox droplet', { timeoutS: 300 })
const _ROOT = resolve(import.meta.dirname, '..', '..')
let bed: TestBed
let web: SandboxDroplet
let rx: Receiver

/** The Slack messages the team's webhook received since the last call. */
function slackTexts(): string[] {
  const texts = rx.received.map((r) => (JSON.parse(r.body) as { text: string }).text)
  rx.received.length = 0
  return texts
}

/** GET through the droplet's nginx (its port 80, published on 127.0.0.1) with a domain's Host header. */
const through = (host: string, path: string) => getThrough(web.ports.http, host, path)

async function servedRelease(): Promise<string[]> {
  return Promise.all(
    Object.values(FIXTURE_DOMAINS).map(async (d) => (await through(d, '/version')).body.trim()),
  )
}

const psql = (sql: string) =>
  `docker exec $(docker ps -q --filter label=com.docker.compose.service=postgres) psql -U conciliaextrato -d conciliaextrato -Atc ${JSON.stringify(sql)}`

test.before(async () => {
  await buildFixtureImages()
  bed = await createTestBed('deploy', ['web-1'], { image: 'provisioned' })
  web = bed.droplets[0] as SandboxDroplet
  // The team's webhooks: one that answers, one whose endpoint is down (it must not fail a deploy).
  rx = await startReceiver()
  process.env.TEAM_SLACK_URL = `${rx.url}/hooks/team`
  process.env.DOWN_JSON_URL = `http://127.0.0.1:${await closedPort()}/hook`
  writeManagedEnv(bed, 'it', {
    health: { path: '/health', timeout_s: 20 },
    secrets: ['POSTGRES_PASSWORD', 'REDIS_PASSWORD', 'TEAM_SLACK_URL', 'DOWN_JSON_URL'],
    notify: [
      { name: 'team', type: 'slack', url_secret: 'TEAM_SLACK_URL', events: ['deploy', 'rollback'] },
      { name: 'down', type: 'json', url_secret: 'DOWN_JSON_URL', events: ['deploy'] },
    ],
  })
  const setup = await runCaptured(setupServer, ['--env', 'it'])
  if (setup.code !== 0) throw new Error(`setup-server failed:\n${setup.out}`)
})

test.after(async () => {
  await rx?.close()
  await destroyTestBed(bed)
})

test('deploy v1: the three domains answer through nginx with v1; data services run in their own project', async () => {
  const { code, out } = await runCaptured(deploy, ['--env', 'it', '--release', 'v1'])
  assert.is(code, 0, out)
  assert.equal(await servedRelease(), ['v1', 'v1', 'v1'])
  assert.match(out, /api p95 over 20 requests: \d+ ms, 0 error\(s\)/)
  await onDroplet(web, psql('create table survival(n int); insert into survival values (42)'))
  const perms = await onDroplet(
    web,
    'stat -c "%a %U" /srv/conciliaextrato/it/app.env /srv/conciliaextrato/it/data.env',
  )
  assert.is(perms.trim(), '600 deploy\n600 deploy')
  assert.not.match(await onDroplet(web, 'docker ps --format "{{.Ports}}"'), '0.0.0.0')
  // The passwords ($, " #", quotes in the test bed's) reach Postgres and Redis exactly as written: the
  // api's /health (200 above) logs in to both; here Redis itself is asked, with the password as given.
  const redis = (
    await onDroplet(
      web,
      'docker ps -q --filter label=com.docker.compose.project=ce-it-data --filter label=com.docker.compose.service=redis',
    )
  ).trim()
  const pw = process.env.REDIS_PASSWORD ?? ''
  assert.ok(pw.includes('$') && pw.includes(' #') && pw.includes("'"), pw)
  assert.is(
    (
      await onDroplet(
        web,
        `docker exec -e REDISCLI_AUTH=${quote(pw)} ${redis} redis-cli --no-auth-warning PING`,
      )
    ).trim(),
    'PONG',
  )
  // ... and never on a command line: not in Redis's arguments, not in any process list on the host.
  const inspect = await onDroplet(web, `docker inspect -f '{{json .Config.Cmd}} {{json .Args}}' ${redis}`)
  assert.not.match(inspect, 'redis-s3cret')
  assert.not.match(await onDroplet(web, 'ps -eo args'), 'redis-s3cret')
  assert.is((await onDroplet(web, 'stat -c "%a %U" /srv/conciliaextrato/it/redis')).trim(), '700 deploy')
  // Each service holds only the connection URLs it uses (services.<name>.uses; the default: the api).
  const envOf = (svc: string) =>
    onDroplet(
      web,
      `docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' $(docker ps -q --filter label=com.docker.compose.project=ce-it-blue --filter label=com.docker.compose.service=${svc})`,
    )
  for (const svc of ['site', 'saas']) assert.not.match(await envOf(svc), /DATABASE_URL|REDIS_URL/)
  // Container logs go to journald (bounded in age: LGPD), and `docker logs` still reads them.
  const drivers = await onDroplet(
    web,
    `docker inspect -f '{{.HostConfig.LogConfig.Type}}' $(docker ps -q --filter label=com.docker.compose.project=ce-it-blue) ${redis}`,
  )
  assert.equal([...new Set(drivers.trim().split('\n'))], ['journald'])
  assert.match(await onDroplet(web, `docker logs ${redis} 2>&1 | tail -n 20`), /Ready to accept connections/i)
  assert.match(await envOf('api'), /^DATABASE_URL=postgres:\/\/[\s\S]*^REDIS_URL=redis:\/\//m)
  // The team hears of it; the webhook that is down is reported and changes nothing.
  const [text, ...more] = slackTexts()
  assert.equal(more, [])
  assert.match(text ?? '', 'deploy of v1 to it: success')
  assert.match(text ?? '', /release: v1, who: [^,]+, duration: (\d+m )?\d+s/)
  assert.match(out, /could not notify down: .*ECONNREFUSED.* \(the runbook's outcome is unchanged\)/)
})

/**
 * Writes a line into the log of a colour's running api container, as if the app had printed it: to its
 * main process's stdout, from the host (the fixture images have no shell).
 */
async function logLine(colour: 'blue' | 'green', text: string): Promise<void> {
  const b64 = Buffer.from(`${text}\n`).toString('base64')
  const api = `$(docker ps -q --filter label=com.docker.compose.project=ce-it-${colour} --filter label=com.docker.compose.service=api)`
  await onDroplet(web, `echo ${b64} | base64 -d > /proc/$(docker inspect -f '{{.State.Pid}}' ${api})/fd/1`)
}

test('deploy v2: switched to the other colour, v1 kept running for an instant rollback (rollback.instant_window_min)', async () => {
  await logLine('blue', 'LOGS-CHECK from v1')
  const pgBefore = await onDroplet(web, 'docker ps -q --filter label=com.docker.compose.service=postgres')
  const { code, out } = await runCaptured(deploy, ['--env', 'it', '--release', 'v2'])
  assert.is(code, 0, out)
  assert.equal(await servedRelease(), ['v2', 'v2', 'v2'])
  assert.match(out, /blue \(v1\) keeps running until \S+ \(rollback.instant_window_min: 30\)/)
  const blue = await onDroplet(
    web,
    'docker ps -a --filter label=com.docker.compose.project=ce-it-blue --format "{{.Image}} {{.State}}"',
  )
  assert.match(blue, 'conciliaextrato/api:v1 running')
  // The host's watchdog stops it once this time is past (test/unit/watchdog.test.ts: instant-rollback window).
  assert.match(
    await onDroplet(web, 'cat /srv/conciliaextrato/it/idle-colour'),
    /^colour=blue\nrelease=v1\nuntil=\d{4}-\S+Z\n$/,
  )
  // make status tells the on-call what serves and what a rollback would switch back to.
  const st = await runCaptured(status, ['--env', 'it'])
  assert.is(st.code, 0, st.out)
  assert.match(st.out, /serving +green\n/)
  assert.match(
    st.out,
    /rollback window +blue \(v1\) kept running until \S+Z \((29|30) min left\): make rollback is an nginx switch/,
  )
  assert.match(st.out, /maintenance +none\n/)
  assert.is(await onDroplet(web, 'docker ps -q --filter label=com.docker.compose.service=postgres'), pgBefore)
})

test('make logs: both colours marked, Postgres, a leaked password redacted, GREP, bad SINCE', async () => {
  const secret = process.env.POSTGRES_PASSWORD ?? ''
  await logLine('green', `LOGS-CHECK from v2 leaking ${secret}`)
  const all = await runCaptured(logs, ['--env', 'it', '--since', '1h'])
  assert.is(all.code, 0, all.out)
  const lines = all.out.split('\n').filter((l) => l.startsWith('web-1 '))
  const v1 = lines.find((l) => l.endsWith('LOGS-CHECK from v1'))
  const v2 = lines.find((l) => l.includes('LOGS-CHECK from v2'))
  assert.ok(v1 && v2, all.out)
  assert.match(v1 ?? '', /^web-1 api\/blue /)
  assert.match(
    v2 ?? '',
    /^web-1 api\/green \d{4}-\d\d-\d\dT\S+ LOGS-CHECK from v2 leaking \[secret:POSTGRES_PASSWORD\]$/,
  )
  assert.ok(
    lines.some((l) => l.startsWith('web-1 postgres/data ')),
    all.out,
  )
  assert.not.ok(all.out.includes(secret), 'the password itself was printed')
  // Oldest first.
  const keys = lines.map((l) => timeKey(l.split(' ')[2] ?? ''))
  assert.equal(keys, [...keys].sort(), 'lines not in time order')
  // GREP on the hosts, SERVICE: only the two marked lines of the api.
  const grep = await runCaptured(logs, [
    '--env',
    'it',
    '--service',
    'api',
    '--grep',
    'LOGS-CHECK from v[12]',
    '--since',
    '1h',
  ])
  assert.is(grep.code, 0, grep.out)
  assert.is(grep.out.split('\n').filter((l) => l.startsWith('web-1 ')).length, 2, grep.out)
  // A typo is refused before any host is contacted.
  const bad = await runCaptured(logs, ['--env', 'it', '--since', 'yesterday'])
  assert.is(bad.code, 2, bad.out)
  assert.match(bad.out, 'SINCE=yesterday: not a duration or a time')
})

test('a broken release never takes traffic: v2 keeps serving, the run fails, the release is marked failed', async () => {
  slackTexts() // forget deploy v2's message
  const { code, out } = await runCaptured(deploy, ['--env', 'it', '--release', 'broken'])
  assert.is(code, 1, out)
  assert.match(out, /Step 9 "Start the idle colour.*" failed/)
  assert.match(out, 'broken did not go live; green keeps serving')
  assert.equal(await servedRelease(), ['v2', 'v2', 'v2'])
  // The rollback target (v1 on blue, running inside the instant-rollback window) is put back, running,
  // not left as stopped broken containers.
  assert.match(out, /blue holds v1 again \(running: instant rollback until \S+\), as rollback expects it/)
  const blue = await onDroplet(
    web,
    'docker ps -a --filter label=com.docker.compose.project=ce-it-blue --format "{{.Image}} {{.State}}"',
  )
  assert.match(blue, 'conciliaextrato/api:v1 running')
  assert.not.match(blue, 'broken')
  const history = await runCaptured(releases, ['--env', 'it'])
  assert.match(history.out, /deploy\s+broken\s+blue\s+failed/)
  // The team hears which step failed and that v2 still serves; no secret travels in the message.
  const bodies = rx.received.map((r) => r.body).join('\n')
  const [text, ...more] = slackTexts()
  assert.equal(more.length, 0, bodies)
  assert.match(text ?? '', 'deploy of broken to it: failed')
  assert.match(bodies, 'step \\"Start the idle colour')
  assert.match(bodies, 'green kept serving, nothing to undo')
  assert.not.match(bodies, process.env.POSTGRES_PASSWORD ?? 'unset')
})

test('a failing migration stops the deploy with the old colour serving', async () => {
  const { code, out } = await runCaptured(deploy, ['--env', 'it', '--release', 'badmig'])
  assert.is(code, 1, out)
  assert.match(out, /Step 8 "Migrations from the new api image.*" failed/)
  assert.match(out, '0002_broken_reference')
  assert.equal(await servedRelease(), ['v2', 'v2', 'v2'])
})

test('a failed post-deploy gate switches traffic back at once and exits 4', async () => {
  // A gate no release can pass (API p95 under 1 ms) makes the switch-back path run for real.
  const file = join(bed.envDir, 'it.yaml')
  const original = readFileSync(file, 'utf8')
  writeFileSync(file, original.replace('timeout_s: 20', 'timeout_s: 20\n  api_p95_ms: 1'))
  try {
    const { code, out } = await runCaptured(deploy, ['--env', 'it', '--release', 'v1'])
    assert.is(code, 4, out)
    assert.match(out, 'gates failed: switching back to green')
    assert.match(out, /api p95 over 20 requests: \d+ ms, 0 error\(s\) \(gate: < 1 ms, 0 errors\)/)
  } finally {
    writeFileSync(file, original)
  }
  assert.equal(await servedRelease(), ['v2', 'v2', 'v2'])
})

test('a concurrent deploy is refused by the lock, naming the holder', async () => {
  const owner =
    'who=Ana\nrunbook=deploy\nrelease=v9\npid=1\nmachine=laptop\nstarted_at=now\nci_run_url=\ntoken=x\n'
  await onDroplet(
    web,
    `su deploy -c 'mkdir /srv/conciliaextrato/it/deploy.lock && printf "${owner}" > /srv/conciliaextrato/it/deploy.lock/owner && touch /srv/conciliaextrato/it/deploy.lock/heartbeat'`,
  )
  const { code, out } = await runCaptured(deploy, ['--env', 'it', '--release', 'v1'])
  assert.is(code, 3, out)
  assert.match(out, 'The deploy lock on web-1 is held by Ana (deploy of v9, pid 1 on laptop, since now).')
  assert.equal(await servedRelease(), ['v2', 'v2', 'v2'])
  await onDroplet(web, 'rm -rf /srv/conciliaextrato/it/deploy.lock')
})

test('production takes a pg_dump before it migrates (mode 0600, a real custom-format dump); old images pruned', async () => {
  const file = join(bed.envDir, 'it.yaml')
  const original = readFileSync(file, 'utf8')
  writeFileSync(file, asProduction(original))
  let out = ''
  try {
    const run = await runCaptured(deploy, ['--env', 'it', '--release', 'v2', '--yes'])
    out = run.out
    assert.is(run.code, 0, out)
    assert.match(out, 'pre-migration backup /srv/conciliaextrato/it/pre-migration-v2.dump')
    // Before it: the release's migrations on a masked copy of the live database, compared.
    assert.match(out, /migrated the copy in [\d.]+ s; rows \d+ -> \d+/)
  } finally {
    writeFileSync(file, original)
  }
  // The first deploy to succeed after the failed ones removed their images (images.keep_releases);
  // v2 (live) and v1 (an earlier live release, the rollback below needs it) stay; Postgres and Redis too.
  assert.match(out, 'web-1: removed conciliaextrato/site:broken')
  assert.match(out, 'images kept for releases v2, v1 (images.keep_releases: 5)')
  const images = await onDroplet(web, "docker image ls --format '{{.Repository}}:{{.Tag}}' | sort")
  assert.equal(
    images.split('\n').filter((l) => l.startsWith('conciliaextrato')),
    [
      'conciliaextrato-sandbox/postgres:15',
      'conciliaextrato-sandbox/redis:7',
      'conciliaextrato/api:v1',
      'conciliaextrato/api:v2',
      'conciliaextrato/saas:v1',
      'conciliaextrato/saas:v2',
      'conciliaextrato/site:v1',
      'conciliaextrato/site:v2',
    ],
  )
  const dump = '/srv/conciliaextrato/it/pre-migration-v2.dump'
  assert.is((await onDroplet(web, `stat -c '%a %U' ${dump}`)).trim(), '600 deploy')
  const listing = await onDroplet(
    web,
    `docker exec -i $(docker ps -q --filter label=com.docker.compose.service=postgres) pg_restore -l < ${dump}`,
  )
  assert.match(listing, 'TABLE public survival')
  assert.equal(await servedRelease(), ['v2', 'v2', 'v2'])
})

test('production: a release whose migrations fail on a copy of the live data is stopped before its own migrations (exit 4); nothing live changed, the copy dropped', async () => {
  const file = join(bed.envDir, 'it.yaml')
  const original = readFileSync(file, 'utf8')
  writeFileSync(file, asProduction(original))
  const applied =
    "docker exec $(docker ps -q --filter label=com.docker.compose.service=postgres) psql -U conciliaextrato -tAc 'SELECT count(*) FROM schema_migrations'"
  const before = await onDroplet(web, applied)
  try {
    const { code, out } = await runCaptured(deploy, ['--env', 'it', '--release', 'badmig', '--yes'])
    assert.is(code, 4, out)
    assert.match(out, /Step 7 "Production: the release's migrations first on a masked copy.*" failed/)
    assert.match(out, "badmig's migrations failed on a copy of it's live data")
    assert.match(out, '0002_broken_reference')
    assert.not.match(out, 'pre-migration-badmig.dump')
  } finally {
    writeFileSync(file, original)
  }
  assert.is(await onDroplet(web, applied), before)
  const dbs = await onDroplet(
    web,
    'docker exec $(docker ps -q --filter label=com.docker.compose.service=postgres) psql -U conciliaextrato -d postgres -tAc "SELECT count(*) FROM pg_database WHERE datname LIKE \'ce_rehearse_%\'"',
  )
  assert.is(dbs.trim(), '0')
  assert.equal(await servedRelease(), ['v2', 'v2', 'v2'])
})

test('rollback goes back to v1, and data survived everything', async () => {
  const { code, out } = await runCaptured(rollback, ['--env', 'it'])
  assert.is(code, 0, out)
  assert.match(out, 'rolling back from v2 to v1')
  assert.equal(await servedRelease(), ['v1', 'v1', 'v1'])
  assert.is((await onDroplet(web, psql('select n from survival'))).trim(), '42')
  const history = await runCaptured(releases, ['--env', 'it'])
  assert.match(history.out, /rollback\s+v1\s+(blue|green)\s+live/)
  // The release rolled away from stops after the drain, in the background on the host: no window for it.
  const away = /release v1: live colour (blue|green)/.exec(out)?.[1]
  assert.ok(away, out)
  assert.match(out, `${away} (v2) stops after a 2 s drain, in the background on the host`)
  let running = ''
  for (let i = 0; i < 60; i++) {
    running = await onDroplet(web, `docker ps -q --filter label=com.docker.compose.project=ce-it-${away}`)
    if (running.trim() === '') break
    await new Promise((r) => setTimeout(r, 500))
  }
  assert.is(running.trim(), '', `${away} still runs 30 s after the rollback`)
})

test('inside the window a rollback is an nginx switch: the previous colour still runs its release', async () => {
  const dep = await runCaptured(deploy, ['--env', 'it', '--release', 'v2'])
  assert.is(dep.code, 0, dep.out)
  const t0 = Date.now()
  const { code, out } = await runCaptured(rollback, ['--env', 'it'])
  const took = (Date.now() - t0) / 1000
  assert.is(code, 0, out)
  assert.match(out, /web-1: (blue|green) already runs v1 \(kept running after the last deploy\)/)
  assert.not.match(out, /Creating|Recreating|Starting/, 'nothing was created or started')
  assert.equal(await servedRelease(), ['v1', 'v1', 'v1'])
  console.log(`      instant rollback v2 -> v1: ${took.toFixed(1)} s (make bench-deploy measures it)`)
})

test("a host whose nginx upstreams predate the colour flag (an older deploy's): a rollback writes them anew, checks, reloads and serves", async () => {
  const dep = await runCaptured(deploy, ['--env', 'it', '--release', 'v2'])
  assert.is(dep.code, 0, dep.out)
  const upstreams = '/etc/nginx/conciliaextrato/it-upstreams.conf'
  // An older deploy's file has no line saying the env switches by the flag file.
  await onDroplet(web, `sed -i '/^# Switched by a flag file/d' ${upstreams}`)
  const { code, out } = await runCaptured(rollback, ['--env', 'it'])
  assert.is(code, 0, out)
  assert.match(out, "web-1: nginx's files predate the colour flag: written anew, checked and reloaded")
  assert.equal(await servedRelease(), ['v1', 'v1', 'v1'])
  assert.match(
    await onDroplet(web, `sed -n 2p ${upstreams}`),
    /^# Switched by a flag file, read on every request/,
  )
})

test('make psql: read-only by default, WRITE=1 one transaction (all or nothing), audited, secrets redacted', async () => {
  const run = (args: string[]) => runCaptured(psqlRunbook, ['--env', 'it', ...args])
  const secret = process.env.POSTGRES_PASSWORD ?? ''
  const read = await run(['--sql', `select n, $q$${secret}$q$ as leaked from survival`])
  assert.is(read.code, 0, read.out)
  assert.match(read.out, /\b42\b/)
  assert.match(read.out, '[secret:POSTGRES_PASSWORD]')
  assert.not.ok(read.out.includes(secret), 'the password itself was printed')
  const record = auditRecords(bed).at(-1) as {
    runbook: string
    events?: string[]
    args: Record<string, string>
  }
  assert.is(record.runbook, 'psql')
  assert.match(
    record.events?.[0] ?? '',
    /^psql read-only on web-1: select n, \$q\$\[secret:POSTGRES_PASSWORD\]\$q\$ as leaked/,
  )
  assert.not.ok(JSON.stringify(record).includes(secret), 'the password in the audit record')
  // Without WRITE=1 a change is refused by Postgres itself.
  const refused = await run(['--sql', 'update survival set n = 43'])
  assert.is(refused.code, 1, refused.out)
  assert.match(refused.out, 'cannot execute UPDATE in a read-only transaction')
  // WRITE=1: one transaction; a later error rolls the earlier statement back.
  const half = await run(['--write', '--sql', 'update survival set n = 43; select 1/0;'])
  assert.is(half.code, 1, half.out)
  assert.match(half.out, 'division by zero')
  assert.is((await onDroplet(web, psql('select n from survival'))).trim(), '42')
  const ok = await run(['--write', '--sql', 'update survival set n = 42'])
  assert.is(ok.code, 0, ok.out)
  assert.match(ok.out, 'UPDATE 1')
  assert.match(
    (auditRecords(bed).at(-1) as { events?: string[] }).events?.[0] ?? '',
    /^psql WRITE on web-1: update survival/,
  )
  // No SQL: exit 2 before any host is contacted.
  const none = await run([])
  assert.is(none.code, 2, none.out)
  assert.match(none.out, 'SQL is required')
})

test("make exec: in the live colour's api and in Postgres, words passed as they are, audited; bad input exit 2", async () => {
  const run = (args: string[]) => runCaptured(execRunbook, ['--env', 'it', ...args])
  const status = await run(['--service', 'api', '--cmd', '/app migrate --status'])
  assert.is(status.code, 0, status.out)
  assert.match(status.out, /in ce-it-(blue|green)[-_]api[-_]\d+ on web-1/)
  assert.match(status.out, 'applied')
  const event = (auditRecords(bed).at(-1) as { events?: string[] }).events?.[0] ?? ''
  assert.is(event, 'exec on web-1 api: ["/app","migrate","--status"]')
  // One word with spaces and a quote reaches psql as one argument; $(id) is text, not run.
  const sql = await run([
    '--service',
    'postgres',
    '--cmd',
    `psql -U conciliaextrato -d conciliaextrato -Atc "select n || ' $(id)' from survival"`,
  ])
  assert.is(sql.code, 0, sql.out)
  assert.match(sql.out, '42 $(id)')
  const bad = await run(['--service', 'nginx', '--cmd', 'ls'])
  assert.is(bad.code, 2, bad.out)
  assert.match(bad.out, 'SERVICE=nginx: not a service of the stack')
})

test('make access: every key per account against the env file; APPLY=1 revokes the strays, never the key in use', async () => {
  const stray = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqFt3IwlprSzQLewrzNvgcYlsWxIR4/EyRwxvtom5Tv gone@team'
  const fp = 'SHA256:yV6NYNJxG8l+7UL0FdMK0u14DF9adk0kBrgfqEJjHYI'
  await onDroplet(
    web,
    `echo '# kept: a comment' >> /home/deploy/.ssh/authorized_keys; echo ${quote(stray)} >> /home/deploy/.ssh/authorized_keys; mkdir -p /root/.ssh; echo ${quote(stray)} >> /root/.ssh/authorized_keys`,
  )
  const list = await runCaptured(access, ['--env', 'it'])
  assert.is(list.code, 0, list.out)
  assert.match(
    list.out,
    new RegExp(`web-1  deploy\\s+stray\\s+ssh-ed25519 ${fp.replace(/[+/]/g, '\\$&')} gone@team`),
  )
  assert.match(list.out, /web-1 {2}deploy\s+listed\s+ssh-ed25519 SHA256:\S+/, 'the test bed key, listed')
  assert.match(list.out, /web-1 {2}ce-check\s+listed\s+ssh-ed25519 \S+ \S+ \[restrict\]/)
  assert.match(list.out, /web-1 {2}root\s+stray\s+ssh-ed25519 \S+ gone@team/)
  // Reading every account's keys is root's work: it came in as the administrator, whose own key is listed.
  assert.match(list.out, /web-1: ce-admin@127\.0\.0\.1:\d+ \(sudo\)/)
  assert.match(list.out, /web-1 {2}ce-admin\s+listed\s+ssh-ed25519 \S+ ce-admin@it/)
  assert.match(list.out, /stray key\(s\): make access ENV=it APPLY=1 revokes them/)
  assert.match(
    await onDroplet(web, 'cat /home/deploy/.ssh/authorized_keys'),
    'gone@team',
    'listing changed nothing',
  )

  const apply = await runCaptured(access, ['--env', 'it', '--apply'])
  assert.is(apply.code, 0, apply.out)
  assert.match(apply.out, `web-1: revoked deploy ${fp} gone@team`)
  assert.match(apply.out, `web-1: revoked root ${fp} gone@team`)
  const file = await onDroplet(
    web,
    'cat /home/deploy/.ssh/authorized_keys; stat -c "%a %U" /home/deploy/.ssh/authorized_keys',
  )
  assert.not.match(file, 'gone@team')
  assert.match(file, '# kept: a comment')
  assert.match(file, /600 deploy\n$/)
  const record = auditRecords(bed).at(-1) as { runbook: string; events?: string[] }
  assert.is(record.runbook, 'access')
  assert.ok(
    record.events?.some((e) => e.includes(`revoked on web-1: deploy ${fp}`)),
    JSON.stringify(record),
  )
  // The deploy key still logs in (this run's own), and nothing stray is left.
  const again = await runCaptured(access, ['--env', 'it'])
  assert.is(again.code, 0, again.out)
  assert.match(again.out, 'every key is listed in the env file')
})

test('the branch rule refuses a release from the wrong branch unless overridden', async () => {
  const { code, out } = await runCaptured(deploy, ['--env', 'it', '--release', 'v2', '--branch', 'feature-x'])
  assert.is(code, 2)
  assert.match(out, 'This env deploys from branch "main", and this release comes from "feature-x"')
  assert.equal(await servedRelease(), ['v1', 'v1', 'v1'])
})

test('SIGTERM mid-deploy releases the lock and leaves a colour serving', async () => {
  const run = spawnScript('runbooks/deploy.ts', ['--env', 'it', '--release', 'v2'])
  await run.until('Start the idle colour')
  run.child.kill('SIGTERM')
  const code = await run.exit
  const out = run.output()
  assert.is(code, 143, out)
  assert.is(
    (await onDroplet(web, 'test -d /srv/conciliaextrato/it/deploy.lock && echo held || echo free')).trim(),
    'free',
  )
  assert.equal(await servedRelease(), ['v1', 'v1', 'v1'])
})

test.run()

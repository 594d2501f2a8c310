import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import * as assert from 'uvu/assert'
import { renderSwarmUpstreams, renderUpstreams } from '../../lib/commands/nginx.ts'
import {
  HEALTH_LOGROTATE,
  timerActivate,
  type WatchdogFile,
  watchdogConfigContent,
  watchdogDirs,
  watchdogFile,
  watchdogService,
  watchdogTimer,
} from '../../lib/commands/watchdog.ts'
import type { Env } from '../../lib/env/load.ts'
import { withoutModulePaths } from '../../lib/host/node-program.ts'
import { setSinks } from '../../lib/report/output.ts'
import { clearSecrets } from '../../lib/report/redact.ts'
import { buildWatchdogBundle } from '../../lib/setup/watchdog.ts'
import {
  budgetNote,
  mayRestart,
  pruneRestarts,
  recentRestarts,
  recordRestart,
} from '../../lib/watchdog/budget.ts'
import { canaryCheck, httpVerdict, parseLiveColour, parseMeminfo } from '../../lib/watchdog/checks.ts'
import { containerVerdict, parseInspect, watchContainers } from '../../lib/watchdog/containers.ts'
import type { Exec } from '../../lib/watchdog/exec.ts'
import { historyLines, runWatchdog } from '../../lib/watchdog/main.ts'
import { pauseVerdict } from '../../lib/watchdog/pause.ts'
import { suite } from '../harness.ts'
import { type Receiver, startReceiver } from '../sandbox/webhook-receiver.ts'

const test = suite('watchdog')
const T0 = new Date('2026-03-01T12:03:00.000Z')
const rules = { maxRestarts: 3, restartWindowMin: 30 }
const min = (m: number) => new Date(T0.getTime() + m * 60_000)

test('the service runs the bundle once with its config; the timer every interval_s, accurately', () => {
  assert.is(
    watchdogService('production', 60),
    [
      '# Managed by setup-server: one run of the watchdog (its timer starts it).',
      '[Unit]',
      'Description=ConciliaExtrato watchdog for env production: checks, restarts, alerts',
      'After=docker.service nginx.service',
      '',
      '[Service]',
      'Type=oneshot',
      'ExecStart=/usr/bin/node /usr/local/lib/conciliaextrato/watchdog.mjs /etc/conciliaextrato/watchdog-production.json',
      'TimeoutStartSec=120',
      'Nice=5',
      'NoNewPrivileges=yes',
      'CapabilityBoundingSet=CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH',
      'AmbientCapabilities=',
      'PrivateTmp=yes',
      'PrivateDevices=yes',
      'ProtectSystem=strict',
      'ReadWritePaths=-/var/lib/conciliaextrato/watchdog/production -/var/log/conciliaextrato/health',
      'ProtectHome=yes',
      'ProtectKernelTunables=yes',
      'ProtectKernelModules=yes',
      'ProtectKernelLogs=yes',
      'ProtectControlGroups=yes',
      'ProtectClock=yes',
      'ProtectHostname=yes',
      'RestrictNamespaces=yes',
      'RestrictRealtime=yes',
      'RestrictSUIDSGID=yes',
      'LockPersonality=yes',
      'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6',
      'SystemCallArchitectures=native',
      'SystemCallFilter=@system-service',
      'SystemCallErrorNumber=EPERM',
      'UMask=0027',
      '',
    ].join('\n'),
  )
  const timer = watchdogTimer('production', 60)
  assert.match(timer, '\n[Timer]\nOnBootSec=60s\nOnUnitActiveSec=60s\nAccuracySec=1s\n')
  assert.match(timer, '\n[Install]\nWantedBy=timers.target\n')
  assert.match(watchdogService('staging', 300), 'TimeoutStartSec=600')
})

test('timer activation, directories and log rotation', () => {
  assert.is(
    timerActivate('production', true),
    'systemctl daemon-reload && systemctl enable --quiet conciliaextrato-watchdog@production.timer && systemctl restart conciliaextrato-watchdog@production.timer',
  )
  assert.is(
    timerActivate('production', false),
    'systemctl enable --quiet --now conciliaextrato-watchdog@production.timer',
  )
  const dirs = watchdogDirs('production')
  assert.is(
    dirs.apply,
    'install -d -m 0700 -o root -g root /var/lib/conciliaextrato/watchdog/production && install -d -m 2750 -o root -g adm /var/log/conciliaextrato/health',
  )
  assert.match(
    dirs.check,
    `[ "$(stat -c '%U:%G %a' /var/log/conciliaextrato/health 2>/dev/null)" = 'root:adm 2750' ]`,
  )
  assert.match(HEALTH_LOGROTATE, '/var/log/conciliaextrato/health/*.jsonl {\n  weekly\n  rotate 13\n')
})

const env = {
  name: 'production',
  domains: { site: 'example.com', saas: 'app.example.com', api: 'api.example.com' },
  health: { path: '/health', timeoutS: 30, diskMinFreePct: 15, memMinFreePct: 10 },
  watchdog: { intervalS: 60, maxRestarts: 3, restartWindowMin: 30 },
  alerts: { failureThreshold: 2, reminderMin: 60, p95DegradeFactor: 2, max5xxPerMin: 10 },
  notify: [
    {
      name: 'team',
      type: 'slack',
      secret: 'TEAM_SLACK_URL',
      events: ['deploy', 'alert'],
      minSeverity: 'info',
    },
    { name: 'ci', type: 'json', secret: 'CI_JSON_URL', events: ['deploy'], minSeverity: 'info' },
  ],
} as unknown as Env

test('the config holds only the targets that take alerts, with their URLs; it is the same on every run', () => {
  const secrets = { TEAM_SLACK_URL: 'https://hooks.slack.com/services/T/B/x', CI_JSON_URL: 'https://ci/x' }
  const file = watchdogFile(env, 'web-1', secrets)
  assert.equal(file.targets, [
    { name: 'team', type: 'slack', secret: 'TEAM_SLACK_URL', events: ['alert'], minSeverity: 'info' },
  ])
  assert.equal(file.urls, { TEAM_SLACK_URL: 'https://hooks.slack.com/services/T/B/x' })
  assert.equal(file.projects, {
    data: 'ce-production-data',
    blue: 'ce-production-blue',
    green: 'ce-production-green',
  })
  assert.is(file.upstreamsFile, '/etc/nginx/conciliaextrato/production-upstreams.conf')
  assert.is(file.historyFile, '/var/log/conciliaextrato/health/production.jsonl')
  assert.is(file.stateDir, '/var/lib/conciliaextrato/watchdog/production')
  assert.is(file.httpTimeoutS, 10)
  assert.equal(file.domains, ['example.com', 'app.example.com', 'api.example.com'])
  assert.is(watchdogConfigContent(file), watchdogConfigContent(watchdogFile(env, 'web-1', secrets)))
})

test("the live colour is read from deploy's upstreams file as deploy writes it", () => {
  assert.is(parseLiveColour(renderUpstreams('production', 'green')), 'green')
  assert.is(parseLiveColour(renderUpstreams('production', 'blue')), 'blue')
  assert.is(
    parseLiveColour(renderSwarmUpstreams('production', { site: 1, saas: 2, api: 3 }, ['10.0.0.2'])),
    'swarm',
  )
  assert.is(parseLiveColour(undefined), undefined)
  assert.is(parseLiveColour('upstream x {}'), undefined)
})

// Trimmed from `docker inspect` of a compose v1 project (Docker 20.10).
const inspect = (
  id: string,
  service: string,
  state: Record<string, unknown>,
  project = 'ce-production-blue',
) => ({
  Id: id,
  Name: `/${project}_${service}_1`,
  State: { Status: 'running', Running: true, ExitCode: 0, FinishedAt: '0001-01-01T00:00:00Z', ...state },
  Config: {
    Labels: {
      'com.docker.compose.project': project,
      'com.docker.compose.service': service,
      'com.docker.compose.container-number': '1',
      'com.docker.compose.oneoff': 'False',
      'com.docker.compose.version': '1.29.2',
    },
  },
})
const healthy = { Health: { Status: 'healthy', FailingStreak: 0, Log: [{ ExitCode: 0, Output: '' }] } }
const SAMPLE = JSON.stringify([
  inspect('aaa', 'api', healthy),
  inspect('bbb', 'saas', {
    Health: { Status: 'unhealthy', FailingStreak: 3, Log: [{ ExitCode: 1, Output: 'GET /health: 500\n' }] },
  }),
  inspect('ccc', 'site', {
    Status: 'exited',
    Running: false,
    ExitCode: 137,
    FinishedAt: '2026-03-01T12:02:41.512345678Z',
    Health: { Status: 'unhealthy', Log: [] },
  }),
  inspect('ddd', 'redis', { Status: 'restarting' }, 'ce-production-data'),
  inspect('eee', 'postgres', {}, 'ce-production-data'),
])

test('docker inspect output: state, health and what to do about it', () => {
  const list = parseInspect(SAMPLE)
  assert.equal(
    list.map((c) => [c.project, c.service, c.status, c.health, c.finishedAt]),
    [
      ['ce-production-blue', 'api', 'running', 'healthy', null],
      ['ce-production-blue', 'saas', 'running', 'unhealthy', null],
      ['ce-production-blue', 'site', 'exited', 'unhealthy', '2026-03-01T12:02:41.512345678Z'],
      ['ce-production-data', 'redis', 'restarting', null, null],
      ['ce-production-data', 'postgres', 'running', null, null],
    ],
  )
  assert.equal(list.map(containerVerdict), [
    { ok: true, action: 'none', detail: 'running, healthy' },
    { ok: false, action: 'restart', detail: 'unhealthy (last check: GET /health: 500)' },
    { ok: false, action: 'start', detail: 'exited (137) at 12:02:41 UTC' },
    { ok: false, action: 'none', detail: 'restarting' },
    { ok: true, action: 'none', detail: 'running' },
  ])
  assert.equal(parseInspect(''), [])
})

test('meminfo, and HTTP answers as results', () => {
  const meminfo = 'MemTotal:       24684288 kB\nMemFree:        15428148 kB\nMemAvailable:   23263192 kB\n'
  assert.is(parseMeminfo(meminfo), 94)
  assert.is(parseMeminfo('nonsense'), undefined)
  assert.equal(httpVerdict('api.example.com', '/health', { status: 200, ms: 12 }), {
    check: 'http:api.example.com',
    ok: true,
    ms: 12,
    detail: 'GET /health: 200 in 12 ms',
    runbook: 'docs/runbooks/health.md',
  })
  const refused = httpVerdict('api.example.com', '/health', {
    ms: 1,
    error: 'connection failed (ECONNREFUSED)',
  })
  assert.is(refused.ok, false)
  assert.is(refused.detail, 'GET /health: connection failed (ECONNREFUSED)')
  assert.is(refused.runbook, 'docs/runbooks/rollback.md')
  assert.is(
    httpVerdict('x.example.com', '/health', { status: 404, ms: 3 }).runbook,
    'docs/runbooks/health.md',
  )
})

test('restart budget: at most max_restarts within the window, then it gives up; old restarts expire', () => {
  let log = {}
  for (const m of [0, 1, 2]) {
    assert.ok(mayRestart(log, 'k', min(m), rules))
    log = recordRestart(log, 'k', min(m), rules)
  }
  assert.not.ok(mayRestart(log, 'k', min(3), rules))
  assert.is(recentRestarts(log, 'k', min(3), rules).length, 3)
  assert.not.ok(mayRestart(log, 'k', min(29.5), rules), 'the window is the last 30 min')
  assert.ok(mayRestart(log, 'k', min(30), rules), 'the first restart left the window')
  assert.equal(pruneRestarts(log, min(60), rules), {})
  assert.ok(mayRestart(log, 'other', min(3), rules), 'per container')
  assert.not.ok(mayRestart({}, 'k', min(0), { ...rules, maxRestarts: 0 }))
  assert.is(budgetNote(2, rules, true), 'restarted (2 of 3 in 30 min)')
  assert.is(budgetNote(3, rules, false), 'gave up after 3 restarts in 30 min: left alone')
  assert.is(budgetNote(0, { ...rules, maxRestarts: 0 }, false), 'not restarted (watchdog.max_restarts is 0)')
})

/** A stand-in for the docker and systemctl CLIs: containers by id, and the commands it was given. */
function fakeDocker(containers: ReturnType<typeof inspect>[]) {
  const calls: string[] = []
  const exec: Exec = async (file, args) => {
    calls.push([file, ...args].join(' '))
    const ok = (stdout = '') => ({ code: 0, stdout, stderr: '' })
    if (file === 'systemctl') return ok('active\n')
    const [cmd, ...rest] = args
    if (cmd === 'ps') {
      const project = rest.at(-1)?.replace('label=com.docker.compose.project=', '')
      const ids = containers.filter((c) => c.Config.Labels['com.docker.compose.project'] === project)
      return ok(ids.map((c) => `${c.Id}\n`).join(''))
    }
    if (cmd === 'inspect') return ok(JSON.stringify(containers.filter((c) => rest.includes(c.Id))))
    if (cmd === 'start' || cmd === 'restart') {
      const c = containers.find((x) => x.Id === rest[0])
      if (c) c.State = { ...c.State, Status: 'running', Running: true, ...healthy }
      return ok(`${rest[0]}\n`)
    }
    if (cmd === 'exec')
      return ok(
        rest.includes('PING') ? 'PONG\n' : rest.includes('psql') ? '2026-03-01T12:03:00.250001Z\n' : '',
      )
    // Redis's PING: through sh, with the password from data.env (never on the command line).
    if (file === 'sh' && cmd === '-c' && rest[0]?.includes('/srv/conciliaextrato/production/data.env'))
      return ok(
        rest[0].includes('docker exec -e REDISCLI_AUTH "$1" redis-cli --no-auth-warning PING')
          ? 'PONG\n'
          : '',
      )
    return { code: 1, stdout: '', stderr: `unexpected ${cmd}` }
  }
  return { exec, calls }
}

const stopped = () =>
  inspect('api1', 'api', {
    Status: 'exited',
    Running: false,
    ExitCode: 0,
    FinishedAt: '2026-03-01T12:02:41Z',
  })

test('a stopped container is started, counts as failing in that run, and alerts at once', async () => {
  const docker = fakeDocker([stopped()])
  const out = await watchContainers(
    docker.exec,
    ['ce-production-blue'],
    {},
    { now: T0, rules, sleep: async () => {} },
  )
  assert.ok(docker.calls.includes('docker start api1'))
  assert.equal(out.results, [
    { check: 'docker', ok: true, runbook: 'docs/runbooks/health.md', detail: 'answers' },
    {
      check: 'container:ce-production-blue/api',
      ok: false,
      detail: 'exited (0) at 12:02:41 UTC; restarted (1 of 3 in 30 min), running, healthy again after 0 s',
      runbook: 'docs/runbooks/rollback.md',
      threshold: 1,
    },
  ])
  assert.equal(out.restartLog, { 'container:ce-production-blue/api': [T0.toISOString()] })
})

test('with the budget used up it is left alone and the result says it gave up', async () => {
  const docker = fakeDocker([stopped()])
  const used = {
    'container:ce-production-blue/api': [min(-20), min(-10), min(-1)].map((d) => d.toISOString()),
  }
  const out = await watchContainers(docker.exec, ['ce-production-blue'], used, { now: T0, rules })
  assert.not.ok(docker.calls.some((c) => c.startsWith('docker start')))
  assert.is(
    out.results[1]?.detail,
    'exited (0) at 12:02:41 UTC; gave up after 3 restarts in 30 min: left alone',
  )
  assert.is(out.results[1]?.threshold, 1)
})

test('nothing deployed yet: no container is expected, nothing to restart', async () => {
  const docker = fakeDocker([])
  const out = await watchContainers(docker.exec, ['ce-production-data'], {}, { now: T0, rules })
  assert.equal(
    out.results.map((r) => [r.check, r.ok]),
    [['docker', true]],
  )
  assert.equal(docker.calls, ['docker ps -aq --filter label=com.docker.compose.project=ce-production-data'])
})

test('Docker not answering: one failing docker check, and the containers are unknown (not recovered)', async () => {
  const down: Exec = async () => ({ code: 1, stdout: '', stderr: 'Cannot connect to the Docker daemon\n' })
  const out = await watchContainers(down, ['ce-production-data'], {}, { now: T0, rules })
  assert.equal(out.results, [
    {
      check: 'docker',
      ok: false,
      runbook: 'docs/runbooks/health.md',
      detail: 'docker ps failed: Cannot connect to the Docker daemon',
    },
  ])
  assert.is(out.complete, false)
})

test('history lines keep the shape uptime reads: ms only for HTTP', () => {
  const lines = historyLines(
    { host: 'web-1' },
    [
      { check: 'http:app.example.com', ok: true, ms: 12, detail: 'GET /health: 200 in 12 ms', runbook: 'x' },
      { check: 'nginx', ok: true, detail: 'active', runbook: 'x', threshold: 1 },
    ],
    T0,
  )
  assert.is(
    lines,
    '{"at":"2026-03-01T12:03:00.000Z","source":"watchdog","host":"web-1","check":"http:app.example.com","ok":true,"ms":12,"detail":"GET /health: 200 in 12 ms"}\n' +
      '{"at":"2026-03-01T12:03:00.000Z","source":"watchdog","host":"web-1","check":"nginx","ok":true,"detail":"active"}\n',
  )
})

let rx: Receiver
let dir: string
test.before(async () => {
  rx = await startReceiver()
  dir = mkdtempSync(join(tmpdir(), 'ce-watchdog-'))
})
test.after(async () => {
  await rx.close()
  rmSync(dir, { recursive: true, force: true })
  clearSecrets()
})

test('three runs: a stopped container restarted and one alert; one recovery; then nothing; no URL anywhere', async () => {
  const url = `${rx.url}/hooks/T0/B0/s3cret-token`
  const cfg: WatchdogFile = {
    ...watchdogFile({ ...env, notify: [env.notify[0]] } as Env, 'web-1', { TEAM_SLACK_URL: url }),
    // No upstreams file (no live colour, no HTTP checks): the data project is all there is to watch.
    upstreamsFile: join(dir, 'absent-upstreams.conf'),
    lockDir: join(dir, 'deploy.lock'),
    maintenanceFile: join(dir, 'maintenance'),
    stateDir: join(dir, 'state'),
    historyFile: join(dir, 'health', 'production.jsonl'),
    diskMinFreePct: 1,
    memMinFreePct: 1,
  }
  const data = 'ce-production-data'
  const redis = inspect(
    'r1',
    'redis',
    { Status: 'exited', Running: false, FinishedAt: '2026-03-01T12:02:41Z' },
    data,
  )
  const docker = fakeDocker([inspect('pg', 'postgres', {}, data), redis])
  let printed = ''
  setSinks((t) => {
    printed += t
  })
  const texts = async (now: Date) => {
    rx.received.length = 0
    await runWatchdog(cfg, { exec: docker.exec, now, settleS: 0 })
    return rx.received.map((r) => (JSON.parse(r.body) as { text: string }).text)
  }
  try {
    const first = await texts(min(0))
    assert.is(first.length, 1, printed)
    assert.match(first[0] ?? '', 'ALERT production: container ce-production-data/redis down since 12:03 UTC')
    assert.ok(docker.calls.includes('docker start r1'))
    const second = await texts(min(1))
    assert.is(second.length, 1, printed)
    assert.match(
      second[0] ?? '',
      'RECOVERED production: container ce-production-data/redis ok again after 1 min',
    )
    assert.equal(await texts(min(2)), [])
  } finally {
    setSinks(
      (t) => process.stdout.write(t),
      (t) => process.stderr.write(t),
    )
  }
  const history = readFileSync(cfg.historyFile, 'utf8').trim().split('\n')
  const first = history
    .map((l) => JSON.parse(l) as { check: string; ok: boolean; at: string })
    .filter((c) => c.at === min(0).toISOString() && !c.check.startsWith('disk:'))
  assert.equal(
    first.map((c) => `${c.check} ${c.ok}`),
    [
      'deploy-lock true',
      'docker true',
      'container:ce-production-data/postgres true',
      'container:ce-production-data/redis false',
      'nginx true',
      'postgres true',
      'redis true',
      'memory true',
    ],
  )
  const state = readFileSync(join(cfg.stateDir, 'alerts.json'), 'utf8')
  for (const text of [printed, history.join('\n'), state]) assert.not.match(text, 's3cret-token')
  assert.match(printed, 'notified team')
})

test('postgres-writes: each run writes a point-in-time canary row into the app database; a refused write fails the check', async () => {
  const cfg: WatchdogFile = {
    ...watchdogFile({ ...env, notify: [] } as Env, 'web-1', {}, { user: 'conciliaextrato', db: 'ce' }),
    upstreamsFile: join(dir, 'absent-upstreams.conf'),
    lockDir: join(dir, 'deploy.lock'),
    maintenanceFile: join(dir, 'maintenance'),
    stateDir: join(dir, 'state-canary'),
    historyFile: join(dir, 'health', 'canary.jsonl'),
    diskMinFreePct: 1,
    memMinFreePct: 1,
  }
  const data = 'ce-production-data'
  const docker = fakeDocker([inspect('pg', 'postgres', {}, data), inspect('r1', 'redis', {}, data)])
  await runWatchdog(cfg, { exec: docker.exec, now: min(0), settleS: 0 })
  const write = docker.calls.find((c) => c.includes(' psql '))
  assert.ok(write, docker.calls.join('\n'))
  assert.match(write ?? '', 'docker exec pg psql -XAtq -v ON_ERROR_STOP=1 -U conciliaextrato -d ce -c ')
  assert.match(write ?? '', "INSERT INTO ce_pitr_canary (writer) VALUES ('watchdog') RETURNING")
  const checks = readFileSync(cfg.historyFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { check: string; ok: boolean; detail: string })
  const pgAt = checks.findIndex((c) => c.check === 'postgres')
  assert.equal(checks[pgAt + 1], {
    ...checks[pgAt + 1],
    check: 'postgres-writes',
    ok: true,
    detail: 'canary row written at 2026-03-01T12:03:00.250001Z',
  })
  // A server that answers pg_isready but refuses writes (a full disk): the check fails, saying why.
  const full: Exec = async () => ({
    code: 1,
    stdout: '',
    stderr: 'ERROR:  could not extend file "base/16384/16390": No space left on device\nHINT: x',
  })
  assert.equal(await canaryCheck(full, 'pg', { user: 'u', db: 'd' }), {
    check: 'postgres-writes',
    ok: false,
    detail: 'psql: exit 1 ERROR:  could not extend file "base/16384/16390": No space left on device',
    runbook: 'docs/runbooks/health.md',
  })
  // Exit 0 with no time printed is not a write either.
  const odd: Exec = async () => ({ code: 0, stdout: '\n', stderr: '' })
  assert.is((await canaryCheck(odd, 'pg', { user: 'u', db: 'd' })).ok, false)
  // Configs written before the canary (no postgres) write nothing.
  const old = fakeDocker([inspect('pg', 'postgres', {}, data)])
  await runWatchdog({ ...cfg, postgres: undefined } as WatchdogFile, {
    exec: old.exec,
    now: min(1),
    settleS: 0,
  })
  assert.not.ok(
    old.calls.some((c) => c.includes(' psql ')),
    old.calls.join('\n'),
  )
})

test('the deploy lock and the maintenance flag: who holds it, stale after 90 s, flags expire (4 h by default)', () => {
  const owner = 'who=ana\nrunbook=restore\nstarted_at=2026-03-01T12:00:00Z\ntoken=tok-SECRET-1\n'
  const held = pauseVerdict('production', { owner, heartbeatMs: min(0).getTime() - 30_000 }, undefined, T0)
  assert.is(held.pausedBy, 'restore by ana since 2026-03-01T12:00:00Z holds the deploy lock')
  assert.equal(
    held.results.map((r) => [r.check, r.ok]),
    [['deploy-lock', true]],
  )
  assert.not.match(JSON.stringify(held), 'tok-SECRET-1')
  const stale = pauseVerdict('production', { owner, heartbeatMs: min(-5).getTime() }, undefined, T0)
  assert.is(stale.pausedBy, undefined)
  assert.is(stale.results[0]?.ok, false)
  assert.match(
    stale.results[0]?.detail ?? '',
    'heartbeat 300 s old; deploys are blocked. If no run is going: make unlock ENV=production',
  )
  assert.equal(pauseVerdict('production', undefined, undefined, T0), {
    results: [{ check: 'deploy-lock', ok: true, detail: 'free', runbook: 'docs/runbooks/deploy.md' }],
  })
  const flag = (text: string, at: Date) => pauseVerdict('p', undefined, { text, mtimeMs: at.getTime() }, T0)
  assert.is(
    flag('by=bia\nreason=disk swap\n', min(-60)).pausedBy,
    'maintenance by bia (disk swap) until 2026-03-01T15:03:00.000Z',
  )
  const expired = flag('', min(-241))
  assert.is(expired.pausedBy, undefined)
  assert.equal(expired.results[1]?.ok, false)
  assert.match(expired.results[1]?.detail ?? '', 'expired at 2026-03-01T12:02:00.000Z')
  assert.is(
    flag('until=2026-03-01T12:30:00Z', min(-600)).pausedBy,
    'maintenance until 2026-03-01T12:30:00.000Z',
  )
  assert.is(flag('until=2026-03-01T12:00:00Z', min(-1)).pausedBy, undefined)
  assert.is(flag('until=soon', min(-1)).results[1]?.ok, false)
})

test('while a runbook holds the lock the watchdog neither judges nor restarts containers, and keeps their alert state', async () => {
  const cfg: WatchdogFile = {
    ...watchdogFile({ ...env, notify: [] } as Env, 'web-1', {}),
    upstreamsFile: join(dir, 'absent-upstreams.conf'),
    lockDir: join(dir, 'paused', 'deploy.lock'),
    maintenanceFile: join(dir, 'paused', 'maintenance'),
    stateDir: join(dir, 'paused', 'state'),
    historyFile: join(dir, 'paused', 'history.jsonl'),
    diskMinFreePct: 1,
    memMinFreePct: 1,
  }
  const data = 'ce-production-data'
  const down = inspect(
    'r2',
    'redis',
    { Status: 'exited', Running: false, FinishedAt: '2026-03-01T12:02:41Z' },
    data,
  )
  const docker = fakeDocker([inspect('pg', 'postgres', {}, data), down])
  const run = async (now: Date) => {
    await runWatchdog(cfg, { exec: docker.exec, now, settleS: 0 })
    const lines = readFileSync(cfg.historyFile, 'utf8').trim().split('\n')
    return lines
      .map((l) => JSON.parse(l) as { check: string; ok: boolean; at: string; detail: string })
      .filter((l) => l.at === now.toISOString())
  }
  setSinks(() => {})
  try {
    // A restore holds the lock (heartbeat 10 s old): redis stays stopped, no container is looked at.
    mkdirSync(cfg.lockDir, { recursive: true })
    writeFileSync(join(cfg.lockDir, 'owner'), 'who=ana\nrunbook=restore\ntoken=t\n')
    writeFileSync(join(cfg.lockDir, 'heartbeat'), '')
    const beat = (at: Date) => utimesSync(join(cfg.lockDir, 'heartbeat'), at, at)
    beat(new Date(min(0).getTime() - 10_000))
    const paused = await run(min(0))
    assert.not.ok(docker.calls.some((c) => c.startsWith('docker start') || c.startsWith('docker ps')))
    assert.equal(
      paused.filter((l) => l.check.startsWith('container:')),
      [],
    )
    assert.match(paused[0]?.detail ?? '', 'held: restore by ana')
    // The maintenance flag does the same once the lock is gone.
    rmSync(cfg.lockDir, { recursive: true })
    writeFileSync(cfg.maintenanceFile, 'until=2026-03-01T13:00:00Z\nreason=disk swap\n')
    await run(min(1))
    assert.not.ok(docker.calls.some((c) => c.startsWith('docker start')))
    // Flag removed: the next run restarts redis, within its budget.
    rmSync(cfg.maintenanceFile)
    const after = await run(min(2))
    assert.ok(docker.calls.includes('docker start r2'))
    assert.match(
      after.find((l) => l.check === 'container:ce-production-data/redis')?.detail ?? '',
      'restarted (1 of 3',
    )
  } finally {
    setSinks(
      (t) => process.stdout.write(t),
      (t) => process.stderr.write(t),
    )
  }
})

test('the bundle is one ES module with no runbook-machine code, and the same bytes every time', async () => {
  const code = await buildWatchdogBundle()
  assert.is(await buildWatchdogBundle(), code)
  assert.ok(code.startsWith('// Built by setup-server from lib/watchdog/main.ts'))
  for (const absent of ['import.meta.dirname', 'node-ssh', 'ssh2', '/work/', process.cwd()])
    assert.not.ok(code.includes(absent), absent)
  // No module paths (they depend on where the checkout is); the code itself is all there.
  assert.not.match(code, /^\/\/ .*\.(?:ts|js)$/m)
  assert.match(code, 'function slackPayload(')
  // It loads and runs under plain node (its CommonJS dependencies, nodemailer, get Node's built-ins):
  // without a config it says what to do and exits 2.
  const file = join(mkdtempSync(join(tmpdir(), 'ce-watchdog-')), 'watchdog.mjs')
  writeFileSync(file, code)
  const run = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000 })
  assert.match(run.stderr, 'watchdog: cannot read its config', run.stderr)
  assert.is(run.status, 2, run.stderr)
})

test('the same bundle from another checkout path (its lib and node_modules symlinks), so a re-run changes nothing', async () => {
  const other = mkdtempSync(join(tmpdir(), 'ce-checkout-'))
  for (const entry of ['lib', 'node_modules', 'package.json'])
    symlinkSync(resolve(import.meta.dirname, '..', '..', entry), join(other, entry))
  assert.is(await buildWatchdogBundle(other), await buildWatchdogBundle())
  assert.is(
    withoutModulePaths(
      'a\n// ../../work/main/node_modules/p-retry/index.js\n// lib/notify/send.ts\n// a comment.\nb\n',
    ),
    'a\n// a comment.\nb\n',
  )
  assert.is(
    withoutModulePaths('  "../../work/main/node_modules/nodemailer/lib/shared/url.js"(exports, module) {\n'),
    '  "node_modules/nodemailer/lib/shared/url.js"(exports, module) {\n',
  )
})

test('instant-rollback window: the previous colour runs until its until=, then is stopped once; never the live one, never while paused', async () => {
  const { idleVerdict, parseIdleColour, stopProjectContainers } = await import(
    '../../lib/watchdog/idle-colour.ts'
  )
  const { idleColourText } = await import('../../lib/commands/flag-file.ts')
  const seen = parseIdleColour(idleColourText('blue', 'v1', min(30)))
  assert.equal(seen, { colour: 'blue', release: 'v1', untilMs: min(30).getTime() })
  assert.is(idleVerdict(seen, true, 'green', min(10)).kind, 'keep')
  assert.is(idleVerdict(seen, true, 'green', min(31)).kind, 'stop')
  // A rollback into the window made blue live again: nothing to stop, the file goes.
  assert.is(idleVerdict(seen, true, 'blue', min(31)).kind, 'forget')
  assert.is(idleVerdict(parseIdleColour('colour=purple\nuntil=x'), true, 'green', min(31)).kind, 'forget')
  assert.is(idleVerdict(undefined, false, 'green', min(31)).kind, 'none')
  const docker = fakeDocker([
    inspect('b1', 'api', {}, 'ce-production-blue'),
    inspect('b2', 'site', {}, 'ce-production-blue'),
  ])
  const calls: string[] = []
  const exec: Exec = async (file, args, t) => {
    calls.push([file, ...args].join(' '))
    return args[0] === 'stop' ? { code: 0, stdout: '', stderr: '' } : docker.exec(file, args, t)
  }
  const out = await stopProjectContainers(exec, 'ce-production-blue')
  assert.ok(out.ok, out.detail)
  assert.ok(calls.includes('docker stop -t 10 b1 b2'), calls.join('\n'))

  // Through a whole watchdog run: stopped and the file removed once past, kept while a runbook holds the lock.
  const cfg: WatchdogFile = {
    ...watchdogFile({ ...env, notify: [] } as Env, 'web-1', {}),
    upstreamsFile: join(dir, 'idle', 'upstreams.conf'),
    lockDir: join(dir, 'idle', 'deploy.lock'),
    maintenanceFile: join(dir, 'idle', 'maintenance'),
    idleColourFile: join(dir, 'idle', 'idle-colour'),
    stateDir: join(dir, 'idle', 'state'),
    historyFile: join(dir, 'idle', 'history.jsonl'),
    diskMinFreePct: 1,
    memMinFreePct: 1,
  }
  mkdirSync(join(dir, 'idle'), { recursive: true })
  writeFileSync(cfg.upstreamsFile, renderUpstreams('production', 'green'))
  writeFileSync(cfg.idleColourFile as string, idleColourText('blue', 'v1', min(30)))
  setSinks(() => {})
  try {
    calls.length = 0
    mkdirSync(cfg.lockDir, { recursive: true })
    writeFileSync(join(cfg.lockDir, 'owner'), 'who=ana\nrunbook=deploy\ntoken=t\n')
    writeFileSync(join(cfg.lockDir, 'heartbeat'), '')
    utimesSync(join(cfg.lockDir, 'heartbeat'), min(31), min(31))
    await runWatchdog(cfg, { exec, now: min(31), settleS: 0 })
    assert.not.ok(
      calls.some((c) => c.startsWith('docker stop')),
      'paused: nothing stopped',
    )
    rmSync(cfg.lockDir, { recursive: true })
    await runWatchdog(cfg, { exec, now: min(31), settleS: 0 })
    assert.ok(calls.includes('docker stop -t 10 b1 b2'), calls.join('\n'))
    assert.not.ok(readFileSync(cfg.historyFile, 'utf8').includes('"ok":false,"detail":"docker stop'))
    assert.throws(() => readFileSync(cfg.idleColourFile as string), /ENOENT/)
  } finally {
    setSinks(
      (t) => process.stdout.write(t),
      (t) => process.stderr.write(t),
    )
  }
})

test.run()

import * as assert from 'uvu/assert'
import { allHealthy, runsExactly } from '../../lib/commands/compose.ts'
import { composeVersionScript, hostFactsScript, parseHostFacts } from '../../lib/commands/facts.ts'
import { appendLineFromStdin, writeFileFromStdin } from '../../lib/commands/files.ts'
import { argv, cancelMarked, inBackground, quote, withTimeout } from '../../lib/commands/shell.ts'
import { remotePaths } from '../../lib/env/host-paths.ts'
import type { Env } from '../../lib/env/load.ts'
import { windowSummary } from '../../runbooks/status.ts'
import { suite } from '../harness.ts'

const test = suite('command builders')

test('quote leaves safe words alone and single-quotes the rest', () => {
  assert.is(quote('/srv/conciliaextrato/qa'), '/srv/conciliaextrato/qa')
  assert.is(quote(''), "''")
  assert.is(quote('a b'), "'a b'")
  assert.is(quote("it's $HOME"), `'it'\\''s $HOME'`)
  assert.is(argv('docker', 'exec', 'pg', 'psql', '-c', 'select 1'), "docker exec pg psql -c 'select 1'")
})

test('withTimeout makes the host enforce the limit, with pipefail', () => {
  assert.is(withTimeout('sleep 5 | cat', 30), "timeout --kill-after=5 30 bash -o pipefail -c 'sleep 5 | cat'")
  // A run's marker ends the line: what cancelMarked finds on the host.
  assert.is(
    withTimeout('sleep 5', 30, 'ce-run-0a1b'),
    "timeout --kill-after=5 30 bash -o pipefail -c 'sleep 5' ce-run-0a1b",
  )
  assert.is(cancelMarked('ce-run-0a1b'), "pkill -TERM -f -- '^timeout .* [c]e-run-0a1b$'; true")
  assert.throws(() => cancelMarked("x'; rm -rf /"), /unsafe marker/)
})

test('writeFileFromStdin writes atomically with an explicit mode and owner', () => {
  assert.is(
    writeFileFromStdin('/srv/ce/qa/.env', '0600', 'deploy:deploy'),
    'set -e; umask 077; mkdir -p /srv/ce/qa; tmp=$(mktemp /srv/ce/qa/.env.XXXXXX); cat > "$tmp"; chmod 0600 "$tmp"; chown deploy:deploy "$tmp"; mv -f "$tmp" /srv/ce/qa/.env',
  )
  assert.is(
    writeFileFromStdin('/etc/x.conf', '0644'),
    'set -e; umask 077; mkdir -p /etc; tmp=$(mktemp /etc/x.conf.XXXXXX); cat > "$tmp"; chmod 0644 "$tmp"; mv -f "$tmp" /etc/x.conf',
  )
})

test('appendLineFromStdin creates the log with a fixed mode and appends', () => {
  assert.is(
    appendLineFromStdin('/var/log/conciliaextrato/audit.log'),
    'set -e; mkdir -p /var/log/conciliaextrato; touch /var/log/conciliaextrato/audit.log; chmod 0640 /var/log/conciliaextrato/audit.log; cat >> /var/log/conciliaextrato/audit.log',
  )
})

test('a command in the background outlives the SSH session, after a delay, unless the lock was taken', () => {
  assert.is(
    inBackground("docker compose -p 'ce-x-blue' stop", 2, '/srv/conciliaextrato/x/deploy.lock'),
    "setsid sh -c 'sleep 2; [ -e /srv/conciliaextrato/x/deploy.lock ] || { docker compose -p '\\''ce-x-blue'\\'' stop; }' </dev/null >/dev/null 2>&1 &",
  )
})

test('a colour runs exactly a release: one container per service, each with its image', () => {
  const images = { site: 'r/site:v1', saas: 'r/saas:v1', api: 'r/api:v1' }
  assert.ok(runsExactly('site r/site:v1\nsaas r/saas:v1\napi r/api:v1\n', images))
  assert.not.ok(runsExactly('site r/site:v1\nsaas r/saas:v1\n', images), 'api not running')
  assert.not.ok(runsExactly('site r/site:v1\nsaas r/saas:v1\napi r/api:v2\n', images), 'another release')
  assert.not.ok(runsExactly('', images))
  // With state and health (projectRunningImages prints them): healthy only when every one is.
  const up = 'site r/site:v1 running healthy\nsaas r/saas:v1 running none\napi r/api:v1 running healthy\n'
  assert.ok(runsExactly(up, images))
  assert.ok(allHealthy(up))
  assert.not.ok(allHealthy(up.replace('api r/api:v1 running healthy', 'api r/api:v1 running starting')))
  assert.not.ok(allHealthy(up.replace('saas r/saas:v1 running none', 'saas r/saas:v1 restarting none')))
  assert.not.ok(allHealthy(''))
})

test('remote paths are per environment', () => {
  const paths = remotePaths({ name: 'staging' } as Env)
  assert.equal(paths, {
    base: '/srv/conciliaextrato/staging',
    releases: '/srv/conciliaextrato/staging/releases.jsonl',
    dataEnv: '/srv/conciliaextrato/staging/data.env',
    currentRelease: '/srv/conciliaextrato/staging/current-release',
    lock: '/srv/conciliaextrato/staging/deploy.lock',
    maintenance: '/srv/conciliaextrato/staging/maintenance',
    idleColour: '/srv/conciliaextrato/staging/idle-colour',
    logs: '/var/log/conciliaextrato',
    audit: '/var/log/conciliaextrato/audit.log',
  })
})

test('host facts script reads each fact from its paths', () => {
  const script = hostFactsScript({ name: 'qa' }, 3)
  assert.match(
    script,
    'echo "release=$(cat /srv/conciliaextrato/qa/current-release 2>/dev/null || echo none)"',
  )
  assert.match(script, 'if [ -d /srv/conciliaextrato/qa/deploy.lock ]; then')
  assert.match(script, 'tail -n 3 /var/log/conciliaextrato/audit.log')
  assert.match(script, composeVersionScript())
  assert.match(
    script,
    "sed -n 's/^# Managed by deploy: live colour //p' /etc/nginx/conciliaextrato/qa-upstreams.conf",
  )
  assert.match(script, "sed 's/^/idle:/' /srv/conciliaextrato/qa/idle-colour 2>/dev/null || true")
  assert.match(script, '/etc/nginx/conciliaextrato/maintenance/qa/api')
})

test('compose detection prefers the v2 plugin, then v1', () => {
  assert.is(
    composeVersionScript(),
    [
      'if docker compose version --short >/dev/null 2>&1; then echo "compose=v2 $(docker compose version --short)"',
      'elif command -v docker-compose >/dev/null 2>&1; then echo "compose=v1 $(docker-compose version --short 2>/dev/null)"',
      'else echo compose=none; fi',
    ].join('\n'),
  )
})

test('parseHostFacts reads key=value lines, keeps every audit line, tolerates junk', () => {
  const facts = parseHostFacts(
    'os=Debian GNU/Linux 12 (bookworm)\nkernel=6.1\nuptime_s=3600.5\ndisk_used_kb=1024\ndisk_avail_kb=2048\n' +
      'mem_total_kb=4096\nmem_avail_kb=1000\ndocker=none\ncompose=v2 2.24.6\nrelease=abc123\nlock=none\n' +
      'audit={"a":1}\naudit={"b":"x=y"}\nwarning: something odd\n',
  )
  assert.is(facts.os, 'Debian GNU/Linux 12 (bookworm)')
  assert.is(facts.uptimeS, 3600.5)
  assert.is(facts.diskAvailKb, 2048)
  assert.is(facts.compose, 'v2 2.24.6')
  assert.is(facts.release, 'abc123')
  assert.equal(facts.audit, ['{"a":1}', '{"b":"x=y"}'])
  assert.is(facts.live, 'unknown')
  assert.is(facts.idle, undefined)
  assert.equal(facts.maintenance, [])
  assert.ok(Number.isNaN(parseHostFacts('').memTotalKb))
  assert.is(parseHostFacts('').docker, 'unknown')
})

test('parseHostFacts reads the live colour, the rollback window and the services in maintenance', () => {
  const facts = parseHostFacts(
    [
      'live=green',
      'idle:colour=blue',
      'idle:release=v1',
      'idle:until=2026-12-05T13:30:00.000Z',
      'maintenance:api\tuntil=2026-12-05T14:00:00.000Z\tby=ana\treason=disk resize\trunbook=maintenance\t',
      'audit={"a":1}',
    ].join('\n'),
  )
  assert.is(facts.live, 'green')
  assert.equal(facts.idle, { colour: 'blue', release: 'v1', untilMs: Date.parse('2026-12-05T13:30:00.000Z') })
  assert.equal(facts.maintenance, ['api until 2026-12-05T14:00:00.000Z, by ana (maintenance): disk resize'])
  assert.equal(facts.audit, ['{"a":1}'])
  assert.is(facts.lock, 'free')
})

test('status says the rollback window: what a rollback would switch to, until when, or that there is none', () => {
  const until = Date.parse('2026-12-05T13:30:00.000Z')
  assert.is(
    windowSummary({ colour: 'blue', release: 'v1', untilMs: until }, until - 12 * 60_000),
    'blue (v1) kept running until 2026-12-05T13:30:00Z (12 min left): make rollback is an nginx switch',
  )
  assert.is(
    windowSummary({ colour: 'blue', untilMs: until }, until + 1000),
    'blue past its end 2026-12-05T13:30:00Z: the watchdog stops it; a rollback starts it anew',
  )
  assert.is(windowSummary(undefined, until), 'none (a rollback starts the previous release anew)')
})

test.run()

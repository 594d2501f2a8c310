import * as assert from 'uvu/assert'
import {
  logsCommand,
  mergeByTime,
  parseLogLine,
  parseServices,
  parseSince,
  timeKey,
} from '../../lib/commands/logs.ts'
import { InputError } from '../../lib/report/errors.ts'
import { suite } from '../harness.ts'
import { withFakeDocker } from '../support/fake-docker.ts'

// make logs: what it accepts, and its host script run by bash against a stand-in for the docker CLI.
const test = suite('logs: request, host script, merge')

test('SERVICE: all by default, a list checked and de-duplicated, an unknown name refused naming it', () => {
  assert.equal(parseServices(undefined), ['site', 'saas', 'api', 'postgres', 'redis'])
  assert.equal(parseServices('api, postgres,api'), ['api', 'postgres'])
  assert.throws(
    () => parseServices('api,nginx'),
    (e: Error) => e instanceof InputError && /SERVICE=api,nginx: unknown service nginx/.test(e.message),
  )
  assert.throws(() => parseServices(','), /no service named/)
})

test('SINCE: durations (days as hours for docker), RFC 3339 times; anything else refused', () => {
  assert.is(parseSince(undefined), '10m')
  assert.is(parseSince('30s'), '30s')
  assert.is(parseSince('2h'), '2h')
  assert.is(parseSince('1d'), '24h')
  assert.is(parseSince('2026-12-04T03:00:00Z'), '2026-12-04T03:00:00Z')
  assert.throws(
    () => parseSince('yesterday'),
    (e: Error) => e instanceof InputError && /SINCE=yesterday/.test(e.message),
  )
  assert.throws(
    () => parseSince('10m; rm -rf /'),
    (e: Error) => e instanceof InputError,
  )
})

// A stand-in for `docker`: two compose projects of env x (blue, data), one swarm task, one container
// of another env; `docker logs` prints two lines per container on stdout and stderr.
const docker = withFakeDocker(`#!/bin/bash
case "$1" in
  ps) case "$*" in
        *project=ce-x-blue*) echo c-api-blue; echo c-site-blue ;;
        *project=ce-x-data*) echo c-postgres-data ;;
        *namespace=ce-x*) echo c-api-swarm ;;
        *project=ce-other-blue*) echo c-other ;;
      esac ;;
  inspect) id="\${@: -1}"; case "$id" in
        c-api-swarm) echo ce-x_api ;;
        *) s=\${id#c-}; echo \${s%-*} ;;
      esac ;;
  logs) id="\${@: -1}"
        echo "2026-12-04T03:00:0\${#id}.000000001Z out of $id"
        echo "2026-12-04T03:00:0\${#id}.5Z err of $id with 'quote' and \\$HOME" >&2 ;;
esac
`)
/** The script's stdout; it must exit 0. */
const runScript = (script: string) => {
  const r = docker(script)
  assert.is(r.code, 0, r.out)
  return r.out
}

test('the host script: every container of the env (stopped, data, swarm), marked service/colour; SERVICE filters', () => {
  const out = runScript(
    logsCommand({
      env: 'x',
      services: ['site', 'saas', 'api', 'postgres', 'redis'],
      since: '10m',
      follow: false,
    }),
  )
  const lines = out.trim().split('\n').sort()
  assert.is(lines.length, 8, out)
  for (const [tag, id] of [
    ['api/blue', 'c-api-blue'],
    ['site/blue', 'c-site-blue'],
    ['postgres/data', 'c-postgres-data'],
    ['api/swarm', 'c-api-swarm'],
  ]) {
    assert.ok(
      lines.some((l) => l.startsWith(`${tag} `) && l.endsWith(`out of ${id}`)),
      `${tag}: ${out}`,
    )
    assert.ok(
      lines.some((l) => l.startsWith(`${tag} `) && l.includes(`err of ${id} with 'quote' and $HOME`)),
      `${tag} stderr: ${out}`,
    )
  }
  assert.not.match(out, 'c-other')
  const only = runScript(logsCommand({ env: 'x', services: ['postgres'], since: '10m', follow: false }))
  assert.equal(
    [
      ...new Set(
        only
          .trim()
          .split('\n')
          .map((l) => l.split(' ')[0]),
      ),
    ],
    ['postgres/data'],
  )
})

test('GREP and SINCE reach the host quoted: a pattern with shell characters is a pattern', () => {
  const out = runScript(
    logsCommand({
      env: 'x',
      services: ['api'],
      since: '24h',
      grep: "err.*'quote' and \\$HOME$",
      follow: false,
    }),
  )
  const lines = out.trim().split('\n').sort()
  assert.equal(
    lines.map((l) => l.split(' ')[0]),
    ['api/blue', 'api/swarm'],
    out,
  )
  assert.ok(
    lines.every((l) => l.includes('err of')),
    out,
  )
  const cmd = logsCommand({
    env: 'x',
    services: ['api'],
    since: '24h',
    grep: 'a$(touch /tmp/pwned)',
    follow: true,
  })
  assert.match(cmd, "grep --line-buffered -E -e 'a$(touch /tmp/pwned)'")
  assert.match(cmd, '--timestamps --since 24h --follow')
  // Following: the readers run until this side's stdin ends, then the whole group is stopped.
  assert.match(cmd, /cat >\/dev\/null; kill 0$/)
})

test('lines parsed and merged across hosts in time order (fractions of any length)', () => {
  assert.equal(parseLogLine('api/green 2026-12-04T03:00:01.5Z hello world'), {
    tag: 'api/green',
    ts: '2026-12-04T03:00:01.5Z',
    text: 'hello world',
  })
  assert.equal(parseLogLine('Error response from daemon: x'), {
    tag: '-',
    ts: '',
    text: 'Error response from daemon: x',
  })
  assert.ok(timeKey('2026-12-04T03:00:01.12Z') < timeKey('2026-12-04T03:00:01.125Z'))
  assert.ok(timeKey('2026-12-04T04:00:00+01:00') < timeKey('2026-12-04T03:00:00.5Z'))
  const merged = mergeByTime([
    {
      host: 'web-1',
      lines: [
        parseLogLine('api/blue 2026-12-04T03:00:02Z b'),
        parseLogLine('api/blue 2026-12-04T03:00:03Z d'),
      ],
    },
    {
      host: 'web-2',
      lines: [
        parseLogLine('api/blue 2026-12-04T03:00:01.9Z a'),
        parseLogLine('api/blue 2026-12-04T03:00:02.5Z c'),
      ],
    },
  ])
  assert.equal(
    merged.map((l) => `${l.host} ${l.text}`),
    ['web-2 a', 'web-1 b', 'web-2 c', 'web-1 d'],
  )
})

test.run()

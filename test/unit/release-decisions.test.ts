import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { deliverTo, releaseProblems } from '../../lib/deploy/prepare.ts'
import { setState, state } from '../../lib/deploy/state.ts'
import { colourRelease } from '../../lib/deploy/strategy.ts'
import { cleanupOnFailure, recordLive } from '../../lib/deploy/switch.ts'
import { loadEnv } from '../../lib/env/load.ts'
import { chooseTarget } from '../../lib/release/target.ts'
import { CommandError, InputError, PreconditionError } from '../../lib/report/errors.ts'
import type { Context } from '../../lib/run/runbook.ts'
import { liveRelease } from '../../lib/stack/releases.ts'
import { swarmRelease } from '../../lib/swarm/strategy.ts'
import { suite } from '../harness.ts'
import { ScriptedHost } from '../support/scripted-host.ts'
import { ciEnvYaml } from './ci-env.ts'

// What deploy and rollback decide, without Docker: the host's answers come from a script.
const dir = mkdtempSync(join(tmpdir(), 'ce-decisions-'))
const notPem = join(dir, 'not-a-ca.pem')
writeFileSync(notPem, 'hello\n')
writeFileSync(
  join(dir, 'ci.yaml'),
  ciEnvYaml(
    ['POSTGRES_PASSWORD', 'CLOUDFLARE_API_TOKEN'],
    `edge: { zone: example.com, origin_pulls: on, origin_pull_ca: ${notPem} }`,
  ),
)
const env = loadEnv('ci', dir)

const record = (id: string, outcome: string) =>
  JSON.stringify({
    id,
    colour: 'blue',
    images: {},
    digests: {},
    who: 't',
    at: '',
    duration_s: 1,
    outcome,
    action: 'deploy',
  })
const history = [record('v1', 'live'), record('v2', 'live'), record('v3', 'failed')].join('\n')
const ctxWith = (args: Record<string, string> = {}) =>
  ({
    env: { ...env, images: { ...env.images, delivery: 'registry' } },
    args,
    release: null,
    secrets: {},
    hosts: [],
    onCleanup: () => {},
  }) as unknown as Context
const hostWith = (releases: string) => new ScriptedHost('qa-1', [['releases.jsonl', { stdout: releases }]])

const test = suite('release decisions: rollback target, preconditions (scripted host)')

test('rollback goes to the newest live release before the current one, read from the host', async () => {
  const ctx = ctxWith()
  const host = hostWith(history)
  assert.is(await chooseTarget(ctx, host), 'v1')
  assert.is(ctx.release, 'v1')
  assert.match(host.commands[0] ?? '', `/srv/conciliaextrato/ci/releases.jsonl`)
})

test('TO= a release that never went live, the live one, or no history: refused, naming what can be chosen', async () => {
  const refused = async (ctx: Context, releases: string): Promise<string> => {
    try {
      await chooseTarget(ctx, hostWith(releases))
    } catch (e) {
      assert.instance(e, InputError)
      return (e as Error).message
    }
    return assert.unreachable('chose a target') as never
  }
  assert.match(await refused(ctxWith({ to: 'v3' }), history), 'v3 never went live here')
  assert.match(await refused(ctxWith({ to: 'v3' }), history), 'live releases: v1, v2')
  assert.match(await refused(ctxWith({ to: 'v2' }), history), 'v2 is already live')
  assert.match(await refused(ctxWith(), record('v1', 'live')), 'no previous good release')
})

test('a release is refused before anything changes: missing data password, an origin-pull CA that is no PEM', async () => {
  const problems = await releaseProblems(ctxWith(), {}).catch((e: Error) => [e.message])
  assert.ok(
    problems.some((p) => p.includes('secret POSTGRES_PASSWORD is not declared')),
    problems.join('\n'),
  )
  assert.ok(
    problems.some((p) => p.includes(`edge.origin_pull_ca: ${notPem} is not a PEM certificate`)),
    problems.join('\n'),
  )
})

test('a swarm release checks the same list (its collector had drifted: no origin-pull CA check)', async () => {
  const roles = { 'app-1': ['manager', 'web'], 'db-1': ['data'] }
  const hosts = Object.entries(roles).map(([name, r]) => new ScriptedHost(name, [], { roles: r }))
  const ctx = {
    ...ctxWith(),
    env: { ...ctxWith().env, swarm: {}, hosts: hosts.map((h) => h.host) },
    hosts,
  } as unknown as Context
  try {
    await swarmRelease.preconditions(ctx, 'v9', 'deploy')
    assert.unreachable('the preconditions passed')
  } catch (e) {
    assert.instance(e, PreconditionError)
    assert.match((e as Error).message, `edge.origin_pull_ca: ${notPem} is not a PEM certificate`)
    assert.match((e as Error).message, 'secret POSTGRES_PASSWORD is not declared')
  }
})

test("deploy starts the colour that is not live (a first deploy: blue), with the release's images", async () => {
  const noEdge = { ...env, edge: undefined, images: { ...env.images, delivery: 'registry' as const } }
  for (const [live, target] of [
    ['blue', 'green'],
    ['green', 'blue'],
    ['', 'blue'],
  ] as const) {
    const host = new ScriptedHost('qa-1', [
      ['docker compose version', { stdout: 'v2\n' }],
      ['df -Pk', { stdout: '99999999\n' }],
      ['releases.jsonl', { stdout: history }],
      ['live colour', { stdout: `${live}\n` }],
    ])
    const ctx = {
      ...ctxWith(),
      env: noEdge,
      secrets: { POSTGRES_PASSWORD: 'p', REDIS_PASSWORD: 'r' },
      hosts: [host],
    } as unknown as Context
    await colourRelease.preconditions(ctx, 'v9', 'deploy')
    const s = state(ctx)
    assert.is(s.live, live || null)
    assert.is(s.target, target)
    assert.equal(s.images.api, 'o/api:v9')
    assert.is(liveRelease(s.history)?.id, 'v2')
  }
})

test('a deploy that fails after the switch puts traffic back on the old colour, stops the new one, records it failed', async () => {
  const noEdge = { ...env, edge: undefined }
  const host = new ScriptedHost('qa-1', [
    // nginx answers from blue again once the upstreams point there (each domain's last answer)
    [
      'x-served-by-colour',
      {
        stdout: Object.values(env.domains)
          .map((d) => `${d} 200 blue \n`)
          .join(''),
      },
    ],
  ])
  const ctx = { ...ctxWith(), env: noEdge, hosts: [host] } as unknown as Context
  const images = { site: 'o/site:v9', saas: 'o/saas:v9', api: 'o/api:v9' }
  const base = { release: 'v9', images, flavour: new Map([[host, 'v2' as const]]), history: [] }
  const run = {
    ...base,
    live: 'blue' as const,
    target: 'green' as const,
    started: 0,
    finished: false,
    action: 'deploy' as const,
  }
  setState(ctx, { ...run, switched: true })
  await cleanupOnFailure(ctx)()
  const commands = host.commands.join('\n')
  assert.match(host.inputs.join('\n'), '# Managed by deploy: live colour blue')
  // Back to blue: the flag file removed (nginx reads it per request), the upstreams' first line rewritten.
  assert.match(commands, 'rm -f /etc/nginx/conciliaextrato/ci-live-green && (')
  assert.match(commands, /ce-ci-green.* stop/)
  assert.match(host.inputs.join('\n'), '"outcome":"failed"')
  // Before the switch only the new colour stops: nginx is not touched.
  const before = new ScriptedHost('qa-1', [])
  const ctx2 = { ...ctxWith(), env: noEdge, hosts: [before] } as unknown as Context
  setState(ctx2, { ...run, flavour: new Map([[before, 'v2' as const]]), switched: false })
  await cleanupOnFailure(ctx2)()
  assert.not.match(before.commands.join('\n'), 'live-green')
  assert.match(before.commands.join('\n'), /ce-ci-green.* stop/)
})

test("an instant rollback's end is one command per host: the record, current-release, the old colour's stop", async () => {
  const noEdge = { ...env, edge: undefined }
  const images = { site: 'o/site:v1', saas: 'o/saas:v1', api: 'o/api:v1' }
  const rollbackOn = (host: ScriptedHost) => {
    const ctx = { ...ctxWith(), env: noEdge, hosts: [host] } as unknown as Context
    setState(ctx, {
      release: 'v1',
      images,
      flavour: new Map([[host, 'v2' as const]]),
      history: [JSON.parse(record('v1', 'live')), { ...JSON.parse(record('v2', 'live')), colour: 'green' }],
      live: 'green',
      target: 'blue',
      started: 0,
      switched: true,
      finished: false,
      action: 'rollback',
      // read while the gates ran
      digests: new Map([[host, 'site sha256:1 -\nsaas sha256:2 -\napi sha256:3 -\n']]),
    })
    return ctx
  }
  const host = new ScriptedHost('qa-1', [])
  const ctx = rollbackOn(host)
  await recordLive(ctx)
  assert.is(host.commands.length, 1, host.commands.join('\n'))
  const [command] = host.commands
  assert.match(command ?? '', 'cat >> /srv/conciliaextrato/ci/releases.jsonl')
  assert.match(command ?? '', "printf '%s' 'v1\n' > /srv/conciliaextrato/ci/current-release.new")
  assert.match(command ?? '', /colour=green\nrelease=v2\nuntil=[^\n]*\n. > [^ ]*idle-colour\.new/)
  assert.match(command ?? '', /setsid sh -c .*sleep 2; .*deploy\.lock.*ce-ci-green.* stop/)
  const line = JSON.parse(host.inputs[0] ?? '{}')
  assert.is(line.outcome, 'live')
  assert.is(line.action, 'rollback')
  assert.equal(line.digests, { site: 'sha256:1', saas: 'sha256:2', api: 'sha256:3' })
  assert.ok(state(ctx).finished)

  // The stop could not be arranged after the record was written: the rollback stands, the step says what failed.
  const late = new ScriptedHost('qa-1', [
    ['releases.jsonl', { code: 4, stdout: 'release-recorded\n', stderr: 'setsid: no' }],
  ])
  const lateCtx = rollbackOn(late)
  const lateErr = await recordLive(lateCtx).then(
    () => undefined,
    (e: Error) => e,
  )
  assert.instance(lateErr, CommandError)
  assert.ok(state(lateCtx).finished, 'recorded as live: the cleanup must not undo the rollback')
  assert.match((lateErr as CommandError).command, 'setsid')
  assert.not.match((lateErr as CommandError).command, 'releases.jsonl')
  assert.is((lateErr as CommandError).status, 4)
  assert.match((lateErr as CommandError).next ?? '', 'v1 is recorded as live on qa-1')

  // The record itself failed: the run did not finish (the cleanup puts back what served).
  const full = new ScriptedHost('qa-1', [['releases.jsonl', { code: 1, stderr: 'No space left on device' }]])
  const fullCtx = rollbackOn(full)
  const fullErr = await recordLive(fullCtx).then(
    () => undefined,
    (e: Error) => e,
  )
  assert.instance(fullErr, CommandError)
  assert.not.ok(state(fullCtx).finished)
  assert.match((fullErr as CommandError).command, 'cat >> /srv/conciliaextrato/ci/releases.jsonl')
  assert.match((fullErr as CommandError).stderrTail, 'No space left on device')
})

test('the switch is a flag file; on a host whose nginx files an older deploy wrote, they are written anew and reloaded', async () => {
  const noEdge = { ...env, edge: undefined }
  const served = (colour: string) =>
    Object.values(env.domains)
      .map((d) => `${d} 200 ${colour} \n`)
      .join('')
  const run = (host: ScriptedHost) => {
    const ctx = { ...ctxWith(), env: noEdge, hosts: [host] } as unknown as Context
    setState(ctx, {
      release: 'v1',
      images: { site: 'o/site:v1', saas: 'o/saas:v1', api: 'o/api:v1' },
      flavour: new Map([[host, 'v2' as const]]),
      history: [],
      live: 'blue',
      target: 'green',
      started: 0,
      switched: false,
      finished: false,
      action: 'rollback',
    })
    return ctx
  }
  // Today's files: one command, no nginx -t, no reload.
  const current = new ScriptedHost('qa-1', [['live-green', { stdout: served('green') }]])
  const ctx = run(current)
  await colourRelease.switchTraffic(ctx)
  assert.is(current.commands.length, 1, current.commands.join('\n'))
  assert.match(current.commands[0] ?? '', 'touch /etc/nginx/conciliaextrato/ci-live-green && (')
  assert.not.match(current.commands[0] ?? '', 'nginx -t')
  assert.match(current.inputs[0] ?? '', '# Managed by deploy: live colour green\n')
  assert.ok(state(ctx).switched)
  // An older deploy's upstreams (status 90, nothing changed): sites and upstreams written, nginx -t, reload.
  const older = new ScriptedHost('qa-1', [
    ['grep -qsxF', { code: 90 }],
    ['nginx -t', { stdout: served('green') }],
  ])
  await colourRelease.switchTraffic(run(older))
  const all = older.commands.join('\n')
  assert.match(all, 'ci-sites.conf')
  assert.match(
    all,
    /ci-upstreams\.conf.*touch \/etc\/nginx\/conciliaextrato\/ci-live-green && sudo -n \/usr\/sbin\/nginx -t -q && sudo -n \/usr\/sbin\/nginx -s reload/s,
  )
  assert.match(older.inputs.join('\n'), 'proxy_pass http://ce_ci_api_$ce_ci_colour;')
  // Any other failure of the switch fails the step with its command and status.
  const broken = new ScriptedHost('qa-1', [['grep -qsxF', { code: 1, stderr: 'Read-only file system' }]])
  const err = await colourRelease.switchTraffic(run(broken)).then(
    () => undefined,
    (e: Error) => e,
  )
  assert.instance(err, CommandError)
  assert.is((err as CommandError).status, 1)
  assert.match((err as CommandError).stderrTail, 'Read-only file system')
})

test('registry delivery pulls only what the host lacks: postgres:15 already there is not pulled (no Docker Hub call)', async () => {
  const host = new ScriptedHost('qa-1', [
    ['docker image inspect', { stdout: 'r/api:v2 missing\npostgres:15 sha256:aaa\nredis:7 sha256:bbb\n' }],
    ['pull', { stdout: 'pulled r/api:v2\n' }],
  ])
  const changed = await deliverTo(ctxWith(), host, ['r/api:v2', 'postgres:15', 'redis:7'])
  assert.ok(changed)
  const pull = host.commands.find((c) => c.includes(' pull ')) ?? ''
  assert.match(pull, 'pull -q r/api:v2')
  assert.not.match(pull, 'postgres:15')
  assert.not.match(pull, 'redis:7')
  const none = new ScriptedHost('qa-1', [['docker image inspect', { stdout: 'r/api:v2 sha256:ccc\n' }]])
  assert.not.ok(await deliverTo(ctxWith(), none, ['r/api:v2']))
  assert.is(none.commands.filter((c) => c.includes(' pull ')).length, 0)
})

test.run()

import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import {
  allHealthy,
  colourPorts,
  compose,
  imageIds,
  otherColour,
  parseProjectHealth,
  projectContainers,
  projectHealth,
  projectName,
  runsExactly,
} from '../../lib/commands/compose.ts'
import { allAnswered, answersNow } from '../../lib/commands/health.ts'
import {
  nginxTestAndReload,
  renderSites,
  renderTemplate,
  renderUpstreams,
  servedColourProbe,
  switchToColour,
  upstreamName,
  waitServedBy,
} from '../../lib/commands/nginx.ts'
import {
  imageDigests,
  manifestProbe,
  parseImageDigests,
  parseManifestProbe,
  parseReleaseImages,
  pullImages,
  releaseImagesProbe,
} from '../../lib/commands/registry.ts'
import { imageRefs } from '../../lib/deploy/state.ts'
import { notServedBy } from '../../lib/deploy/switch.ts'
import type { Env } from '../../lib/env/load.ts'
import { checkBranch } from '../../lib/release/target.ts'
import { InputError } from '../../lib/report/errors.ts'
import { redisOnCommandLine } from '../../lib/stack/data-files.ts'
import { appEnv, colourEnv, composeFile, dataEnv, redisConf, serviceEnv } from '../../lib/stack/files.ts'
import {
  lastLiveOn,
  liveRelease,
  parseReleases,
  previousGood,
  type ReleaseRecord,
} from '../../lib/stack/releases.ts'
import { suite } from '../harness.ts'
import { withFakeDocker } from '../support/fake-docker.ts'

const test = suite('deploy command builders')
const env = {
  name: 'staging',
  domains: {
    site: 'qa.conciliaextrato.com',
    saas: 'app.qa.conciliaextrato.com',
    api: 'api.qa.conciliaextrato.com',
  },
  images: {
    site: 'ghcr.io/ce/site',
    saas: 'ghcr.io/ce/saas',
    api: 'ghcr.io/ce/api',
    postgres: 'postgres:15',
    redis: 'redis:7',
    delivery: 'registry',
  },
} as unknown as Env

test('compose: the same arguments for v2 and v1, in the env directory', () => {
  assert.is(
    compose(
      'v2',
      '/srv/ce/staging',
      'ce-staging-blue',
      '/srv/ce/staging/app.yaml',
      '/srv/ce/staging/blue.env',
      'up -d',
    ),
    'cd /srv/ce/staging && set -a && . /srv/ce/staging/blue.env && set +a && docker compose --ansi never -p ce-staging-blue -f /srv/ce/staging/app.yaml up -d',
  )
  assert.match(
    compose('v1', '/d', 'p', '/d/f.yaml', '/d/e.env', 'stop'),
    'cd /d && set -a && . /d/e.env && set +a && docker-compose --ansi never -p p',
  )
  assert.is(projectName('staging', 'data'), 'ce-staging-data')
  assert.is(otherColour('blue'), 'green')
  assert.equal(colourPorts('blue'), { site: 18081, saas: 18082, api: 18083 })
  assert.equal(colourPorts('green'), { site: 18091, saas: 18092, api: 18093 })
})

test('containers are found by compose labels (v1 and v2 name them differently)', () => {
  assert.is(
    projectContainers('ce-staging-data', 'postgres'),
    'docker ps -q --filter label=com.docker.compose.project=ce-staging-data --filter label=com.docker.compose.service=postgres',
  )
  // One docker inspect for all of a project's containers; none: no inspect at all.
  const docker = withFakeDocker(`#!/bin/sh
echo "$1" >> "$LOG"
case $1 in ps) [ -n "$IDS" ] && printf '%s\\n' $IDS;; inspect) shift 3; for c in "$@"; do echo "svc-$c running healthy"; done;; esac
`)
  const log = join(mkdtempSync(join(tmpdir(), 'ce-inspect-')), 'log')
  const three = docker(`export LOG=${log} IDS='c1 c2 c3'; ${projectHealth('ce-x-blue')}`)
  assert.is(three.out, 'svc-c1 running healthy\nsvc-c2 running healthy\nsvc-c3 running healthy\n')
  assert.is(execFileSync('cat', [log], { encoding: 'utf8' }), 'ps\ninspect\n')
  const none = docker(`export LOG=${log}.2 IDS=''; ${projectHealth('ce-x-blue')}`)
  assert.equal(
    [none.code, none.out, execFileSync('cat', [`${log}.2`], { encoding: 'utf8' })],
    [0, '', 'ps\n'],
  )
  assert.equal(parseProjectHealth('site running healthy\napi exited unhealthy\n'), [
    { service: 'site', state: 'running', health: 'healthy' },
    { service: 'api', state: 'exited', health: 'unhealthy' },
  ])
  // Each image's id, one docker call when all are there; a missing one said so (it gets delivered).
  const images = withFakeDocker(`#!/bin/sh
shift 4
for r in "$@"; do case $r in *gone*) echo "Error: No such image: $r" >&2; bad=1;; *) echo "sha256:$r";; esac; done
exit \${bad:-0}
`)
  assert.is(images(imageIds(['a/b:1', 'c:2'])).out, 'a/b:1 sha256:a/b:1\nc:2 sha256:c:2\n')
  assert.is(images(imageIds(['a/b:1', 'gone:2'])).out, 'a/b:1 sha256:a/b:1\ngone:2 missing\n')
})

test('nginx: both colours upstream, a flag file switches (no reload); the first line says which; server blocks per domain', () => {
  const up = renderUpstreams('staging', 'green')
  assert.ok(
    up.startsWith(
      '# Managed by deploy: live colour green\n# Switched by a flag file, read on every request: no reload: /etc/nginx/conciliaextrato/staging-live-green\n',
    ),
    up,
  )
  for (const [colour, port] of [
    ['blue', 18083],
    ['green', 18093],
  ] as const)
    assert.match(
      up,
      `upstream ${upstreamName('staging', 'api')}_${colour} {\n    server 127.0.0.1:${port} max_fails=0;\n    keepalive 16;\n}`,
    )
  // The blocks do not depend on the live colour: only the first line does.
  assert.is(
    renderUpstreams('staging', 'blue').split('\n').slice(1).join('\n'),
    up.split('\n').slice(1).join('\n'),
  )
  assert.not.match(up, 'map $host')
  // The switch: the flag made or removed, then the file rewritten; nothing when an older deploy's file is there.
  assert.is(
    switchToColour('staging', 'green', 'W'),
    "grep -qsxF '# Switched by a flag file, read on every request: no reload: /etc/nginx/conciliaextrato/staging-live-green' /etc/nginx/conciliaextrato/staging-upstreams.conf || exit 90; touch /etc/nginx/conciliaextrato/staging-live-green && (W)",
  )
  assert.match(
    switchToColour('staging', 'blue', 'W'),
    'rm -f /etc/nginx/conciliaextrato/staging-live-green && (W)',
  )
  const sites = renderSites(env)
  assert.match(
    sites,
    '    server_name app.qa.conciliaextrato.com;\n    # The live colour: green while /etc/nginx/conciliaextrato/staging-live-green exists, else blue (read per request).\n',
  )
  assert.match(
    sites,
    '    set $ce_staging_colour blue;\n    if (-f /etc/nginx/conciliaextrato/staging-live-green) {\n        set $ce_staging_colour green;\n    }\n    add_header X-Served-By-Colour $ce_staging_colour always;\n',
  )
  assert.match(sites, 'proxy_pass http://ce_staging_saas_$ce_staging_colour;')
  assert.match(sites, 'proxy_set_header Connection "";')
  // The app sees the real client only: never the X-Forwarded-For a client sent, with ours appended.
  assert.match(sites, 'proxy_set_header X-Forwarded-For $remote_addr;')
  assert.match(sites, 'proxy_set_header X-Real-IP $remote_addr;')
  assert.not.match(sites, '$proxy_add_x_forwarded_for')
  assert.is(nginxTestAndReload, 'sudo -n /usr/sbin/nginx -t -q && sudo -n /usr/sbin/nginx -s reload')
  // One line whatever happens: status, the colour that answered, curl's reason when it could not ask.
  assert.is(
    servedColourProbe('api.qa.conciliaextrato.com', '/health'),
    "curl -s -o /dev/null -m 3 -w '%{http_code} %header{x-served-by-colour} %{errormsg}\\n' -H 'Host: api.qa.conciliaextrato.com' http://127.0.0.1/health || true",
  )
})

test('waiting for a colour: polled on the host until every domain answers from it, or the time is up', () => {
  // A curl stand-in: blue for the first four requests, then green (nginx's new workers taking over).
  const dir = mkdtempSync(join(tmpdir(), 'ce-curl-'))
  writeFileSync(
    join(dir, 'curl'),
    `#!/bin/sh\nn=$(cat "$N" 2>/dev/null || echo 0); echo $((n+1)) > "$N"\n[ "$n" -ge 4 ] && echo '200 green ' || echo '200 blue '\n`,
    { mode: 0o755 },
  )
  const run = (cmd: string) =>
    execFileSync('bash', ['-c', cmd], {
      env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, N: join(dir, 'n') },
      encoding: 'utf8',
    })
  const domains = ['a.x', 'b.x', 'c.x']
  const out = run(waitServedBy(domains, '/health', 'green', 5))
  assert.is(out, 'a.x 200 green \nb.x 200 green \nc.x 200 green \n')
  assert.is(
    readFileSync(join(dir, 'n'), 'utf8').trim(),
    '9',
    'three rounds of three: stopped as soon as all were green',
  )
  rmSync(join(dir, 'n'))
  // Never served by it: the last answers after the time is up (0.3 s: three rounds), for the message.
  assert.is(
    run(waitServedBy(domains, '/health', 'red', 0.3)),
    'a.x 200 green \nb.x 200 green \nc.x 200 green \n',
  )
})

test("a colour's services asked once on their ports (an instant rollback's smoke check, when all answer)", () => {
  // A curl stand-in: 200 on two ports, refused on the third (curl prints 000 and fails).
  const dir = mkdtempSync(join(tmpdir(), 'ce-curl-'))
  writeFileSync(
    join(dir, 'curl'),
    `#!/bin/sh\nfor a; do url=$a; done\ncase $url in *:3/*) echo 000; exit 7;; *) echo 200;; esac\n`,
    { mode: 0o755 },
  )
  const out = execFileSync('bash', ['-c', answersNow({ site: 1, saas: 2, api: 3 }, '/health')], {
    env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    encoding: 'utf8',
  })
  assert.match(out, 'answers site 200\nanswers saas 200\nanswers api 000\n')
  assert.not.ok(allAnswered(out, ['site', 'saas', 'api']))
  assert.ok(allAnswered(out, ['site', 'saas']))
  assert.not.ok(allAnswered('', ['site']), 'nothing printed: not answered')
  // After projectRunningImages's lines in one command: the container lines are read without them.
  const both = `site r/site:v1 running healthy\nsaas r/saas:v1 running none\napi r/api:v1 running healthy\n${out}`
  assert.ok(runsExactly(both, { site: 'r/site:v1', saas: 'r/saas:v1', api: 'r/api:v1' }))
  assert.ok(allHealthy(both))
  // The switch's own wait: each domain not served by the colour, with what it answered.
  const domains = ['a.x', 'b.x']
  assert.is(notServedBy('a.x 200 green \nb.x 200 green \n', domains, 'green'), '')
  assert.is(
    notServedBy('a.x 200 green \nb.x 000  Failed to connect\n', domains, 'green'),
    'b.x: 000 from nobody (Failed to connect)',
  )
  assert.is(notServedBy('', domains, 'blue'), 'a.x: 000 from nobody, b.x: 000 from nobody')
})

test('nginx templates: every placeholder must have a value', () => {
  assert.throws(
    () => renderTemplate('upstream.conf.template', { upstream: 'u' }),
    /nginx\/upstream.conf.template: no value for \{\{port\}\}/,
  )
  assert.is(
    renderTemplate('upstream.conf.template', { upstream: 'u', port: 1 }),
    'upstream u {\n    server 127.0.0.1:1 max_fails=0;\n    keepalive 16;\n}\n',
  )
})

test('files: image refs by release; passwords only in the 0600 files, URL-encoded in URLs', () => {
  const images = imageRefs(env, 'abc123')
  assert.equal(images, {
    site: 'ghcr.io/ce/site:abc123',
    saas: 'ghcr.io/ce/saas:abc123',
    api: 'ghcr.io/ce/api:abc123',
  })
  const vars = colourEnv(env, 'blue', images)
  assert.match(vars, 'COLOUR=blue\nNETWORK=ce-staging\nSITE_IMAGE=ghcr.io/ce/site:abc123')
  assert.match(vars, 'API_PORT=18083')
  const secrets = { POSTGRES_PASSWORD: 'p@ss w:rd', REDIS_PASSWORD: 'r/1' }
  assert.not.match(vars, 'p@ss')
  assert.match(dataEnv(env, secrets), "POSTGRES_PASSWORD='p@ss w:rd'\nREDIS_PASSWORD=r/1")
  assert.match(
    appEnv(secrets),
    'DATABASE_URL=postgres://conciliaextrato:p%40ss%20w%3Ard@postgres:5432/conciliaextrato',
  )
  assert.match(appEnv(secrets), 'REDIS_URL=redis://:r%2F1@redis:6379/0')
  // No quote survives into the URLs (Compose's env_file parsers treat quotes specially).
  assert.match(appEnv({ POSTGRES_PASSWORD: "it's(*)!", REDIS_PASSWORD: '' }), ':it%27s%28%2A%29%21@postgres')
})

test("each service's env_file holds only the URLs services.<name>.uses names", () => {
  const secrets = { POSTGRES_PASSWORD: 'pw1', REDIS_PASSWORD: 'pw2' }
  const uses = {
    ...env,
    services: { site: [], saas: ['redis'], api: ['database', 'redis'] },
  } as unknown as Env
  assert.is(serviceEnv(uses, 'site', secrets), '')
  assert.is(serviceEnv(uses, 'saas', secrets), 'REDIS_URL=redis://:pw2@redis:6379/0\n')
  assert.match(
    serviceEnv(uses, 'api', secrets),
    /^DATABASE_URL=postgres:\/\/conciliaextrato:pw1@.*\nREDIS_URL=/,
  )
  // app.yaml: no service shares an env_file, and none is given app.env (the migration's).
  const app = composeFile('app')
  for (const svc of ['site', 'saas', 'api']) assert.match(app, `env_file: [${svc}.env]`)
  assert.not.match(app, 'app.env')
  // Every container logs to journald (age-bounded), none to json-file (size-bounded only).
  for (const name of ['app', 'data'] as const) {
    assert.match(composeFile(name), 'logging: { driver: journald, options: { tag: "{{.Name}}" } }')
    assert.not.match(composeFile(name), 'driver: json-file')
  }
})

test('data.env is a shell file: a password with $, " #", quotes and backslashes comes back exactly', async () => {
  const nasty = `a$HOME b #c 'd' "e" \\f \`g\` $(h)`
  const text = dataEnv(env, { POSTGRES_PASSWORD: nasty, REDIS_PASSWORD: `${nasty}\nline2` })
  // Sourced the way compose() does it, by a real shell.
  const file = join(mkdtempSync(join(tmpdir(), 'ce-data-env-')), 'data.env')
  writeFileSync(file, text)
  const out = execFileSync(
    'sh',
    ['-c', `set -a && . ${file} && set +a && printf "%s\\0%s" "$POSTGRES_PASSWORD" "$REDIS_PASSWORD"`],
    {
      env: { PATH: process.env.PATH ?? '' },
    },
  ).toString()
  rmSync(file)
  assert.equal(out.split('\0'), [nasty, `${nasty}\nline2`])
})

test('redis.conf: the password as requirepass, every byte \\xHH-escaped; never on a command line', () => {
  const pw = `s3cret "x" 'y' \\ $z #w é`
  const conf = redisConf({ POSTGRES_PASSWORD: '', REDIS_PASSWORD: pw })
  const line = conf.split('\n').find((l) => l.startsWith('requirepass ')) ?? ''
  assert.match(line, /^requirepass "(\\x[0-9a-f]{2})+"$/)
  const bytes = [...line.matchAll(/\\x([0-9a-f]{2})/g)].map((m) => Number.parseInt(m[1] ?? '', 16))
  assert.is(Buffer.from(bytes).toString('utf8'), pw)
  assert.match(conf, 'appendonly yes')
  const data = composeFile('data')
  assert.not.match(data, '--requirepass')
  assert.match(data, './redis/redis.conf:/usr/local/etc/redis/redis.conf:ro')
  assert.match(redisOnCommandLine('ce-p-data'), "grep -q -- '--requirepass' && echo old")
})

test('release history: the live one, and where rollback goes', () => {
  const rec = (id: string, outcome: ReleaseRecord['outcome']) =>
    JSON.stringify({
      id,
      outcome,
      colour: 'blue',
      images: {},
      digests: {},
      who: 'a',
      at: 't',
      duration_s: 1,
      action: 'deploy',
      previous: null,
    })
  const history = parseReleases(
    [rec('v1', 'live'), rec('v2', 'live'), rec('broken', 'failed'), 'garbage', ''].join('\n'),
  )
  assert.is(history.length, 3)
  assert.is(liveRelease(history)?.id, 'v2')
  assert.is(previousGood(history, 'v2')?.id, 'v1')
  assert.is(previousGood(parseReleases(rec('v1', 'live')), 'v1'), undefined)
  // What a failed deploy puts back on the colour it reused: the last release that went live there.
  const onColour = (id: string, colour: string, outcome: string) => ({
    ...JSON.parse(rec(id, 'live')),
    colour,
    outcome,
  })
  const h = [
    onColour('v1', 'blue', 'live'),
    onColour('v2', 'green', 'live'),
    onColour('bad', 'blue', 'failed'),
  ]
  assert.is(lastLiveOn(h, 'blue')?.id, 'v1')
  assert.is(lastLiveOn(h, 'green')?.id, 'v2')
  assert.is(lastLiveOn(h.slice(1, 2), 'blue'), undefined)
})

test('the branch rule: the env branch, or an explicit override', () => {
  checkBranch('staging', 'staging', false)
  checkBranch('main', 'hotfix', true)
  assert.throws(
    () => checkBranch('main', 'feature-x', false),
    (e: Error) => e instanceof InputError && /deploys from branch "main"/.test(e.message),
  )
})

test('registry: logs in with a throwaway config read from stdin, pulls, and leaves no credentials', () => {
  const reg = { server: 'ghcr.io', username: 'ci-bot', passwordSecret: 'GHCR_TOKEN', insecure: false }
  const pull = pullImages(['ghcr.io/o/api:abc123', 'ghcr.io/o/site:abc123'], reg)
  assert.is(
    pull,
    [
      'set -e',
      'cfg=$(mktemp -d)',
      `trap 'rm -rf "$cfg"' EXIT`,
      'docker --config "$cfg" login --username ci-bot --password-stdin ghcr.io >/dev/null',
      'docker --config "$cfg" pull -q ghcr.io/o/api:abc123 >/dev/null && echo \'pulled ghcr.io/o/api:abc123\'',
      'docker --config "$cfg" pull -q ghcr.io/o/site:abc123 >/dev/null && echo \'pulled ghcr.io/o/site:abc123\'',
    ].join('\n'),
  )
  // Anonymous (public images): no login line at all; an insecure sandbox registry asks over HTTP.
  const probe = manifestProbe(['10.0.0.5:5000/o/api:v1'], { server: '10.0.0.5:5000', insecure: true })
  assert.not.match(probe, 'login')
  assert.match(
    probe,
    'docker --config "$cfg" manifest inspect --insecure 10.0.0.5:5000/o/api:v1 >/dev/null 2>&1',
  )
  // An image the host already holds is not looked up in any registry (Docker Hub for postgres:15).
  assert.match(probe, 'if docker image inspect 10.0.0.5:5000/o/api:v1 >/dev/null 2>&1 || docker --config')
  assert.equal(parseManifestProbe('a:1 present\nb:1 missing\nc:1 missing\n'), ['b:1', 'c:1'])
})

test('registry: image ids and repo digests parsed per service; a local-only image has no repo digest', () => {
  assert.match(imageDigests({ api: 'r/api:v1' }), `docker image inspect -f '{{.Id}} {{if .RepoDigests}}`)
  // One docker call for all three, each line marked with its service; one missing: looked up one by one.
  const docker = withFakeDocker(`#!/bin/sh
echo "$*" >> "$LOG"
shift 4
for r in "$@"; do case $r in *gone*) echo "Error: No such image: $r" >&2; bad=1;; *) echo "sha256:$r -";; esac; done
exit \${bad:-0}
`)
  const log = join(mkdtempSync(join(tmpdir(), 'ce-digests-')), 'log')
  const all = docker(`export LOG=${log}; ${imageDigests({ site: 's:1', saas: 'a:1', api: 'p:1' })}`)
  assert.is(all.out, 'site sha256:s:1 -\nsaas sha256:a:1 -\napi sha256:p:1 -\n')
  assert.is(execFileSync('wc', ['-l', log], { encoding: 'utf8' }).trim().split(' ')[0], '1')
  const missing = docker(`export LOG=${log}; ${imageDigests({ site: 's:1', api: 'gone:1' })}`)
  assert.is(missing.out, 'site sha256:s:1 -\napi\n')
  const parsed = parseImageDigests('api sha256:aaa r/api@sha256:bbb\nsite sha256:ccc -\n')
  assert.equal(parsed.ids, { api: 'sha256:aaa', site: 'sha256:ccc' })
  assert.equal(parsed.repoDigests, { api: 'r/api@sha256:bbb' })
})

test('release-images: pulled and read back by digest; a missing tag is an answer, an unreachable registry is not', () => {
  const A = `sha256:${'a'.repeat(64)}`
  const docker = withFakeDocker(`#!/bin/sh
[ "$1" = --config ] && shift 2
case "$1" in
  login) cat >/dev/null; exit 0;;
  pull) case "$3" in
    *gone*) echo "Error response from daemon: manifest unknown" >&2; exit 1;;
    *down*) echo "Error response from daemon: Get \\"https://r/v2/\\": dial tcp: connection refused" >&2; exit 1;;
    *) exit 0;; esac;;
  image) echo "other/x@sha256:${'b'.repeat(64)} r/site@${A}";;
esac
`)
  const refs = ['r/site:c1', 'r/gone:c1', 'r/down:c1']
  const reg = { server: 'r', username: 'ci-bot', passwordSecret: 'GHCR_TOKEN', insecure: false }
  const script = releaseImagesProbe(refs, reg)
  // The password goes on stdin to a throwaway config, never on the command line.
  assert.match(script, 'login --username ci-bot --password-stdin r >/dev/null')
  assert.not.match(script, 'GHCR_TOKEN')
  const run = docker(script)
  assert.is(run.code, 0)
  const answers = parseReleaseImages(run.out, refs)
  // The digest of the ref's own repository, not another RepoDigest the image also carries.
  assert.equal(answers.get('r/site:c1'), { state: 'found', digest: A })
  assert.equal(answers.get('r/gone:c1'), { state: 'missing' })
  const down = answers.get('r/down:c1')
  assert.is(down?.state, 'unreachable')
  assert.match(down?.state === 'unreachable' ? down.error : '', 'connection refused')
  // No line at all for a ref (the script died before it): unreachable, never "missing".
  assert.is(parseReleaseImages('', ['r/site:c1']).get('r/site:c1')?.state, 'unreachable')
})

test.run()

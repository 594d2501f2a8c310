import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { parse } from 'yaml'
import { dockerUserBlock, swarmUfwRules } from '../../lib/commands/firewall.ts'
import { renderSites } from '../../lib/commands/nginx.ts'
import {
  labelNode,
  parseNodeList,
  parseStackServices,
  parseSwarmState,
  rolledBack,
  secretEnsure,
  secretsPrune,
  stackDeploy,
  stackSettled,
  swarmInit,
  swarmJoin,
  taskSecretsProbe,
  tasksMissingSecrets,
} from '../../lib/commands/swarm.ts'
import { rehearseStep } from '../../lib/deploy/rehearse.ts'
import { colourRelease } from '../../lib/deploy/strategy.ts'
import { desiredRecords } from '../../lib/dns/desired.ts'
import { type Env, loadEnv } from '../../lib/env/load.ts'
import { switchStep } from '../../lib/release/steps.ts'
import { releaseStrategy } from '../../lib/release/strategy.ts'
import { InputError } from '../../lib/report/errors.ts'
import type { Context } from '../../lib/run/runbook.ts'
import { hostUfwRules, peerAddresses, peerOnlyPorts } from '../../lib/setup/firewall.ts'
import {
  composeText,
  connectionStrings,
  migrateEnv,
  nodeUpstreams,
  SWARM_PORTS,
  secretName,
  stackSecretsFile,
  stackVars,
} from '../../lib/swarm/files.ts'
import { swarmRelease } from '../../lib/swarm/strategy.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { rollback } from '../../runbooks/rollback.ts'
import { suite } from '../harness.ts'

const test = suite('swarm: env roles, commands, stack files')
const KEY = 'SHA256:JLMaqh8HJyBKDSUOY+IsmHSIiD8khfb1+x5vqEYo7eA'
const host = (name: string, address: string, roles: string[]) =>
  `  - { name: ${name}, address: ${address}, private_address: 10.10.0.${address.split('.').pop()}, host_key: ${KEY}, roles: [${roles.join(', ')}] }`

function envText(hosts: string[], swarm = 'swarm: { encrypted_overlay: true }'): string {
  return `name: qa
kind: local
branch: staging
hosts:
${hosts.join('\n')}
ssh: { user: deploy, key: { file: /dev/null } }
domains: { site: qa.example.com, saas: app.qa.example.com, api: api.qa.example.com }
images: { site: ghcr.io/o/site, saas: ghcr.io/o/saas, api: ghcr.io/o/api, postgres: postgres:15, redis: redis:7 }
secrets: [POSTGRES_PASSWORD, REDIS_PASSWORD]
setup: { deploy_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMkoayiSR6OjDO0KqyFDNGgH9jJGJnz3f1jko/vri05n ana@laptop'], firewall: { http_from: anywhere } }
${swarm}
`
}

function load(text: string): Env {
  const dir = mkdtempSync(join(tmpdir(), 'ce-swarm-'))
  writeFileSync(join(dir, 'qa.yaml'), text)
  return loadEnv('qa', dir)
}

function problems(text: string): string {
  try {
    load(text)
  } catch (err) {
    assert.instance(err, InputError)
    return (err as Error).message
  }
  throw new Error('expected an InputError')
}

const THREE = [
  host('app-1', '203.0.113.1', ['manager', 'web']),
  host('app-2', '203.0.113.2', ['worker', 'web']),
  host('db-1', '203.0.113.3', ['data']),
]

test('a swarm env: roles, private addresses and swarm defaults load', () => {
  const env = load(envText(THREE))
  assert.equal(
    env.hosts.map((h) => [h.name, h.roles, h.privateAddress]),
    [
      ['app-1', ['manager', 'web'], '10.10.0.1'],
      ['app-2', ['worker', 'web'], '10.10.0.2'],
      ['db-1', ['data'], '10.10.0.3'],
    ],
  )
  assert.equal(env.swarm, { encryptedOverlay: true, updateDelayS: 5, monitorS: 10, updateTimeoutS: 600 })
})

test('bad swarm layouts are refused, each problem named with its field', () => {
  const worker1st = problems(
    envText([host('app-2', '203.0.113.2', ['worker', 'web']), host('db-1', '203.0.113.3', ['data'])]),
  )
  assert.match(worker1st, 'hosts[0].roles: on a swarm env the first host is the manager')
  const noData = problems(envText([host('app-1', '203.0.113.1', ['manager', 'web'])]))
  assert.match(noData, 'exactly one host with roles [data] (found 0)')
  const dataInSwarm = problems(envText([host('app-1', '203.0.113.1', ['manager', 'web', 'data'])]))
  assert.match(dataInSwarm, 'hosts[0].roles: the data host stays out of the swarm')
  const noWeb = problems(
    envText([host('app-1', '203.0.113.1', ['manager']), host('db-1', '203.0.113.3', ['data'])]),
  )
  assert.match(noWeb, 'every swarm node runs nginx in front of its tasks: add web')
  const noSection = problems(envText(THREE, ''))
  assert.match(noSection, 'hosts[0].roles: manager and worker are swarm roles: add a swarm: section')
  const badTiming = problems(envText(THREE, 'swarm: { monitor_s: 0, colour: blue }'))
  assert.match(badTiming, 'swarm.monitor_s')
  assert.match(badTiming, 'colour')
})

test('swarm ports open to the other swarm nodes only; containers reachable from every other env host', () => {
  const env = load(envText(THREE))
  const [app1, app2, db] = env.hosts as [Env['hosts'][0], Env['hosts'][0], Env['hosts'][0]]
  assert.equal(swarmUfwRules(['10.10.0.2']), [
    "ufw allow from 10.10.0.2 to any port 2377 proto tcp comment 'swarm'",
    "ufw allow from 10.10.0.2 to any port 7946 comment 'swarm'",
    "ufw allow from 10.10.0.2 to any port 4789 proto udp comment 'swarm'",
    "ufw allow from 10.10.0.2 proto esp comment 'swarm'",
  ])
  const app1Rules = hostUfwRules(env, app1)
  assert.ok(app1Rules.some((r) => r.includes('from 10.10.0.2 to any port 2377')))
  // The tasks' ports answer the other node (refused while Swarm replaces a task, never a silent drop).
  assert.ok(
    app1Rules.includes("ufw allow from 10.10.0.2 to any port 18101:18103 proto tcp comment 'swarm tasks'"),
    app1Rules.join('\n'),
  )
  assert.not.ok(
    app1Rules.some((r) => r.includes('10.10.0.3')),
    'the data host gets no swarm port',
  )
  assert.not.ok(hostUfwRules(env, db).some((r) => r.includes('swarm')))
  assert.equal(peerAddresses(env, app2), ['10.10.0.1', '10.10.0.3'])
  const block = dockerUserBlock('eth0', peerAddresses(env, db))
  const lines = block.split('\n')
  const drop = lines.indexOf('-A DOCKER-USER -i eth0 -j DROP')
  assert.ok(lines.indexOf('-A DOCKER-USER -i eth0 -s 10.10.0.1 -j RETURN') < drop)
  assert.ok(lines.indexOf('-A DOCKER-USER -i eth0 -s 10.10.0.2 -j RETURN') < drop)
  assert.equal(peerOnlyPorts(env, db), [5432, 6379])
  assert.equal(peerOnlyPorts(env, app2), [2377, 7946, 18101, 18102, 18103])
  const single = load(envText([host('web-1', '203.0.113.9', ['web', 'data'])], ''))
  assert.equal(peerAddresses(single, single.hosts[0] as Env['hosts'][0]), [])
  assert.not.match(dockerUserBlock('eth0'), '-s ')
  // A droplet's VPC interface is guarded too: other droplets of the VPC are strangers.
  const two = dockerUserBlock(['eth0', 'eth1'], ['10.10.0.2']).split('\n')
  for (const i of ['eth0', 'eth1']) {
    const dropAt = two.indexOf(`-A DOCKER-USER -i ${i} -j DROP`)
    assert.ok(dropAt > two.indexOf(`-A DOCKER-USER -i ${i} -s 10.10.0.2 -j RETURN`), i)
  }
  assert.is(dockerUserBlock(['eth0', 'eth0']), dockerUserBlock('eth0'))
})

test('swarm commands: init and join on the private address, the token only on stdin', () => {
  assert.is(
    swarmInit('10.10.0.1'),
    'docker swarm init --advertise-addr 10.10.0.1 --listen-addr 10.10.0.1:2377 --default-addr-pool 10.201.0.0/16 --default-addr-pool-mask-length 24 >/dev/null',
  )
  const join = swarmJoin('10.10.0.2', '10.10.0.1')
  assert.is(
    join,
    'read -r token && docker swarm join --token "$token" --advertise-addr 10.10.0.2 --listen-addr 10.10.0.2:2377 10.10.0.1:2377 >/dev/null',
  )
  assert.is(
    labelNode('abc', 'qa'),
    'docker node update --label-add ce.web=true --label-add ce.env=qa abc >/dev/null',
  )
  assert.equal(parseSwarmState('active true n1 10.10.0.1:2377 \n'), {
    state: 'active',
    manager: true,
    nodeId: 'n1',
    managers: ['10.10.0.1:2377'],
  })
  assert.equal(parseSwarmState('inactive false  \n'), {
    state: 'inactive',
    manager: false,
    nodeId: '',
    managers: [],
  })
  const nodes = parseNodeList(
    'n1 app-1 ready active true manager ce.env=qa,ce.web=true,\nn2 app-2 down active worker worker \n',
  )
  assert.equal(nodes[0]?.labels, { 'ce.env': 'qa', 'ce.web': 'true' })
  assert.is(nodes[1]?.status, 'down')
  assert.is(nodes[1]?.leader, false)
})

test('stack deploy: variables from the file, no registry lookups with ssh delivery; registry images pinned', () => {
  const files = {
    dir: '/srv/ce/qa',
    stack: 'ce-qa',
    files: ['/srv/ce/qa/stack.yaml'],
    vars: '/srv/ce/qa/stack.env',
  }
  assert.is(
    stackDeploy({ ...files, registry: false }),
    'cd /srv/ce/qa && set -a && . /srv/ce/qa/stack.env && set +a && docker stack deploy --prune --resolve-image never -c /srv/ce/qa/stack.yaml ce-qa',
  )
  assert.match(stackDeploy({ ...files, registry: true }), '--resolve-image always --with-registry-auth')
  assert.is(
    secretEnsure('ce-qa-database-url-0123', 'qa'),
    'docker secret inspect ce-qa-database-url-0123 >/dev/null 2>&1 || docker secret create --label ce.env=qa ce-qa-database-url-0123 - >/dev/null',
  )
  assert.match(secretsPrune('qa', ['a', 'b']), "grep -v -e '^a$' -e '^b$'")
})

const IMAGES = { site: 'ce/site:v2', saas: 'ce/saas:v2', api: 'ce/api:v2' }
function probeOut(update: string, image: string, tasks: string[]): string {
  return ['site', 'saas', 'api']
    .map((s) =>
      [
        `service ce-qa_${s} ${update} ${image.replace('SVC', s)}`,
        ...tasks.map((t) => `task ${t.replace('SVC', s)}`),
      ].join('\n'),
    )
    .join('\n')
}

test('the rolling update is settled only when every node runs the new image, and a Swarm rollback is seen', () => {
  const done = parseStackServices(
    probeOut('completed', 'ce/SVC:v2', [
      'ce/SVC:v2 app-1 Running 3 seconds ago',
      'ce/SVC:v2 app-2 Running 9 seconds ago',
    ]),
  )
  assert.equal(stackSettled(done, IMAGES, 2), { settled: true, waiting: [] })
  const half = parseStackServices(
    probeOut('updating', 'ce/SVC:v2', [
      'ce/SVC:v2 app-1 Running 3 seconds ago',
      'ce/SVC:v1 app-2 Running 2 minutes ago',
    ]),
  )
  assert.equal(stackSettled(half, IMAGES, 2).waiting[0], 'site: update updating')
  const starting = parseStackServices(
    probeOut('none', 'ce/SVC:v2', [
      'ce/SVC:v2 app-1 Running 3 seconds ago',
      'ce/SVC:v2 app-2 Starting 1 second ago',
    ]),
  )
  assert.equal(
    stackSettled(starting, IMAGES, 2).waiting[0],
    'site: 1/2 running SVC:v2'.replace('SVC', 'site'),
  )
  const back = parseStackServices(
    probeOut('rollback_completed', 'ce/SVC:v1', [
      'ce/SVC:v1 app-1 Running 3 seconds ago',
      'ce/SVC:v1 app-2 Running 2 minutes ago',
    ]),
  )
  assert.is(stackSettled(back, IMAGES, 2).settled, false)
  // The next deploy of the same release finds the old rollback_completed state: that is settled.
  const again = parseStackServices(
    probeOut('rollback_completed', 'ce/SVC:v2', [
      'ce/SVC:v2 app-1 Running 3 seconds ago',
      'ce/SVC:v2 app-2 Running now',
    ]),
  )
  assert.ok(stackSettled(again, IMAGES, 2).settled)
  assert.equal(rolledBack(again, IMAGES), [])
  // A rollback under way is waited for; a paused update is reported at once.
  const rolling = parseStackServices(
    probeOut('rollback_started', 'ce/SVC:v1', [
      'ce/SVC:v1 app-1 Running 3 seconds ago',
      'ce/SVC:v2 app-2 Running now',
    ]),
  )
  assert.equal(rolledBack(rolling, IMAGES), [])
  assert.is(stackSettled(rolling, IMAGES, 2).settled, false)
  const paused = parseStackServices(
    probeOut('paused', 'ce/SVC:v2', ['ce/SVC:v2 app-1 Running 3 seconds ago', 'ce/SVC:v1 app-2 Running now']),
  )
  assert.is(rolledBack(paused, IMAGES).length, 3)
  assert.equal(
    rolledBack(back, IMAGES).map((s) => s.update),
    ['rollback_completed', 'rollback_completed', 'rollback_completed'],
  )
  assert.equal(rolledBack(done, IMAGES), [])
  // A registry digest on the spec but not on the task list still counts as the same image.
  const pinned = parseStackServices(
    probeOut('completed', 'ce/SVC:v2@sha256:abc123', [
      'ce/SVC:v2 app-1 Running 1 second ago',
      'ce/SVC:v2 app-2 Running now',
    ]),
  )
  assert.ok(stackSettled(pinned, IMAGES, 2).settled)
})

test('stack files: secret names hash the value; variables hold no secret; upstreams prefer the local task', () => {
  const env = load(envText(THREE))
  const urls = connectionStrings(env.hosts[2] as Env['hosts'][0], {
    POSTGRES_PASSWORD: 'p@ss w',
    REDIS_PASSWORD: 'r3d',
  })
  assert.is(urls.database_url, 'postgres://conciliaextrato:p%40ss%20w@10.10.0.3:5432/conciliaextrato')
  assert.is(urls.redis_url, 'redis://:r3d@10.10.0.3:6379/0')
  assert.is(
    migrateEnv(urls),
    'DATABASE_URL=postgres://conciliaextrato:p%40ss%20w@10.10.0.3:5432/conciliaextrato\nREDIS_URL=redis://:r3d@10.10.0.3:6379/0\n',
  )
  const a = secretName('qa', 'database_url', urls.database_url)
  assert.match(a, /^ce-qa-database-url-[0-9a-f]{12}$/)
  assert.is.not(a, secretName('qa', 'database_url', `${urls.database_url}x`))
  assert.is(a, secretName('qa', 'database_url', urls.database_url))
  const vars = stackVars(env, IMAGES, { database_url: a, redis_url: 'ce-qa-redis-url-1' })
  assert.match(vars, 'API_IMAGE=ce/api:v2\n')
  assert.match(vars, `DATABASE_URL_SECRET=${a}\n`)
  assert.match(vars, 'UPDATE_DELAY=5s\nMONITOR=10s\n')
  assert.not.match(vars, 'p%40ss')
  const up = nodeUpstreams(env, env.hosts[1] as Env['hosts'][0], env.hosts.slice(0, 2))
  assert.match(
    up,
    'upstream ce_qa_api_swarm {\n    server 127.0.0.1:18103 max_fails=0;\n    server 10.10.0.1:18103 backup max_fails=0;\n    keepalive 16;\n}',
  )
  assert.match(up, '# Managed by deploy: live colour swarm')
  // Every node's server blocks send to its swarm upstreams: no colour, no flag file.
  const sites = renderSites(env)
  assert.match(sites, '    set $ce_qa_colour swarm;\n')
  assert.match(sites, 'proxy_pass http://ce_qa_api_swarm;')
  assert.not.match(sites, 'proxy_pass http://ce_qa_api_$ce_qa_colour')
  assert.not.match(sites, 'live-green')
  assert.is(SWARM_PORTS.site, 18101)
})

test('the stack file: global, host-mode ports, rolling update with automatic rollback, secrets for the api', () => {
  interface Svc {
    deploy: {
      mode: string
      update_config: { failure_action: string; parallelism: number }
      placement: { constraints: string[] }
    }
    ports: { mode: string }[]
    secrets?: string[]
    environment: Record<string, string>
  }
  const stack = parse(composeText('stack'), { merge: true }) as { services: Record<string, Svc> }
  for (const s of ['site', 'saas', 'api']) {
    const svc = stack.services[s] as Svc
    assert.is(svc.deploy.mode, 'global')
    assert.is(svc.deploy.update_config.failure_action, 'rollback')
    assert.is(svc.deploy.update_config.parallelism, 1)
    assert.equal(svc.deploy.placement.constraints, ['node.labels.ce.web == true'])
    assert.is(svc.ports[0]?.mode, 'host')
  }
  // No service holds a secret in stack.yaml itself: stack-secrets.yaml gives them per services.<name>.uses.
  const env = load(envText(THREE))
  for (const s of ['site', 'saas', 'api']) assert.is(stack.services[s]?.secrets, undefined)
  const secrets = parse(stackSecretsFile(env)) as {
    services: Record<string, Svc>
    secrets: Record<string, unknown>
  }
  assert.equal(Object.keys(secrets.services), ['api'])
  assert.equal(secrets.services.api?.secrets, ['database_url', 'redis_url'])
  assert.is(secrets.services.api?.environment.DATABASE_URL_FILE, '/run/secrets/database_url')
  // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose's interpolation, not a template
  assert.equal(secrets.secrets.database_url, { external: true, name: '${DATABASE_URL_SECRET}' })
  const saasToo = { ...env, services: { site: [], saas: ['redis'], api: [] } } as unknown as Env
  const other = parse(stackSecretsFile(saasToo)) as { services: Record<string, Svc> }
  assert.equal(Object.keys(other.services), ['saas'])
  assert.equal(other.services.saas?.environment, { REDIS_URL_FILE: '/run/secrets/redis_url' })
  const none = { ...env, services: { site: [], saas: [], api: [] } } as unknown as Env
  assert.equal((parse(stackSecretsFile(none)) as { services: object }).services, {})
  const enc = parse(composeText('stack-encrypted')) as {
    networks: { app: { driver_opts: Record<string, string> } }
  }
  assert.ok('encrypted' in enc.networks.app.driver_opts)
})

test('dns publishes every web node of a swarm env, never the data host', () => {
  const env = load(envText(THREE))
  const records = desiredRecords(env)
  assert.equal(
    records.filter((r) => r.name === 'api.qa.example.com').map((r) => r.content),
    ['203.0.113.1', '203.0.113.2'],
  )
  assert.not.ok(records.some((r) => r.content === '203.0.113.3'))
})

test('deploy and rollback: one step list; a swarm env skips the colour switch, one host skips nothing', () => {
  // (both with error_tracking: its step runs for either)
  const tracking = { api: 'https://sentry.example', org: 'ce', projects: ['app'], tokenSecret: 'T' }
  // Production: its deploy also rehearses the migrations on a copy, on one host only.
  const swarmEnv = {
    env: { kind: 'production', swarm: { encryptedOverlay: false }, errorTracking: tracking },
    args: {},
  } as unknown as Context
  const oneHost = { env: { kind: 'production', errorTracking: tracking }, args: {} } as unknown as Context
  assert.is(releaseStrategy(swarmEnv), swarmRelease)
  assert.is(releaseStrategy(oneHost), colourRelease)
  for (const spec of [deploy, rollback]) {
    const skipped = (ctx: Context) => spec.steps.filter((s) => s.skip?.(ctx)).map((s) => s.title)
    assert.equal(
      skipped(swarmEnv),
      spec.name === 'deploy' ? [rehearseStep.title, switchStep.title] : [switchStep.title],
      spec.name,
    )
    assert.equal(skipped(oneHost), [], spec.name)
    const start = spec.steps.find((s) => s.title.startsWith('Start'))
    const next = start?.next as (ctx: Context) => string
    assert.match(next(swarmEnv), spec.name === 'deploy' ? 'docker service ps' : 'still serves')
    assert.not.match(next(oneHost), 'docker service')
  }
})

test('a change of secrets alone is waited for: every task running and holding the new Docker secrets', () => {
  assert.is(
    taskSecretsProbe('ce-sw_api'),
    "docker service ps -q --filter desired-state=running ce-sw_api 2>/dev/null | xargs -r docker inspect --format '{{.Status.State}} {{range .Spec.ContainerSpec.Secrets}}{{.SecretName}},{{end}}' 2>/dev/null || true",
  )
  const wanted = ['ce-sw-database-url-new', 'ce-sw-redis-url-1']
  const both =
    'running ce-sw-database-url-new,ce-sw-redis-url-1,\nrunning ce-sw-redis-url-1,ce-sw-database-url-new,\n'
  assert.is(tasksMissingSecrets(both, wanted, 2), '')
  // One task still on the old secret, one starting, one node short, one task too many.
  const old =
    'running ce-sw-database-url-new,ce-sw-redis-url-1,\nrunning ce-sw-database-url-old,ce-sw-redis-url-1,\n'
  assert.is(
    tasksMissingSecrets(old, wanted, 2),
    '1/2 tasks running with ce-sw-database-url-new, ce-sw-redis-url-1',
  )
  assert.is(
    tasksMissingSecrets('starting ce-sw-database-url-new,ce-sw-redis-url-1,\n', wanted, 1),
    '0/1 tasks running with ce-sw-database-url-new, ce-sw-redis-url-1',
  )
  assert.match(tasksMissingSecrets('running ce-sw-database-url-new,ce-sw-redis-url-1,\n', wanted, 2), '1/2')
  assert.match(
    tasksMissingSecrets(`${both}running ce-sw-database-url-new,ce-sw-redis-url-1,\n`, wanted, 2),
    '3/2',
  )
  assert.match(tasksMissingSecrets('', wanted, 2), '0/2')
})

test.run()

import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import ssh2 from 'ssh2'
import * as assert from 'uvu/assert'
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'
import { uncoveredNames } from '../../lib/dns/desired.ts'
import { listEnvs, loadEnv } from '../../lib/env/load.ts'
import { loadSecrets, readPrivateKey } from '../../lib/env/secrets.ts'
import { InputError } from '../../lib/report/errors.ts'
import { clearSecrets, redact } from '../../lib/report/redact.ts'
import type { Context } from '../../lib/run/runbook.ts'
import { deployKeys } from '../../lib/setup/keys.ts'
import { suite } from '../harness.ts'
import { PUBLIC_YAML } from './ci-env.ts'

const test = suite('env model')
const KEY = 'SHA256:JLMaqh8HJyBKDSUOY+IsmHSIiD8khfb1+x5vqEYo7eA'
const PUB = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMkoayiSR6OjDO0KqyFDNGgH9jJGJnz3f1jko/vri05n ana@laptop'
const GOOD = `name: qa
kind: staging
branch: staging
hosts:
  - name: qa-1
    address: 203.0.113.20
    host_key: ${KEY}
ssh:
  user: deploy
  key: { secret: SSH_PRIVATE_KEY }
domains: { site: qa.example.com, saas: app.qa.example.com, api: api.qa.example.com }
images: { site: ghcr.io/o/site, saas: ghcr.io/o/saas, api: ghcr.io/o/api, postgres: postgres:15, redis: redis:7 }
secrets: [SSH_PRIVATE_KEY, POSTGRES_PASSWORD, CLOUDFLARE_API_TOKEN, TEAM_WEBHOOK_URL]
setup:
  deploy_keys: ['${PUB}']
  firewall: { http_from: cloudflare, cloudflare_ips: [173.245.48.0/20, '2400:cb00::/32'] }
${PUBLIC_YAML}
`

function envDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'ce-env-'))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

function problemsOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    assert.instance(err, InputError)
    return (err as Error).message
  }
  throw new Error('expected an InputError')
}

async function asyncProblemsOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn()
  } catch (err) {
    assert.instance(err, InputError)
    return (err as Error).message
  }
  throw new Error('expected an InputError')
}

test('a valid file loads with defaults filled in', () => {
  const env = loadEnv('qa', envDir({ 'qa.yaml': GOOD }))
  assert.is(env.kind, 'staging')
  assert.equal(env.hosts[0], {
    name: 'qa-1',
    address: '203.0.113.20',
    sshPort: 22,
    hostKey: KEY,
    roles: ['web', 'data'],
  })
  assert.is(env.ssh.bootstrapUser, 'root')
  assert.is(env.ssh.commandTimeoutS, 600)
  assert.is(env.health.timeoutS, 30)
  assert.is(env.images.delivery, 'registry')
  assert.is(env.confirm, false)
})

test('ENV missing: says it is required and lists the environments', () => {
  const dir = envDir({ 'qa.yaml': GOOD, 'prod.yaml': GOOD })
  const msg = problemsOf(() => loadEnv(undefined, dir))
  assert.match(msg, 'ENV is required')
  assert.match(msg, 'prod, qa')
})

test('unknown env: names the missing file and lists those that exist', () => {
  const dir = envDir({ 'qa.yaml': GOOD })
  const msg = problemsOf(() => loadEnv('prodution', dir))
  assert.match(msg, `Unknown environment "prodution": there is no ${join(dir, 'prodution.yaml')}`)
  assert.match(msg, 'environments that exist: qa')
})

test('missing field: names file, field path and expected form', () => {
  const dir = envDir({ 'qa.yaml': GOOD.replace('branch: staging\n', '') })
  const msg = problemsOf(() => loadEnv('qa', dir))
  assert.match(msg, `${join(dir, 'qa.yaml')}: branch: missing; expected a git branch name`)
})

test('images.registry: read with its login secret; half a login or an undeclared secret is refused', () => {
  const withRegistry = (reg: string) => GOOD.replace('redis: redis:7 }', `redis: redis:7, registry: ${reg} }`)
  const good = loadEnv(
    'qa',
    envDir({
      'qa.yaml': withRegistry('{ server: ghcr.io, username: bot, password_secret: SSH_PRIVATE_KEY }'),
    }),
  )
  assert.equal(good.images.registry, {
    server: 'ghcr.io',
    username: 'bot',
    passwordSecret: 'SSH_PRIVATE_KEY',
    insecure: false,
  })
  const half = problemsOf(() =>
    loadEnv('qa', envDir({ 'qa.yaml': withRegistry('{ server: ghcr.io, username: bot }') })),
  )
  assert.match(half, 'images.registry: set both username and password_secret, or neither')
  const undeclared = problemsOf(() =>
    loadEnv(
      'qa',
      envDir({
        'qa.yaml': withRegistry('{ server: ghcr.io, username: bot, password_secret: GHCR_TOKEN }'),
      }),
    ),
  )
  assert.match(undeclared, 'images.registry.password_secret: GHCR_TOKEN must also be listed under secrets')
  const badServer = problemsOf(() =>
    loadEnv('qa', envDir({ 'qa.yaml': withRegistry('{ server: "https://ghcr.io" }') })),
  )
  assert.match(badServer, 'images.registry.server')
})

test('services: only the api uses the database and Redis unless the file says otherwise; bad names refused', () => {
  assert.equal(loadEnv('qa', envDir({ 'qa.yaml': GOOD })).services, {
    site: [],
    saas: [],
    api: ['database', 'redis'],
  })
  const own = loadEnv('qa', envDir({ 'qa.yaml': `${GOOD}services:\n  saas: { uses: [database] }\n` }))
  assert.equal(own.services, { site: [], saas: ['database'], api: ['database', 'redis'] })
  const msg = problemsOf(() =>
    loadEnv('qa', envDir({ 'qa.yaml': `${GOOD}services:\n  site: { uses: [postgres] }\n  web: {}\n` })),
  )
  assert.match(msg, 'services.site.uses[0]: expected one of database, redis, got "postgres"')
  assert.match(msg, 'services.web: unknown field; expected one of: site, saas, api')
})

test('wrong type: says what was expected and what was found', () => {
  const dir = envDir({
    'qa.yaml': GOOD.replace('    address: 203.0.113.20\n', '    address: 203.0.113.20\n    ssh_port: "22"\n'),
  })
  const msg = problemsOf(() => loadEnv('qa', dir))
  assert.match(msg, 'hosts[0].ssh_port: expected an integer from 1 to 65535, got string "22"')
})

test('every problem is reported at once', () => {
  const broken = GOOD.replace('kind: staging', 'kind: prod')
    .replace(KEY, 'MD5:ab:cd')
    .replace('app.qa.example.com', 'not a domain')
    .replace('user: deploy', 'user: deploy\n  colour: blue')
  const msg = problemsOf(() => loadEnv('qa', envDir({ 'qa.yaml': broken })))
  assert.match(msg, 'has 4 problem(s)')
  assert.match(msg, 'kind: expected one of production, staging, local, got "prod"')
  assert.match(msg, 'hosts[0].host_key: expected the SHA256 host key fingerprint')
  assert.match(msg, 'domains.saas: expected a DNS name')
  assert.match(msg, 'ssh.colour: unknown field')
})

test('production must confirm; file name and name must agree', () => {
  const prod = GOOD.replace('name: qa', 'name: prod').replace(
    'kind: staging',
    'kind: production\nconfirm: false',
  )
  const msg = problemsOf(() => loadEnv('qa', envDir({ 'qa.yaml': prod })))
  assert.match(msg, 'name: is "prod" but the file is qa.yaml')
  assert.match(msg, 'confirm: production must ask for confirmation')
})

test('invalid YAML names the file and line', () => {
  const msg = problemsOf(() => loadEnv('qa', envDir({ 'qa.yaml': 'name: qa\nhosts: [\n' })))
  assert.match(msg, 'qa.yaml: not valid YAML at line')
})

test('missing secrets are listed by name with where to set them', async () => {
  const dir = envDir({ 'qa.yaml': GOOD })
  const env = loadEnv('qa', dir)
  const msg = await asyncProblemsOf(() => loadSecrets(env, {}))
  assert.match(msg, '4 secret(s)')
  assert.match(msg, `SSH_PRIVATE_KEY: set it in the environment (CI) or in ${join(dir, 'qa.secrets.env')}`)
  assert.match(msg, 'POSTGRES_PASSWORD')
})

test('secrets come from the process env first, then the secrets file, and are redacted', async () => {
  clearSecrets()
  const dir = envDir({
    'qa.yaml': GOOD,
    'qa.secrets.env': 'POSTGRES_PASSWORD=from-file-pw\nSSH_PRIVATE_KEY=file-key\n',
  })
  const secrets = await loadSecrets(loadEnv('qa', dir), {
    SSH_PRIVATE_KEY: 'env-key-value',
    CLOUDFLARE_API_TOKEN: 'cf-token-value',
    TEAM_WEBHOOK_URL: 'https://hooks.example/t',
  })
  assert.is(secrets.SSH_PRIVATE_KEY, 'env-key-value')
  assert.is(secrets.POSTGRES_PASSWORD, 'from-file-pw')
  assert.is(
    redact('pw=from-file-pw key=env-key-value'),
    'pw=[secret:POSTGRES_PASSWORD] key=[secret:SSH_PRIVATE_KEY]',
  )
  // The overridden file value is a secret too: it must never leak either.
  assert.is(redact('file-key'), '[secret:SSH_PRIVATE_KEY]')
  clearSecrets()
})

test('an SSH key that cannot be parsed is bad input naming the secret (exit 2), never a network error; a good one passes', () => {
  const env = loadEnv('qa', envDir({ 'qa.yaml': GOOD }))
  const mangled = 'not-a-key-but-a-secret-value-4f9a'
  const secrets = { SSH_PRIVATE_KEY: mangled, POSTGRES_PASSWORD: 'p' }
  try {
    readPrivateKey(env, secrets)
    assert.unreachable('accepted a mangled key')
  } catch (err) {
    assert.instance(err, InputError)
    assert.is((err as InputError).exitCode, 2)
    assert.match((err as Error).message, 'secret SSH_PRIVATE_KEY (ssh.key of ')
    assert.match((err as Error).message, 'is not a private key ssh can use')
    assert.not.match((err as Error).message, mangled)
    assert.not.match((err as Error).message, /reach/i)
  }
  const dir = mkdtempSync(join(tmpdir(), 'ce-key-'))
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'k')])
  const good = readFileSync(join(dir, 'k'), 'utf8')
  assert.is(readPrivateKey(env, { ...secrets, SSH_PRIVATE_KEY: good }), good)
})

test('the real staging and production files are valid', () => {
  assert.ok(
    listEnvs().includes('staging') && listEnvs().includes('production') && listEnvs().includes('local'),
  )
  const staging = loadEnv('staging')
  assert.is(staging.branch, 'staging')
  assert.equal(staging.domains, {
    site: 'qa.conciliaextrato.com',
    saas: 'app.qa.conciliaextrato.com',
    api: 'api.qa.conciliaextrato.com',
  })
  const production = loadEnv('production')
  assert.is(production.branch, 'main')
  assert.is(production.confirm, true)
  assert.equal(production.domains, {
    site: 'conciliaextrato.com',
    saas: 'app.conciliaextrato.com',
    api: 'api.conciliaextrato.com',
  })
  assert.match(production.images.api, /^ghcr\.io\//)
})

const setupSuite = suite('env model: setup section')

setupSuite('deploy keys: a truncated key, a wrong type and a missing file are each named', () => {
  const truncated = GOOD.replace(PUB, PUB.slice(0, 60))
  assert.match(
    problemsOf(() => loadEnv('qa', envDir({ 'qa.yaml': truncated }))),
    'setup.deploy_keys[0]: the key data does not match its type ssh-ed25519',
  )
  const wrongType = GOOD.replace(PUB, 'ssh-dss AAAAB3NzaC1kc3MAAACBAP== old@box')
  assert.match(
    problemsOf(() => loadEnv('qa', envDir({ 'qa.yaml': wrongType }))),
    'setup.deploy_keys[0]: expected an SSH public key line',
  )
  const file = GOOD.replace(`deploy_keys: ['${PUB}']`, 'deploy_keys: [{ file: nope/id.pub }]')
  assert.match(
    problemsOf(() => loadEnv('qa', envDir({ 'qa.yaml': file }))),
    /setup\.deploy_keys\[0\]\.file: .*nope\/id\.pub does not exist/,
  )
})

setupSuite('cloudflare-only HTTP needs the ranges; CIDRs are checked', () => {
  const noRanges = GOOD.replace(
    "firewall: { http_from: cloudflare, cloudflare_ips: [173.245.48.0/20, '2400:cb00::/32'] }",
    'firewall: { http_from: cloudflare }',
  )
  assert.match(
    problemsOf(() => loadEnv('qa', envDir({ 'qa.yaml': noRanges }))),
    'setup.firewall.cloudflare_ips: http_from is cloudflare',
  )
  const badCidr = GOOD.replace('173.245.48.0/20', '173.245.48.0/xx')
  assert.match(
    problemsOf(() => loadEnv('qa', envDir({ 'qa.yaml': badCidr }))),
    'setup.firewall.cloudflare_ips[0]: expected a CIDR',
  )
  const sudo = GOOD.replace('setup:\n', 'setup:\n  deploy_sudo: [nginx -t]\n')
  assert.match(
    problemsOf(() => loadEnv('qa', envDir({ 'qa.yaml': sudo }))),
    'setup.deploy_sudo[0]: expected an absolute command path',
  )
  // Narrowed sudo leaves setup-server no way to root on a set-up host, unless ssh.admin is there.
  const narrowed = GOOD.replace('setup:\n', 'setup:\n  deploy_sudo: runbooks\n')
  assert.match(
    problemsOf(() => loadEnv('qa', envDir({ 'qa.yaml': narrowed }))),
    'setup.deploy_sudo: without sudo for everything, the deploy user cannot run setup-server on a set-up host',
  )
  const withAdmin = narrowed.replace(
    'ssh:\n',
    'ssh:\n  admin: { user: ce-admin, key: { file: admin_key } }\n',
  )
  const env = loadEnv('qa', envDir({ 'qa.yaml': withAdmin }))
  assert.is(env.setup.deploySudo, 'runbooks')
  assert.is(env.ssh.admin?.user, 'ce-admin')
  const sameUser = withAdmin.replace('user: ce-admin', 'user: deploy')
  assert.match(
    problemsOf(() => loadEnv('qa', envDir({ 'qa.yaml': sameUser }))),
    'ssh.admin.user: "deploy" is already the deploy, bootstrap or checker user',
  )
  // promote_from: another env, its checker key (a listed secret), never itself.
  const promoting = withAdmin.replace(
    'setup:\n',
    'promote_from: { env: staging, checker_key: { secret: STAGING_CHECKER_SSH_KEY } }\nsetup:\n',
  )
  assert.match(
    problemsOf(() => loadEnv('qa', envDir({ 'qa.yaml': promoting }))),
    'promote_from.checker_key.secret: STAGING_CHECKER_SSH_KEY must also be listed under secrets',
  )
  const listed = promoting.replace('secrets: [', 'secrets: [STAGING_CHECKER_SSH_KEY, ')
  const promoted = loadEnv('qa', envDir({ 'qa.yaml': listed }))
  assert.equal(promoted.promoteFrom, {
    env: 'staging',
    checkerKey: { file: undefined, secret: 'STAGING_CHECKER_SSH_KEY' },
  })
  assert.match(
    problemsOf(() => loadEnv('qa', envDir({ 'qa.yaml': listed.replace('env: staging', 'env: qa') }))),
    'promote_from.env: names qa itself: it must be another env',
  )
  // outside_view: the same shape (make uptime reads the watching env's history through its checker)
  const viewed = listed.replace(
    'setup:\n',
    'outside_view: { env: ops, checker_key: { file: ops_key } }\nsetup:\n',
  )
  assert.equal(loadEnv('qa', envDir({ 'qa.yaml': viewed })).outsideView, {
    env: 'ops',
    checkerKey: { file: 'ops_key', secret: undefined },
  })
  assert.match(
    problemsOf(() => loadEnv('qa', envDir({ 'qa.yaml': viewed.replace('env: ops', 'env: qa') }))),
    'outside_view.env: names qa itself: it must be another env',
  )
  assert.match(
    problemsOf(() =>
      loadEnv('qa', envDir({ 'qa.yaml': viewed.replace('{ file: ops_key }', '{ secret: OPS_KEY }') })),
    ),
    'outside_view.checker_key.secret: OPS_KEY must also be listed under secrets',
  )
  const agent = withAdmin.replace('key: { file: admin_key }', 'key: { agent: true }')
  assert.match(
    problemsOf(() => loadEnv('qa', envDir({ 'qa.yaml': agent }))),
    'ssh.admin.key',
  )
})

setupSuite.run()

test('the committed staging and production serve the public safely: strict TLS 1.3, zone origin pulls, HSTS, notify, health.edge', () => {
  for (const name of ['staging', 'production']) {
    const env = loadEnv(name)
    const edge = env.edge
    assert.ok(edge, name)
    assert.equal(
      [edge?.ssl, edge?.minTlsVersion, edge?.tlsProfile, edge?.originPulls, edge?.originPullCa, edge?.http],
      ['strict', '1.3', 'modern', 'on', 'zone', 'redirect'],
      name,
    )
    assert.ok((edge?.hstsMaxAgeS ?? 0) >= 31536000, name)
    // A year: testssl rates a certificate valid >= 5 years MEDIUM, >= 10 years HIGH.
    assert.is(edge?.originCertDays, 365, name)
    for (const event of ['deploy', 'rollback', 'backup', 'restore', 'emergency', 'alert'])
      assert.ok(
        env.notify.some((t) => t.events.includes(event)),
        `${name}: nobody hears of ${event}`,
      )
    assert.ok(env.health.edge, name)
    // Two-level names need the Advanced Certificate the coverage check asks for.
    const deep = uncoveredNames(Object.values(env.domains), edge?.zone ?? '')
    assert.is(edge?.advancedCertificate, deep.length > 0, name)
  }
  assert.equal(
    uncoveredNames(Object.values(loadEnv('staging').domains), 'conciliaextrato.com').map((p) => p.name),
    ['app.qa.conciliaextrato.com', 'api.qa.conciliaextrato.com'],
  )
})

test('a copy of env/production.yaml without edge, notify or health.edge fails, naming each missing piece', () => {
  const text = readFileSync(join(import.meta.dirname, '..', '..', 'env', 'production.yaml'), 'utf8')
  const doc = parseYaml(text) as Record<string, unknown>
  delete doc.edge
  delete doc.notify
  doc.health = { path: '/health', edge: false }
  const msg = problemsOf(() => loadEnv('production', envDir({ 'production.yaml': stringifyYaml(doc) })))
  assert.match(msg, 'production.yaml: edge: missing: a production env serves the public through Cloudflare')
  assert.match(msg, 'notify: no target takes deploy events')
  assert.match(msg, 'notify: no target takes alert events')
  assert.match(msg, 'health.edge: is false')
  const lax = parseYaml(text) as { edge: Record<string, unknown> }
  lax.edge.ssl = 'full'
  lax.edge.origin_pulls = 'optional'
  const msg2 = problemsOf(() => loadEnv('production', envDir({ 'production.yaml': stringifyYaml(lax) })))
  assert.match(msg2, 'edge.ssl: must be strict')
  assert.match(msg2, 'edge.origin_pulls: must be on')
})

test('CE_ENV_OVERRIDE points the committed production file at other machines, and changes nothing else', () => {
  const dir = envDir({
    'over.yaml': `hosts:
  prod-1: { address: 127.0.0.1, ssh_port: 2222, host_key: ${KEY}, private_address: 172.30.0.5 }
edge: { api_base: http://127.0.0.1:8801/client/v4 }
droplet: { api_base: http://127.0.0.1:8802 }
backup: { store: { endpoint: http://127.0.0.1:8803 } }
images: { registry: { server: 172.30.0.9:5443 } }
health: { edge_resolver: 127.0.0.1:5353 }
secrets_recipients: [age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq]
`,
    'bad.yaml': `hosts:
  prod-9: { address: 127.0.0.1 }
edge: { origin_pulls: 'off', api_base: http://127.0.0.1:1/client/v4 }
secrets: [X]
`,
  })
  const saved = process.env.CE_ENV_OVERRIDE
  try {
    process.env.CE_ENV_OVERRIDE = join(dir, 'over.yaml')
    const env = loadEnv('production')
    assert.is(env.overridden, join(dir, 'over.yaml'))
    assert.equal(env.hosts[0], {
      name: 'prod-1',
      address: '127.0.0.1',
      sshPort: 2222,
      hostKey: KEY,
      roles: ['web', 'data'],
      privateAddress: '172.30.0.5',
    })
    assert.is(env.edge?.apiBase, 'http://127.0.0.1:8801/client/v4')
    assert.is(env.droplet?.apiBase, 'http://127.0.0.1:8802')
    assert.is(env.backup?.store.type === 's3' && env.backup.store.endpoint, 'http://127.0.0.1:8803')
    assert.is(env.images.site, '172.30.0.9:5443/conciliaextrato/site')
    assert.is(env.images.registry?.server, '172.30.0.9:5443')
    assert.is(env.images.postgres, 'postgres:15')
    assert.is(env.health.edgeResolver, '127.0.0.1:5353')
    // Who reads the secrets file: the sandbox operator's key in place of the team's.
    assert.equal(env.secretsRecipients, ['age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq'])
    // What the env does is the committed file's.
    const committed = (() => {
      delete process.env.CE_ENV_OVERRIDE
      return loadEnv('production')
    })()
    assert.equal({ ...env.edge, apiBase: '' }, { ...committed.edge, apiBase: '' })
    assert.equal(env.notify, committed.notify)
    assert.equal(env.secrets, committed.secrets)

    process.env.CE_ENV_OVERRIDE = join(dir, 'bad.yaml')
    const msg = problemsOf(() => loadEnv('production'))
    assert.match(msg, 'bad.yaml (CE_ENV_OVERRIDE) has 3 problem(s)')
    assert.match(msg, 'bad.yaml: hosts.prod-9.address: ')
    assert.match(msg, 'has no host named prod-9')
    assert.match(
      msg,
      'bad.yaml: edge.origin_pulls: may not be overridden (only addresses, host keys and API endpoints',
    )
    assert.match(msg, 'bad.yaml: secrets: may not be overridden')
  } finally {
    if (saved === undefined) delete process.env.CE_ENV_OVERRIDE
    else process.env.CE_ENV_OVERRIDE = saved
  }
})

test('setup.deploy_keys: { of_secret: SSH_PRIVATE_KEY } authorizes the public half of the key in that secret', () => {
  const env = loadEnv('production')
  assert.equal(env.setup.deployKeySecrets, ['SSH_PRIVATE_KEY'])
  const pair = ssh2.utils.generateKeyPairSync('ed25519')
  const keys = deployKeys({ env, secrets: { SSH_PRIVATE_KEY: pair.private } } as unknown as Context)
  const derived = keys[keys.length - 1]
  assert.is(derived?.line.split(' ').slice(0, 2).join(' '), pair.public.split(' ').slice(0, 2).join(' '))
  assert.is(keys.length, env.setup.deployKeys.length + 1)
  assert.throws(
    () => deployKeys({ env, secrets: { SSH_PRIVATE_KEY: 'nope' } } as unknown as Context),
    /the secret SSH_PRIVATE_KEY \(of_secret\) is not a private key ssh can use/,
  )
  const dir = envDir({ 'qa.yaml': GOOD.replace("deploy_keys: ['", "deploy_keys: [{ of_secret: CI_KEY }, '") })
  assert.match(
    problemsOf(() => loadEnv('qa', dir)),
    'setup.deploy_keys: of_secret CI_KEY must also be listed under secrets',
  )
})

test('the committed envs keep their backups apart: each its own bucket (and so its own Spaces key)', () => {
  const stores = ['staging', 'production'].map((name) => {
    const store = loadEnv(name).backup?.store
    assert.ok(store?.type === 's3', `${name}: backups go to a Space`)
    return store.type === 's3' ? `${store.endpoint} ${store.bucket}` : ''
  })
  assert.is.not(stores[0], stores[1], `staging and production share ${stores[0]}`)
})

test.run()

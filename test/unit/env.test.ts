import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { listEnvs, loadEnv } from '../../lib/env/load.ts'
import { loadSecrets, readPrivateKey } from '../../lib/env/secrets.ts'
import { InputError } from '../../lib/report/errors.ts'
import { clearSecrets, redact } from '../../lib/report/redact.ts'
import { suite } from '../harness.ts'

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
secrets: [SSH_PRIVATE_KEY, POSTGRES_PASSWORD]
setup:
  deploy_keys: ['${PUB}']
  firewall: { http_from: cloudflare, cloudflare_ips: [173.245.48.0/20, '2400:cb00::/32'] }
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

test('missing secrets are listed by name with where to set them', () => {
  const dir = envDir({ 'qa.yaml': GOOD })
  const env = loadEnv('qa', dir)
  const msg = problemsOf(() => loadSecrets(env, {}))
  assert.match(msg, '2 secret(s)')
  assert.match(msg, `SSH_PRIVATE_KEY: set it in the environment (CI) or in ${join(dir, 'qa.secrets.env')}`)
  assert.match(msg, 'POSTGRES_PASSWORD')
})

test('secrets come from the process env first, then the secrets file, and are redacted', () => {
  clearSecrets()
  const dir = envDir({
    'qa.yaml': GOOD,
    'qa.secrets.env': 'POSTGRES_PASSWORD=from-file-pw\nSSH_PRIVATE_KEY=file-key\n',
  })
  const secrets = loadSecrets(loadEnv('qa', dir), { SSH_PRIVATE_KEY: 'env-key-value' })
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

test.run()

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
})

setupSuite.run()

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'
import { checkSecretsContract, makeCallsWithVars } from '../../lib/ci/secrets-contract.ts'
import { loadEnv } from '../../lib/env/load.ts'
import { secretsFor } from '../../lib/env/needs.ts'
import { loadSecrets } from '../../lib/env/secrets.ts'
import { InputError } from '../../lib/report/errors.ts'
import { clearSecrets } from '../../lib/report/redact.ts'
import { pruneBackups } from '../../runbooks/prune-backups.ts'
import { suite } from '../harness.ts'
import { makeRunbook, RUNBOOKS, secretsOfMake } from '../support/runbooks.ts'

// Each runbook loads only the secrets it needs for the env (by what the env enables), and every
// workflow step that runs one gets exactly those, from its own env:.
const test = suite('secrets by runbook: needs, loading, and the workflows contract')
const ROOT = join(import.meta.dirname, '..', '..')
const production = loadEnv('production')
const staging = loadEnv('staging')
const byRunbook = (env = production) =>
  Object.fromEntries(Object.entries(RUNBOOKS).map(([n, s]) => [n, secretsFor(env, s.needs(env, {}))]))
const CLOUD = ['CLOUDFLARE_API_TOKEN', 'DIGITALOCEAN_TOKEN']

test("the committed envs: only setup-server, verify-server, access, emergency and image carry the administrator's key", () => {
  for (const env of [production, staging]) {
    assert.ok(
      env.ssh.admin && env.setup.deploySudo === 'runbooks',
      `${env.name}: narrowed sudo and ssh.admin`,
    )
    const needs = byRunbook(env)
    const carrying = Object.keys(needs)
      .filter((n) => needs[n]?.includes('ADMIN_SSH_KEY'))
      .sort()
    assert.equal(carrying, ['access', 'emergency', 'image', 'setup-server', 'verify-server'], env.name)
  }
})

test('the committed envs: the read-only runbooks carry the checker key: no deploy key, backup key, cloud token or app password', () => {
  for (const env of [production, staging]) {
    const needs = byRunbook(env)
    for (const name of ['health', 'status', 'uptime', 'releases', 'report']) {
      const got = needs[name] ?? []
      assert.ok(got.includes('CHECKER_SSH_KEY'), `${env.name} ${name}: ${got}`)
      for (const bad of [
        'SSH_PRIVATE_KEY',
        'BACKUP_KEY',
        ...CLOUD,
        'POSTGRES_PASSWORD',
        'REDIS_PASSWORD',
        'GHCR_TOKEN',
      ])
        assert.not.ok(got.includes(bad), `${env.name} ${name} loads ${bad}`)
    }
    // the outside view (uptime, the status page, the monthly report): the watching env's checker key, which nothing else loads
    const watcherKey = Object.keys(needs).filter((n) => needs[n]?.includes('WATCHER_CHECKER_SSH_KEY'))
    assert.equal(watcherKey, ['report', 'status-page', 'uptime'], env.name)
    // the status page: read as the checker, published with the Spaces key; no backup key, no deploy key
    assert.equal(needs['status-page'], [
      'CHECKER_SSH_KEY',
      'SPACES_ACCESS_KEY_ID',
      'SPACES_SECRET_ACCESS_KEY',
      'WATCHER_CHECKER_SSH_KEY',
    ])
    assert.equal(needs.alert, ['ONCALL_SLACK_WEBHOOK_URL'])
    assert.equal(needs.backups, ['BACKUP_KEY', 'SPACES_ACCESS_KEY_ID', 'SPACES_SECRET_ACCESS_KEY'])
    // Retention verifies the signed COMPLETE markers: planted ones must not fill the keep slots.
    assert.equal(needs['prune-backups'], ['BACKUP_KEY', 'SPACES_ACCESS_KEY_ID', 'SPACES_SECRET_ACCESS_KEY'])
    // Deleting takes the prune key, which no other runbook (and so no workflow) loads.
    assert.equal(secretsFor(env, pruneBackups.needs(env, { apply: true })), [
      'BACKUP_KEY',
      'SPACES_ACCESS_KEY_ID',
      'SPACES_PRUNE_ACCESS_KEY_ID',
      'SPACES_PRUNE_SECRET_ACCESS_KEY',
      'SPACES_SECRET_ACCESS_KEY',
    ])
    for (const [name, got] of Object.entries(needs))
      assert.not.ok(
        got.some((n) => n.startsWith('SPACES_PRUNE_')),
        `${env.name} ${name} loads the prune key`,
      )
    assert.equal(needs.dns, ['CLOUDFLARE_API_TOKEN', 'SSH_PRIVATE_KEY'])
  }
})

test("deploy: production backs up before migrating (backup key, store) and reads staging's history (its checker key), staging does neither; no cloud token", () => {
  const base = [
    'GHCR_TOKEN',
    'POSTGRES_PASSWORD',
    'REDIS_PASSWORD',
    // error_tracking: the release and a deploy marker at Sentry
    'SENTRY_AUTH_TOKEN',
    'SSH_PRIVATE_KEY',
    'TEAM_SLACK_WEBHOOK_URL',
  ]
  assert.equal(byRunbook(staging).deploy, base)
  assert.equal(
    byRunbook(production).deploy,
    [
      ...base,
      'BACKUP_KEY',
      'SPACES_ACCESS_KEY_ID',
      'SPACES_SECRET_ACCESS_KEY',
      'STAGING_CHECKER_SSH_KEY',
    ].sort(),
  )
  assert.not.ok(byRunbook(production).deploy?.includes('DIGITALOCEAN_TOKEN'))
  // ALLOW_UNSTAGED=1 (and emergency, which passes it) does not read staging: no staging key.
  const unstaged = secretsFor(
    production,
    RUNBOOKS.deploy?.needs(production, { 'allow-unstaged': true }) ?? [],
  )
  assert.not.ok(unstaged.includes('STAGING_CHECKER_SSH_KEY'))
  assert.not.ok(byRunbook(production).emergency?.includes('STAGING_CHECKER_SSH_KEY'))
})

test('emergency: the droplet token only with CREATE=1; everything its phases need', () => {
  const plain = secretsOfMake('emergency', { ENV: 'production' }, production) ?? []
  const create = secretsOfMake('emergency', { ENV: 'production', CREATE: '1' }, production) ?? []
  assert.not.ok(plain.includes('DIGITALOCEAN_TOKEN'))
  assert.equal(
    create.filter((n) => !plain.includes(n)),
    ['DIGITALOCEAN_TOKEN'],
  )
  for (const name of ['BACKUP_KEY', 'CLOUDFLARE_API_TOKEN', 'GHCR_TOKEN', 'ONCALL_SLACK_WEBHOOK_URL'])
    assert.ok(plain.includes(name), name)
})

test('secret:<NAME> asks for one secret by name; notify:<event> only the targets taking that event', () => {
  assert.equal(secretsFor(production, ['secret:DEMO_TOKEN', 'notify:deploy']), [
    'DEMO_TOKEN',
    'TEAM_SLACK_WEBHOOK_URL',
  ])
  assert.equal(secretsFor(production, ['notify:alert']), ['ONCALL_SLACK_WEBHOOK_URL'])
})

test('make targets are read from the Makefile: the runbook, its fixed flags and the variables it maps', () => {
  assert.equal(makeRunbook('restore-drill', {}), { runbook: 'restore', args: { drill: true } })
  assert.equal(makeRunbook('dns', { APPLY: '1' }), { runbook: 'dns', args: { apply: true } })
  assert.equal(makeRunbook('deploy', { RELEASE: 'abc' }), { runbook: 'deploy', args: { release: 'abc' } })
  assert.is(makeRunbook('gates', {}), undefined)
  assert.is(makeRunbook('test', {}), undefined)
})

test('a run loads only what it needs and lists the missing ones by runbook; reading an undeclared one is a bug', async () => {
  clearSecrets()
  const dir = mkdtempSync(join(tmpdir(), 'ce-needs-'))
  writeFileSync(join(dir, 'production.yaml'), readFileSync(join(ROOT, 'env/production.yaml')))
  const env = loadEnv('production', dir)
  const names = secretsFor(env, RUNBOOKS.health?.needs(env, {}) ?? [])
  // Only the health job's three secrets are set: enough for health, as in the scheduled workflow.
  const source = { CHECKER_SSH_KEY: 'k', SPACES_ACCESS_KEY_ID: 'id-123', SPACES_SECRET_ACCESS_KEY: 'sk-456' }
  const secrets = await loadSecrets(env, source, { runbook: 'health', names })
  assert.is(secrets.SPACES_ACCESS_KEY_ID, 'id-123')
  assert.throws(() => secrets.BACKUP_KEY, /health read the secret BACKUP_KEY, which it does not declare/)
  assert.is((secrets as Record<string, string>).NOT_AN_ENV_SECRET, undefined)
  try {
    await loadSecrets(env, source, {
      runbook: 'deploy',
      names: secretsFor(env, RUNBOOKS.deploy?.needs(env, {}) ?? []),
    })
    assert.unreachable('deploy should not load without its secrets')
  } catch (err) {
    assert.instance(err, InputError)
    const msg = (err as Error).message
    assert.match(msg, '8 secret(s) that deploy needs for env production are not set:')
    for (const n of [
      'SSH_PRIVATE_KEY',
      'BACKUP_KEY',
      'GHCR_TOKEN',
      'POSTGRES_PASSWORD',
      'REDIS_PASSWORD',
      'TEAM_SLACK_WEBHOOK_URL',
      'STAGING_CHECKER_SSH_KEY',
      'SENTRY_AUTH_TOKEN',
    ])
      assert.match(msg, `${n}: set it in the environment`)
    assert.not.match(msg, 'DIGITALOCEAN_TOKEN')
  }
  clearSecrets()
})

const ENVS = ['production', 'staging']
/** A GitHub expression, written where a template literal would read it as one of its own. */
const expr = (inner: string) => `${'$'}{{ ${inner} }}`
const envOf = (name: string) => (name === 'production' ? production : staging)
const contract = (file: string, content: string) =>
  checkSecretsContract(file, content, ENVS, (target, vars, env) => secretsOfMake(target, vars, envOf(env)))
const workflow = (name: string) => readFileSync(join(ROOT, '.github/workflows', name), 'utf8')

test('every workflow step that runs a runbook gets exactly the secrets it needs, from its own env:', () => {
  for (const file of [
    'deploy.yml',
    'rollback.yml',
    'emergency.yml',
    'scheduled.yml',
    'ci.yml',
    'gates.yml',
    'images.yml',
  ])
    assert.equal(contract(file, workflow(file)), [], file)
})

test('the contract fails on a step that lacks a needed secret, on a surplus one, and on job-level secrets', () => {
  const doc = parseYaml(workflow('deploy.yml'))
  const steps = doc.jobs.deploy.steps as { name?: string; env?: Record<string, string> }[]
  const prod = steps.find((s) => s.name === 'deploy (production)')
  assert.ok(prod?.env?.BACKUP_KEY)
  delete prod?.env?.BACKUP_KEY
  if (prod?.env) prod.env.DIGITALOCEAN_TOKEN = expr('secrets.DIGITALOCEAN_TOKEN')
  const problems = contract('deploy.yml', stringifyYaml(doc))
  assert.equal(problems.length, 2, problems.join('\n'))
  assert.match(problems[0] ?? '', 'make deploy on production needs BACKUP_KEY, which the step')
  assert.match(problems[1] ?? '', 'make deploy on production does not need DIGITALOCEAN_TOKEN')

  // Round 1's deploy: every env secret for every step, job-wide; its staging run lacked DIGITALOCEAN_TOKEN.
  const old = `jobs:
  deploy:
    env:
      SSH_PRIVATE_KEY: \${{ secrets.SSH_PRIVATE_KEY }}
    steps:
      - run: make deploy ENV="\${{ inputs.environment }}" YES=1
`
  const found = contract('old.yml', old)
  assert.match(found[0] ?? '', 'jobs.deploy.env passes SSH_PRIVATE_KEY to every step of the job')
  assert.ok(found.some((p) => p.includes('make deploy on staging needs GHCR_TOKEN')))
})

test('make calls with their variables, across lines and &&', () => {
  assert.equal(
    makeCallsWithVars(`make health ENV=${expr('matrix.environment')} JSON=1 && make alert ENV=x TITLE="a b"`),
    [
      { target: 'health', vars: { ENV: expr('matrix.environment'), JSON: '1' } },
      { target: 'alert', vars: { ENV: 'x', TITLE: 'a b' } },
    ],
  )
})

test.run()

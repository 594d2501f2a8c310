import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateX25519Identity, identityToRecipient } from 'age-encryption'
import { parse as parseDotenv } from 'dotenv'
import * as assert from 'uvu/assert'
import { quote } from '../../lib/commands/shell.ts'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { decryptSecretsText, encryptSecretsText } from '../../lib/env/secrets-age.ts'
import { quoteValue } from '../../lib/secrets/edit.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { health } from '../../runbooks/health.ts'
import { rotateSecret } from '../../runbooks/rotate-secret.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { startLoad } from '../bench/load.ts'
import { suite } from '../harness.ts'
import { buildFixtureImages } from '../sandbox/fixtures.ts'
import {
  createTestBed,
  destroyTestBed,
  FIXTURE_DOMAINS,
  getThrough,
  onDroplet,
  runCaptured,
  type TestBed,
  writeManagedEnv,
} from '../support/test-bed.ts'

// Secrets kept encrypted with age (env/<env>.secrets.age) and make rotate-secret, on a sandbox droplet:
// a real deploy reads them from the age file; each data password is rotated under load.
const test = suite('secrets: the age file, make rotate-secret under load', { timeoutS: 300 })
let bed: TestBed
let web: SandboxDroplet
let identity = ''
let ageFile = ''

const PG = `pg-s3cret with spaces $HOME #1 'q'`
const REDIS = `redis-s3cret $USER #2 "d" 'q'`

async function saved(): Promise<Record<string, string>> {
  return parseDotenv(
    await decryptSecretsText(readFileSync(ageFile), ageFile, { keys: [identity], from: 'test' }, 'sec'),
  )
}

/** Whether Postgres lets `user` in with `password` over TCP (the way the apps log in). */
async function pgLogin(user: string, password: string): Promise<string> {
  return onDroplet(
    web,
    `pg=$(docker ps -q --filter label=com.docker.compose.service=postgres); PGPASSWORD=${quote(password)} docker exec -e PGPASSWORD "$pg" psql -h 127.0.0.1 -U ${user} -d conciliaextrato -Atc 'select current_user' 2>&1 || true`,
  )
}

async function redisPing(password: string): Promise<string> {
  return onDroplet(
    web,
    `r=$(docker ps -q --filter label=com.docker.compose.service=redis); REDISCLI_AUTH=${quote(password)} docker exec -e REDISCLI_AUTH "$r" redis-cli --no-auth-warning PING 2>&1 || true`,
  )
}

async function rotateUnderLoad(name: string) {
  const load = startLoad(web.ports.http, Object.values(FIXTURE_DOMAINS), '/health', 3, 1_000_000, 30, 30_000)
  const run = await runCaptured(rotateSecret, ['--env', 'sec', '--name', name])
  const seen = await load.stop()
  return { ...run, seen }
}

test.before(async () => {
  await buildFixtureImages()
  bed = await createTestBed('secrets', ['web-1'], { image: 'provisioned' })
  web = bed.droplets[0] as SandboxDroplet
  identity = await generateX25519Identity()
  writeManagedEnv(bed, 'sec', {
    health: { path: '/health', timeout_s: 20 },
    secrets_recipients: [await identityToRecipient(identity)],
  })
  // The passwords come from the encrypted file only: none in this process's environment.
  delete process.env.POSTGRES_PASSWORD
  delete process.env.REDIS_PASSWORD
  process.env.AGE_IDENTITY = identity
  ageFile = join(bed.envDir, 'sec.secrets.age')
  writeFileSync(
    ageFile,
    await encryptSecretsText(`POSTGRES_PASSWORD=${quoteValue(PG)}\nREDIS_PASSWORD=${quoteValue(REDIS)}\n`, [
      await identityToRecipient(identity),
    ]),
  )
  const setup = await runCaptured(setupServer, ['--env', 'sec'])
  if (setup.code !== 0) throw new Error(`setup-server failed:\n${setup.out}`)
})

test.after(async () => {
  await destroyTestBed(bed)
})

test('a deploy reads its passwords from the age file; the apps log in with them; a plaintext file is refused', async () => {
  const dep = await runCaptured(deploy, ['--env', 'sec', '--release', 'v1'])
  assert.is(dep.code, 0, dep.out)
  assert.is((await getThrough(web.ports.http, FIXTURE_DOMAINS.api, '/health')).status, 200)
  assert.is((await pgLogin('conciliaextrato', PG)).trim(), 'conciliaextrato')
  assert.is((await redisPing(REDIS)).trim(), 'PONG')
  for (const secret of [PG, REDIS]) assert.not.ok(dep.out.includes(secret), 'no password in the output')

  const plain = join(bed.envDir, 'sec.secrets.env')
  writeFileSync(plain, `POSTGRES_PASSWORD=x\n`)
  const refused = await runCaptured(deploy, ['--env', 'sec', '--release', 'v1'])
  assert.is(refused.code, 2)
  assert.match(refused.out, 'holds secrets in plaintext')
  assert.match(refused.out, 'make secrets-edit ENV=sec IMPORT=1')
  rmSync(plain)
})

test('rotate POSTGRES_PASSWORD under load: no failed request; saved encrypted; the old password and the twin refused', async () => {
  const { code, out, seen } = await rotateUnderLoad('POSTGRES_PASSWORD')
  assert.is(code, 0, out)
  assert.is(seen.failed, 0, `failed requests: ${JSON.stringify(seen.failures)}`)
  assert.ok(seen.requests > 50, `only ${seen.requests} requests were sent`)
  const now = (await saved()).POSTGRES_PASSWORD ?? ''
  assert.is.not(now, PG)
  assert.match(now, /^[A-Za-z0-9_-]{43}$/)
  assert.is((await saved()).REDIS_PASSWORD, REDIS, 'the other secret is kept')
  assert.is((await pgLogin('conciliaextrato', now)).trim(), 'conciliaextrato')
  assert.match(await pgLogin('conciliaextrato', PG), 'password authentication failed')
  assert.match(
    await pgLogin('conciliaextrato_rotating', now),
    /is not permitted to log in|password authentication failed/,
  )
  assert.not.ok(out.includes(now) || out.includes(PG), 'no password in the output')
  assert.match(out, 'saved in')
  // The api logs in with it (its health checks Postgres); one colour runs, the other was removed.
  assert.is((await getThrough(web.ports.http, FIXTURE_DOMAINS.api, '/health')).status, 200)
  const colours = await onDroplet(
    web,
    `docker ps -a --format '{{.Label "com.docker.compose.project"}}' | sort -u`,
  )
  assert.is(colours.split('\n').filter((p) => /ce-sec-(blue|green)$/.test(p)).length, 1, colours)
})

test('rotate REDIS_PASSWORD under load: no failed request; Redis takes only the new one; health, and the next deploy, use it', async () => {
  const { code, out, seen } = await rotateUnderLoad('REDIS_PASSWORD')
  assert.is(code, 0, out)
  assert.is(seen.failed, 0, `failed requests: ${JSON.stringify(seen.failures)}`)
  const now = (await saved()).REDIS_PASSWORD ?? ''
  assert.is.not(now, REDIS)
  assert.is((await redisPing(now)).trim(), 'PONG')
  assert.match(await redisPing(REDIS), /WRONGPASS|NOAUTH/)
  // make health (as the checker, through its helper) and the next deploy read the current password.
  const h = await runCaptured(health, ['--env', 'sec'])
  assert.match(h.out, /web-1 redis.*answers/, h.out)
  assert.not.match(h.out, /web-1 redis.*not answering/)
  // CI still holding the old value in its environment (a GitHub secret not updated): refused before
  // anything changes, naming the secret; the host's data.env keeps the current password.
  const dataEnv = () => onDroplet(web, 'sha256sum /srv/conciliaextrato/sec/data.env')
  const before = await dataEnv()
  process.env.REDIS_PASSWORD = REDIS
  const stale = await runCaptured(deploy, ['--env', 'sec', '--release', 'v2']).finally(
    () => delete process.env.REDIS_PASSWORD,
  )
  assert.is(stale.code, 3, stale.out)
  assert.match(stale.out, 'REDIS_PASSWORD given to this run differs from what the data services use')
  assert.not.match(stale.out, 'POSTGRES_PASSWORD given')
  assert.not.ok(stale.out.includes(REDIS) || stale.out.includes(now), 'no password in the output')
  assert.is(await dataEnv(), before, 'data.env untouched')
  assert.is((await redisPing(now)).trim(), 'PONG')
  const dep = await runCaptured(deploy, ['--env', 'sec', '--release', 'v2'])
  assert.is(dep.code, 0, dep.out)
  assert.is((await getThrough(web.ports.http, FIXTURE_DOMAINS.api, '/version')).body.trim(), 'v2')
  const refused = await runCaptured(rotateSecret, ['--env', 'sec', '--name', 'GHCR_TOKEN'])
  assert.is(refused.code, 2)
  assert.match(refused.out, 'NAME=GHCR_TOKEN cannot be rotated by this runbook')
})

test.run()

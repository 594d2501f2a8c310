import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import {
  acceptTwinSql,
  heldPasswordsProbe,
  newPassword,
  passwordsDiffering,
  psqlFromStdin,
  redisAclInput,
  redisArg,
  redisCliFromStdin,
  retireTwinSql,
  scramVerifier,
  setPasswordSql,
} from '../../lib/commands/rotate.ts'
import type { Env } from '../../lib/env/load.ts'
import { InputError } from '../../lib/report/errors.ts'
import { saveSecret, secretHome } from '../../lib/secrets/edit.ts'
import { rotatable } from '../../lib/secrets/rotate.ts'
import { dataEnv } from '../../lib/stack/files.ts'
import { suite } from '../harness.ts'
import { withFakeDocker } from '../support/fake-docker.ts'

const test = suite('make rotate-secret: commands and where the new value goes')
const T = { env: 'staging', user: 'conciliaextrato', db: 'conciliaextrato' }

test('NAME: the two data passwords only, anything else refused with what to do', () => {
  assert.is(rotatable('POSTGRES_PASSWORD'), 'POSTGRES_PASSWORD')
  assert.is(rotatable('REDIS_PASSWORD'), 'REDIS_PASSWORD')
  for (const bad of [undefined, 'GHCR_TOKEN', 'postgres_password'])
    assert.throws(
      () => rotatable(bad),
      (e: Error) => e instanceof InputError && /NAME/.test(e.message),
    )
})

test('new passwords: 32 random bytes, URL-safe, never the same twice', () => {
  const a = newPassword()
  assert.match(a, /^[A-Za-z0-9_-]{43}$/)
  assert.is.not(newPassword(), a)
})

test('Postgres gets a SCRAM verifier, never the password; the twin acts as the env user; SQL on stdin', () => {
  const salt = Buffer.alloc(16, 7)
  const v = scramVerifier('s3cret', salt)
  assert.match(v, /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/)
  assert.is(scramVerifier('s3cret', salt), v, 'the same salt gives the same verifier')
  assert.is.not(scramVerifier('s3cret'), v, 'a fresh salt each time')
  assert.is.not(scramVerifier('other', salt), v)
  assert.not.match(v, 's3cret')
  const accept = acceptTwinSql('conciliaextrato', v)
  assert.match(accept, `CREATE ROLE "conciliaextrato_rotating"`)
  assert.match(accept, `ALTER ROLE "conciliaextrato_rotating" LOGIN PASSWORD '${v}';`)
  assert.match(accept, 'GRANT "conciliaextrato" TO "conciliaextrato_rotating";')
  assert.match(accept, `ALTER ROLE "conciliaextrato_rotating" SET role = 'conciliaextrato';`)
  assert.is(setPasswordSql('conciliaextrato', v), `ALTER ROLE "conciliaextrato" PASSWORD '${v}';\n`)
  assert.match(
    retireTwinSql('conciliaextrato'),
    'ALTER ROLE "conciliaextrato_rotating" NOLOGIN PASSWORD NULL',
  )
  const cmd = psqlFromStdin(T)
  assert.match(
    cmd,
    'docker exec -i "$pg" psql -X -q -v ON_ERROR_STOP=1 -U conciliaextrato -d conciliaextrato',
  )
  assert.match(cmd, 'label=com.docker.compose.project=ce-staging-data')
})

test('Redis: passwords as \\xHH inside quotes on redis-cli stdin; the command fails unless every reply is OK', () => {
  const pw = `a "b" 'c' $d\\e`
  const arg = redisArg(`>${pw}`)
  const bytes = Buffer.from(
    arg
      .slice(1, -1)
      .split('\\x')
      .filter(Boolean)
      .map((h) => Number.parseInt(h, 16)),
  ).toString('utf8')
  assert.is(bytes, `>${pw}`)
  assert.is(
    redisAclInput('old', '<', 'new'),
    `AUTH ${redisArg('old')}\nACL SETUSER default ${redisArg('<new')}\n`,
  )
  const docker = withFakeDocker(`#!/bin/sh
case $1 in ps) echo r1;; exec) cat >/dev/null; printf '%s\\n' $REPLIES;; esac
`)
  const cmd = redisCliFromStdin(T)
  assert.is(docker(`export REPLIES='OK OK'; ${cmd}`).code, 0)
  const bad = docker(`export REPLIES='OK WRONGPASS'; ${cmd}`)
  assert.is.not(bad.code, 0)
  assert.match(bad.out, 'WRONGPASS')
  assert.is.not(docker(`export REPLIES=''; ${cmd}`).code, 0, 'no reply at all is a failure')
})

test('the new value goes where the secret is kept: never the environment; a plaintext line replaced in place', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ce-rotate-'))
  const env = {
    name: 'local',
    file: join(dir, 'local.yaml'),
    secrets: ['POSTGRES_PASSWORD', 'REDIS_PASSWORD'],
  } as unknown as Env
  assert.equal(secretHome(env, 'POSTGRES_PASSWORD', { POSTGRES_PASSWORD: 'x' }), { kind: 'environment' })
  assert.equal(secretHome(env, 'POSTGRES_PASSWORD', {}), {
    kind: 'plain',
    file: join(dir, 'local.secrets.env'),
  })
  const file = join(dir, 'local.secrets.env')
  writeFileSync(file, '# the sandbox\nPOSTGRES_PASSWORD=old\nREDIS_PASSWORD=keep\n')
  await saveSecret(env, 'POSTGRES_PASSWORD', 'n3w-Value_x', {})
  assert.is(readFileSync(file, 'utf8'), '# the sandbox\nPOSTGRES_PASSWORD=n3w-Value_x\nREDIS_PASSWORD=keep\n')
  const withRecipients = { ...env, secretsRecipients: [] } as Env
  assert.equal(secretHome(withRecipients, 'POSTGRES_PASSWORD', {}), {
    kind: 'age',
    file: join(dir, 'local.secrets.age'),
  })
})

test("a deploy compares its data passwords with the host's data.env by salted hash, values never printed", () => {
  const dir = mkdtempSync(join(tmpdir(), 'ce-held-'))
  const file = join(dir, 'data.env')
  const pg = `p'w $(x) "q" \\ end`
  const redis = newPassword()
  const env = {
    name: 'staging',
    images: { postgres: 'postgres:15', redis: 'redis:7' },
  } as unknown as Env
  const names = ['POSTGRES_PASSWORD', 'REDIS_PASSWORD'] as const
  const salt = 'a1b2c3'
  const probe = heldPasswordsProbe(file, names, salt)
  const run = () => execFileSync('bash', ['-c', probe], { encoding: 'utf8' })
  // No data.env yet (a new host): nothing printed, nothing differs.
  assert.is(run(), '')
  assert.equal(passwordsDiffering('', { POSTGRES_PASSWORD: 'x', REDIS_PASSWORD: 'y' }, salt), [])
  // The file a deploy writes (dataEnv), with a password full of shell metacharacters.
  writeFileSync(file, dataEnv(env, { POSTGRES_PASSWORD: pg, REDIS_PASSWORD: redis }))
  const out = run()
  assert.not.match(out, redis)
  assert.equal(passwordsDiffering(out, { POSTGRES_PASSWORD: pg, REDIS_PASSWORD: redis }, salt), [])
  assert.equal(passwordsDiffering(out, { POSTGRES_PASSWORD: pg, REDIS_PASSWORD: 'stale' }, salt), [
    'REDIS_PASSWORD',
  ])
  assert.equal(passwordsDiffering(out, { POSTGRES_PASSWORD: 'old', REDIS_PASSWORD: 'old' }, salt), [
    'POSTGRES_PASSWORD',
    'REDIS_PASSWORD',
  ])
  // Another salt, another hash: the same value does not match a hash made with a different salt.
  assert.equal(passwordsDiffering(out, { POSTGRES_PASSWORD: pg, REDIS_PASSWORD: redis }, 'other'), [
    'POSTGRES_PASSWORD',
    'REDIS_PASSWORD',
  ])
  assert.not.match(probe, redis)
})

test.run()

import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { suite } from '../harness.ts'
import { LABEL } from '../sandbox/droplets.ts'
import { ensureDockerEngine, sh } from '../sandbox/engine.ts'
import { appImage, buildFixtureImages, DATA_IMAGES } from '../sandbox/fixtures.ts'

// The stand-ins must behave like the real thing before any runbook is tested on them.
const test = suite('fixture images (site, saas, api, postgres, redis)', { timeoutS: 120 })
const id = `t${process.pid}-fix`
const net = `ce-${id}`
const PG_PASSWORD = 'pw with spaces:@/%'
const DB_URL = `postgres://app:${encodeURIComponent(PG_PASSWORD)}@pg:5432/conciliaextrato`

async function run(name: string, image: string, env: Record<string, string> = {}): Promise<void> {
  const envArgs = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`])
  await sh`docker run -d --name ${`${id}-${name}`} --network-alias ${name} --label ${`${LABEL}=${id}`} --network ${net} -p 127.0.0.1::8080 ${envArgs} ${image}`
}

async function port(name: string): Promise<number> {
  return Number((await sh`docker port ${`${id}-${name}`} 8080/tcp`).stdout.trim().split(':').pop())
}

async function waitFor(url: string, status = 200): Promise<Response> {
  let last = ''
  for (let i = 0; i < 60; i++) {
    try {
      const res = await fetch(url)
      if (res.status === status) return res
      last = `status ${res.status}`
    } catch (err) {
      last = (err as Error).message
    }
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error(`${url} never answered ${status}: ${last}`)
}

async function migrate(release: string): Promise<{ exitCode: number; out: string }> {
  const res =
    await sh`docker run --rm --network ${net} -e ${`DATABASE_URL=${DB_URL}`} ${appImage('api', release)} migrate`.nothrow()
  return { exitCode: res.exitCode ?? -1, out: res.stdout + res.stderr }
}

test.before(async () => {
  await ensureDockerEngine()
  await buildFixtureImages()
  await sh`docker network create --label ${`${LABEL}=${id}`} ${net}`
  const pgEnv = { POSTGRES_USER: 'app', POSTGRES_PASSWORD: PG_PASSWORD, POSTGRES_DB: 'conciliaextrato' }
  await sh`docker run -d --name ${`${id}-pg`} --network-alias pg --label ${`${LABEL}=${id}`} --network ${net} ${Object.entries(pgEnv).flatMap(([k, v]) => ['-e', `${k}=${v}`])} ${DATA_IMAGES.postgres}`
  await sh`docker run -d --name ${`${id}-redis`} --network-alias redis --label ${`${LABEL}=${id}`} --network ${net} ${DATA_IMAGES.redis} redis-server --requirepass redispw --appendonly yes`
  for (let i = 0; i < 60; i++) {
    if ((await sh`docker exec ${`${id}-pg`} pg_isready -U app -d conciliaextrato`.nothrow()).exitCode === 0)
      return
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error('postgres did not become ready')
})

test.after(async () => {
  const ids = (await sh`docker ps -aq --filter ${`label=${LABEL}=${id}`}`).stdout.split('\n').filter(Boolean)
  if (ids.length) await sh`docker rm -f -v ${ids}`
  await sh`docker network rm ${net}`.nothrow()
})

test('postgres takes the official variables; redis requires its password and keeps AOF', async () => {
  const who =
    await sh`docker exec ${`${id}-pg`} psql -U app -d conciliaextrato -Atc ${'select current_user, current_database()'}`
  assert.is(who.stdout.trim(), 'app|conciliaextrato')
  const hba = await sh`docker exec ${`${id}-pg`} sh -c ${'tail -n1 "$PGDATA/pg_hba.conf"'}`
  assert.is(hba.stdout.trim(), 'host all all all scram-sha-256')
  const noauth = await sh`docker exec ${`${id}-redis`} redis-cli ping`.nothrow()
  assert.match(noauth.stdout, 'NOAUTH')
  const aof =
    await sh`docker exec ${`${id}-redis`} redis-cli -a redispw --no-auth-warning config get appendonly`
  assert.match(aof.stdout, 'yes')
})

test('api migrate applies v1, then only the new v2 migration; a bad migration fails and changes nothing', async () => {
  const v1 = await migrate('v1')
  assert.is(v1.exitCode, 0, v1.out)
  assert.match(v1.out, 'applied 0001_init')
  assert.not.match(v1.out, PG_PASSWORD)
  const v2 = await migrate('v2')
  assert.is(v2.exitCode, 0, v2.out)
  assert.match(v2.out, 'already applied 0001_init')
  assert.match(v2.out, 'applied 0002_statement_reference')
  const bad = await migrate('badmig')
  assert.is(bad.exitCode, 1, bad.out)
  assert.match(bad.out, '0002_broken_reference')
  const versions =
    await sh`docker exec ${`${id}-pg`} psql -U app -d conciliaextrato -Atc ${'select version from schema_migrations order by 1'}`
  assert.is(versions.stdout.trim(), '0001_init\n0002_statement_reference')
})

test('each service answers /health and /version with its release; api checks its database and redis', async () => {
  const env = { DATABASE_URL: DB_URL, REDIS_URL: 'redis://:redispw@redis:6379' }
  await run('api', appImage('api', 'v2'), env)
  await run('site', appImage('site', 'v1'))
  const api = await waitFor(`http://127.0.0.1:${await port('api')}/health`)
  assert.equal(await api.json(), { status: 'ok', service: 'api', release: 'v2' })
  assert.is(await (await fetch(`http://127.0.0.1:${await port('site')}/version`)).text(), 'v1\n')
  const counts = (await (await fetch(`http://127.0.0.1:${await port('api')}/db/counts`)).json()) as Record<
    string,
    number
  >
  assert.ok((counts.accounts ?? 0) > 0)
  const health = await sh`docker inspect -f ${'{{.State.Health.Status}}'} ${`${id}-site`}`
  assert.ok(['starting', 'healthy'].includes(health.stdout.trim()))
})

test('the broken release fails its health check; the fault file injects errors', async () => {
  await run('broken', appImage('saas', 'broken'))
  const res = await waitFor(`http://127.0.0.1:${await port('broken')}/health`, 500)
  assert.is(((await res.json()) as { status: string }).status, 'broken')
  await run('faulty', appImage('site', 'v2'))
  const url = `http://127.0.0.1:${await port('faulty')}/health`
  await waitFor(url)
  // The images have no shell: the fault file goes in with docker cp.
  const fault = join(mkdtempSync(join(tmpdir(), 'ce-fault-')), 'fault')
  writeFileSync(fault, 'status=503', { mode: 0o644 })
  await sh`docker cp ${fault} ${`${id}-faulty:/tmp/fault`}`
  assert.is((await fetch(url)).status, 503)
})

test.run()

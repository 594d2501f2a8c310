import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { BASE_PART, type BaseInfo } from '../../lib/backup/base-backup.ts'
import { listBackups, manifestKey, partKey } from '../../lib/backup/catalog.ts'
import { decryptBuffer } from '../../lib/backup/format.ts'
import { generateBackupKey, Keyring } from '../../lib/backup/keys.ts'
import { parseManifest } from '../../lib/backup/manifest.ts'
import { archivedWal, fetchWalFile } from '../../lib/backup/wal-archive.ts'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { openStore, readObject } from '../../lib/store/storage.ts'
import { backup } from '../../runbooks/backup.ts'
import { backups } from '../../runbooks/backups.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { health } from '../../runbooks/health.ts'
import { maintenance } from '../../runbooks/maintenance.ts'
import { pruneBackups } from '../../runbooks/prune-backups.ts'
import { rehearseMigration } from '../../runbooks/rehearse-migration.ts'
import { restore } from '../../runbooks/restore.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { status } from '../../runbooks/status.ts'
import { startLoad } from '../bench/load.ts'
import { suite } from '../harness.ts'
import { buildFixtureImages } from '../sandbox/fixtures.ts'
import { enableVersioning, S3RVER_SECRETS, type S3Server, startS3Server } from '../sandbox/s3.ts'
import {
  asProduction,
  createTestBed,
  destroyTestBed,
  FIXTURE_DOMAINS,
  getThrough,
  onDroplet,
  runCaptured,
  s3StoreConfig,
  type TestBed,
  writeS3BackupEnv,
} from '../support/test-bed.ts'

// Backup and restore on a deployed sandbox droplet, with a real S3-compatible store (s3rver).
/** A zstd stream opened with the zstd tool (Node 20's zlib has no zstd). */
const unzstd = (data: Buffer) => execFileSync('zstd', ['-dcq'], { input: data, maxBuffer: 1 << 30 })

const test = suite('backup and restore on a sandbox droplet', { timeoutS: 300 })
const MARKER = 'PLAINTEXT-MARKER-7f3a'
let bed: TestBed
let web: SandboxDroplet
let s3: S3Server
const storeConfig = () => s3StoreConfig(s3, 'sandbox')
const store = () => openStore(storeConfig(), S3RVER_SECRETS)

const pg = (sql: string, db = 'conciliaextrato') =>
  onDroplet(
    web,
    `docker exec -i $(docker ps -q --filter label=com.docker.compose.project=ce-bk-data --filter label=com.docker.compose.service=postgres) psql -XAtq -v ON_ERROR_STOP=1 -U conciliaextrato -d ${db} -c ${JSON.stringify(sql)}`,
  )
const redis = (cmd: string) =>
  onDroplet(
    web,
    `docker exec $(docker ps -q --filter label=com.docker.compose.project=ce-bk-data --filter label=com.docker.compose.service=redis) redis-cli --no-auth-warning ${cmd}`,
  )

/** Per table: rows and an md5 of every row in order; and every Redis key with its value. */
async function fingerprint(): Promise<{ tables: string; redis: string }> {
  const tables = await pg(
    "SELECT string_agg(format('%s %s %s', c.relname, (xpath('/row/n/text()', query_to_xml(format('select count(*) as n from %I', c.relname), false, true, '')))[1], (xpath('/row/h/text()', query_to_xml(format('select md5(coalesce(string_agg(t::text, ''|'' order by t::text), '''')) as h from %I t', c.relname), false, true, '')))[1]), E'\\n' ORDER BY c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public' AND c.relname <> 'ce_pitr_canary'",
  )
  const keys = (await redis('--scan')).trim().split('\n').filter(Boolean).sort()
  const values = await Promise.all(keys.map(async (k) => `${k}=${(await redis(`GET ${k}`)).trim()}`))
  return { tables: tables.trim(), redis: values.join('\n') }
}

/** The recovery server's container and volume, if a point-in-time restore left any ('' when none). */
const pitrLeftovers = async () =>
  (
    await onDroplet(
      web,
      'docker ps -aq --filter name=ce-bk-pitr; docker volume ls -q --filter name=ce-bk-pitr',
    )
  ).trim()

/** Files under `dir` (recursively) whose bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = []
  const walk = (d: string) => {
    let names: string[] = []
    try {
      names = readdirSync(d)
    } catch {
      return
    }
    for (const name of names) {
      const p = join(d, name)
      let st: ReturnType<typeof statSync>
      try {
        st = statSync(p)
      } catch {
        continue
      }
      if (st.isDirectory()) walk(p)
      else if (st.isFile() && st.size < 512 * 1024 * 1024 && readFileSync(p).includes(needle)) hits.push(p)
    }
  }
  walk(dir)
  return hits
}

async function latestId(): Promise<string | undefined> {
  return (await listBackups(store(), 'bk')).find((e) => e.complete)?.id
}

async function mutateObject(key: string, change: (b: Buffer) => Buffer): Promise<() => Promise<void>> {
  const chunks: Buffer[] = []
  for await (const c of await store().get(key)) chunks.push(c as Buffer)
  const original = Buffer.concat(chunks)
  await replaceObject(key, change(Buffer.from(original)))
  return () => replaceObject(key, original)
}

/** What someone holding a key that may delete does to an object (a put never overwrites). */
async function replaceObject(key: string, body: Buffer): Promise<void> {
  await store().delete([key])
  await store().put(key, body)
}

test.before(async () => {
  await buildFixtureImages()
  bed = await createTestBed('backup', ['web-1'], { image: 'provisioned' })
  web = bed.droplets[0] as SandboxDroplet
  // On the droplets' network gateway: the host's WAL shipper reaches the store itself.
  s3 = await startS3Server({ buckets: ['ce-backups'], address: bed.gateway })
  writeS3BackupEnv(bed, 'bk', s3, 'sandbox')
  const setup = await runCaptured(setupServer, ['--env', 'bk'])
  if (setup.code !== 0) throw new Error(`setup-server failed:\n${setup.out}`)
  const dep = await runCaptured(deploy, ['--env', 'bk', '--release', 'v1'])
  if (dep.code !== 0) throw new Error(`deploy failed:\n${dep.out}`)
  // Several tables; one big enough that its dump spans several 1 MiB chunks.
  await pg(
    [
      'create table bank_customers(id int primary key, name text, email text)',
      `insert into bank_customers select g, 'customer ' || g, 'c' || g || '@example.com' from generate_series(1, 1500) g`,
      'create table bank_lines(id bigint primary key, customer int references bank_customers(id), amount numeric(12,2), memo text)',
      `insert into bank_lines select g, 1 + g % 1500, (g * 7 % 100000) / 100.0, md5(g::text) || md5((g * 31)::text) || '${MARKER}' from generate_series(1, 60000) g`,
      `create table "Audit Trail"(at timestamptz default now(), what text)`,
      `insert into "Audit Trail"(what) values ('restore me'), ('and me')`,
    ].join('; '),
  )
  for (let i = 0; i < 25; i++) await redis(`SET session:${i} user-${i * 3}`)
  await redis(`SET marker ${MARKER}`)
})

test.after(async () => {
  await s3?.close()
  await destroyTestBed(bed)
})

let first = ''
let before: { tables: string; redis: string }

test('backup: streamed, encrypted, read back, then marked complete and listed as the latest', async () => {
  before = await fingerprint()
  const { code, out } = await runCaptured(backup, ['--env', 'bk'])
  assert.is(code, 0, out)
  assert.match(out, /\d+ tables, \d+ rows; canary \d{8}T\d{6}Z/)
  assert.match(out, 'redis: 26 keys, AOF on (saved too)')
  assert.match(out, 'every tag and SHA-256 matches')
  // The spool was turned on in this run, so the backup carries a base backup too.
  assert.match(out, /cluster \d+: replay from [0-9A-F]{24} \(\d+\/[0-9A-F]+\), consistent at /)
  first = (await latestId()) ?? ''
  assert.match(first, /^\d{8}T\d{6}Z$/)
  // The listing, then the store's protection: a bucket that keeps nothing its writing key deletes is
  // exit 3 with the owner's command; once versioning is on, the same listing passes.
  const list = await runCaptured(backups, ['--env', 'bk'])
  assert.is(list.code, 3, list.out)
  // Its base backup is listed (restore AT= can start from it).
  assert.match(list.out, new RegExp(`${first}\\s.*complete, latest\\s+[\\d.]+ MB\\s+yes\\s`))
  assert.match(list.out, 'NOT protected: neither versioning nor object lock is on')
  assert.match(list.out, 'aws s3api put-bucket-versioning --endpoint-url')
  await enableVersioning(s3, 'ce-backups')
  const again = await runCaptured(backups, ['--env', 'bk'])
  assert.is(again.code, 0, again.out)
  assert.match(again.out, 'protection: protected: versioning on')
})

const switched: string[] = []

test('WAL archiving: make backup turned it on; each switched segment reaches the store, sealed to the recipient', async () => {
  // setup-server installed the shipper; make backup (the deploy user, no sudo) wrote its config: the
  // recipient (public) and the Spaces key in a 0600 file of the deploy user's, never BACKUP_KEY.
  const cfg = await onDroplet(
    web,
    'stat -c "%a %U" /srv/conciliaextrato/bk/wal-shipper.json; cat /srv/conciliaextrato/bk/wal-shipper.json',
  )
  assert.match(cfg, /^600 deploy\n/)
  assert.match(cfg, '"recipient": "cebk-recipient:')
  assert.not.match(cfg, process.env.BACKUP_KEY as string)
  assert.is(
    (await onDroplet(web, 'systemctl is-active conciliaextrato-wal-shipper@bk.service || true')).trim(),
    'active',
  )
  // Three segments, each with a marker row, each switched out (pg_switch_wal: the segment is finished).
  await pg('create table wal_marks(n int, note text)')
  for (let i = 1; i <= 3; i++) {
    await pg(`insert into wal_marks values (${i}, 'WAL-MARK-${i}')`)
    switched.push((await pg('select pg_walfile_name(pg_switch_wal())')).trim())
  }
  // Within archive_timeout (30 s) of being finished, with room for a loaded machine: at most 120 s.
  let archived = await archivedWal(store(), 'bk')
  for (let i = 0; i < 60 && !switched.every((n) => archived.some((w) => w.name === n)); i++) {
    await new Promise((r) => setTimeout(r, 2000))
    archived = await archivedWal(store(), 'bk')
  }
  const status = await onDroplet(web, 'cat /var/lib/conciliaextrato/wal/bk/status.json || true')
  assert.ok(
    switched.every((n) => archived.some((w) => w.name === n)),
    `switched ${switched.join(' ')}; archived ${archived.map((w) => w.name).join(' ')}; shipper status ${status}`,
  )
  // Opened with BACKUP_KEY (here, never on the host): whole 16 MiB segments holding their marker rows.
  const keyring = Keyring.fromSecrets(process.env)
  for (const [i, name] of switched.entries()) {
    const plain = await fetchWalFile(
      store(),
      keyring,
      archived.find((w) => w.name === name) as (typeof archived)[0],
    )
    assert.is(plain.length, 16 * 1024 * 1024)
    assert.ok(plain.includes(`WAL-MARK-${i + 1}`), `${name} holds WAL-MARK-${i + 1}`)
  }
  const sizes = switched.map((n) => archived.find((w) => w.name === n)?.bytes ?? 0)
  process.stdout.write(
    `      WAL: ${switched.length} segments of 16 MiB stored gzipped and sealed as ${sizes.join(', ')} bytes\n`,
  )
  const list = await runCaptured(backups, ['--env', 'bk'])
  assert.is(list.code, 0, list.out)
  // Keyed by the cluster's system identifier, read by the shipper from each segment's first page.
  const system = (await pg('select system_identifier from pg_control_system()')).trim()
  assert.ok(
    switched.every((n) => archived.some((w) => w.name === n && w.system === system)),
    `${system}: ${archived.map((w) => w.key).join(' ')}`,
  )
  assert.match(
    list.out,
    new RegExp(`WAL archive of cluster ${system}: \\d+ segment\\(s\\), [0-9A-F]{24} to [0-9A-F]{24}`),
  )
})

let firstBase: BaseInfo | undefined

test("the base backup: pg_basebackup's tar holding the data, placed in the chain whose WAL the archive holds", async () => {
  const keyring = Keyring.fromSecrets(process.env)
  const mkey = manifestKey('bk', first)
  const manifest = parseManifest(
    decryptBuffer(keyring, await readObject(store(), mkey), { context: mkey }).toString(),
    first,
  )
  const base = manifest.base
  assert.ok(base, 'the manifest of a backup taken with WAL archiving on has a base')
  firstBase = base
  assert.ok(manifest.parts[BASE_PART], JSON.stringify(manifest.parts))
  const system = (await pg('select system_identifier from pg_control_system()')).trim()
  assert.is(base.system, system)
  const pkey = partKey('bk', first, BASE_PART)
  const packed = decryptBuffer(keyring, await readObject(store(), pkey), { context: pkey })
  assert.is(packed.length, manifest.parts[BASE_PART]?.bytes)
  // Compressed on the host with zstd (level 1; the sandbox's Postgres image has zstd, as the official
  // one does), and said so in the manifest with the size it unpacks to.
  assert.is(base.compression, 'zstd')
  const tar = unzstd(packed)
  assert.ok(tar.length > packed.length, `${tar.length} bytes unpacked from ${packed.length}`)
  assert.ok((base.data_bytes ?? 0) > 0)
  // Postgres's own label in the tar names the same start as the manifest; the table data is in it.
  const label = /START WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+) \(file ([0-9A-F]{24})\)/.exec(
    tar.toString('latin1'),
  )
  assert.equal([label?.[1], label?.[2]], [base.start_lsn, base.start_wal])
  assert.ok(tar.includes('PG_VERSION'), 'a data directory')
  assert.ok(tar.includes(MARKER), "the bank_lines rows are in the base's heap pages")
  // The dump too: zstd around an uncompressed custom-format dump, which holds the rows as COPY text.
  assert.is(manifest.postgres.compression, 'zstd')
  const dkey = partKey('bk', first, 'postgres.dump')
  const dump = unzstd(decryptBuffer(keyring, await readObject(store(), dkey), { context: dkey }))
  assert.is(dump.subarray(0, 5).toString(), 'PGDMP')
  assert.ok(dump.includes(MARKER), 'the bank_lines rows are in the dump, uncompressed')
  // Its first segment was archived after make backup turned the spool on: the chain starts there.
  let archived = await archivedWal(store(), 'bk')
  for (let i = 0; i < 60 && !archived.some((w) => w.name === base.start_wal && w.system === system); i++) {
    await new Promise((r) => setTimeout(r, 2000))
    archived = await archivedWal(store(), 'bk')
  }
  assert.ok(
    archived.some((w) => w.name === base.start_wal && w.system === system),
    `${base.start_wal} not in ${archived.map((w) => w.name).join(' ')}`,
  )
})

test('restore drill at a random point: its canary written, the WAL archived, replay to a random time; the canary rows around it checked', async () => {
  // The watchdog writes a canary row each run (its timer: each minute); one run now, for its history.
  await onDroplet(web, 'systemctl start conciliaextrato-watchdog@bk.service')
  assert.ok(Number(await pg("select count(*) from ce_pitr_canary where writer = 'watchdog'")) >= 1)
  const { code, out } = await runCaptured(restore, ['--env', 'bk', '--drill'])
  assert.is(code, 0, out)
  const wrote = /canary row written at (\S+); WAL switched, [0-9A-F]{24} archived [\d.]+ s later/.exec(out)
  const picked = /drill point (\S+): random between (\S+) \(the oldest base\) and (\S+)/.exec(out)
  assert.ok(wrote && picked, out)
  const [, point = '', from = '', to = ''] = picked ?? []
  assert.ok(from <= point && point <= to && Date.parse(to) < Date.parse(wrote?.[1] ?? ''), picked?.[0])
  assert.match(out, `point in time ${point}: the base backup of cluster `)
  const found = /canary row written at (\S+) \(([\d.]+) s before the point\) found, none after it/.exec(out)
  assert.ok(found, out)
  assert.ok(Date.parse(found?.[1] ?? '') <= Date.parse(point), found?.[0])
  assert.match(
    out,
    new RegExp(
      `DRILL passed: ${point} \\(backup \\d{8}T\\d{6}Z's base replayed to [^)]+\\) restores \\(\\d+ rows, 26 keys verified, canary of ${found?.[1]} found\\)`,
    ),
  )
  const summary = JSON.parse(
    out
      .split('\n')
      .find((l) => l.startsWith('restore-summary '))
      ?.slice(16) ?? '{}',
  )
  assert.equal([summary.drill, summary.at, summary.canary], [true, point, found?.[1]])
  // The live database holds the newest canary row the recovered one had, and the drill's own row.
  assert.is(
    (await pg(`select count(*) from ce_pitr_canary where at = '${found?.[1]}'::timestamptz`)).trim(),
    '1',
  )
  assert.is((await pg("select count(*) from ce_pitr_canary where writer = 'restore-drill'")).trim(), '1')
  // Nothing else live: no scratch database, no recovery server.
  assert.not.match(await pg('select datname from pg_database', 'postgres'), 'ce_restore_')
  assert.is(await pitrLeftovers(), '')
})

test('restore AT=<time>: the base replayed with the archived WAL up to the time, verified, swapped; later rows are not there', async () => {
  // Bad input first, each refused before anything changes (exit 2).
  const bad = await runCaptured(restore, ['--env', 'bk', '--at', '2026-12-02 10:31', '--yes'])
  assert.is(bad.code, 2, bad.out)
  assert.match(bad.out, 'AT=2026-12-02 10:31 is not a point in time')
  const early = await runCaptured(restore, ['--env', 'bk', '--at', '2000-01-01T00:00:00Z', '--yes'])
  assert.is(early.code, 2, early.out)
  assert.match(
    early.out,
    'no base backup of bk finished before AT=2000-01-01T00:00:00Z (the oldest finished ',
  )
  // A row before the point, the point (the droplet's clock, as Postgres's commit times), a row after.
  await pg("create table pitr_marks(what text); insert into pitr_marks values ('before')")
  await new Promise((r) => setTimeout(r, 1500))
  const at = (await onDroplet(web, 'date -u +%Y-%m-%dT%H:%M:%S.%3NZ')).trim()
  await new Promise((r) => setTimeout(r, 1500))
  await pg("insert into pitr_marks values ('after')")
  const last = (await pg('select pg_walfile_name(pg_switch_wal())')).trim()
  let archived = await archivedWal(store(), 'bk')
  for (let i = 0; i < 60 && !archived.some((w) => w.name === last); i++) {
    await new Promise((r) => setTimeout(r, 2000))
    archived = await archivedWal(store(), 'bk')
  }
  assert.ok(
    archived.some((w) => w.name === last),
    `${last} not archived`,
  )
  // --dry-run: the plan and the recovery server's commands; nothing made on the host.
  const dry = await runCaptured(restore, ['--env', 'bk', '--at', at, '--dry-run'])
  assert.is(dry.code, 0, dry.out)
  assert.match(dry.out, `point in time ${at}: the base backup of cluster `)
  assert.match(dry.out, `recovery_target_time=${at.replace('T', ' ').replace('Z', '+00')}`)
  assert.match(dry.out, 'pg_dump -Fc -Z0')
  assert.is((await onDroplet(web, 'docker volume ls -q --filter name=ce-bk-pitr')).trim(), '')
  const { code, out } = await runCaptured(restore, ['--env', 'bk', '--at', at, '--yes'])
  assert.is(code, 0, out)
  assert.match(out, `point in time ${at}: the base backup of cluster `)
  assert.match(out, /postgres: .*recovery stopping before commit of transaction \d+, time /)
  assert.match(
    out,
    /replayed to \d{4}-\d\d-\d\dT[\d:.]+Z; scratch database ce_restore_\w+: \d+ rows in \d+ tables match the recovered server; canary of \d{8}T\d{6}Z found/,
  )
  assert.match(
    out,
    new RegExp(`restored ${at} \\(backup \\d{8}T\\d{6}Z's base replayed to [^)]+\\): \\d+ rows, 26 keys`),
  )
  assert.match(out, `"at":"${at}","replayed_to":"`)
  assert.is((await pg("select string_agg(what, ',' order by what) from pitr_marks")).trim(), 'before')
  // What the WAL test wrote before the point came back with it.
  assert.is((await pg('select count(*) from wal_marks')).trim(), '3')
  // The recovery server and its volume are gone; the replaced database is kept.
  assert.is(await pitrLeftovers(), '')
  assert.match(
    await pg("select string_agg(datname, ' ') from pg_database", 'postgres'),
    /conciliaextrato_before_/,
  )
})

test('a segment deleted from the archive is a gap: make backups exits 3 naming it; health fails its wal chain check', async () => {
  const archived = await archivedWal(store(), 'bk')
  const at = archived.findIndex((w) => w.name === switched[1])
  const gone = archived[at] as (typeof archived)[0]
  const bytes = await readObject(store(), gone.key)
  await store().delete([gone.key])
  try {
    const list = await runCaptured(backups, ['--env', 'bk'])
    assert.is(list.code, 3, list.out)
    assert.match(
      list.out,
      `1 gap (1 segment missing): after ${archived[at - 1]?.name} up to ${archived[at + 1]?.name}`,
    )
    const h = await runCaptured(health, ['--env', 'bk', '--json'])
    const doc = h.out.split('\n').find((l) => l.startsWith('{"env"')) ?? '{}'
    const results =
      (JSON.parse(doc) as { results?: { check: string; ok: boolean | null; value: string }[] }).results ?? []
    const chain = results.find((r) => r.check === 'wal chain')
    assert.is(chain?.ok, false, h.out)
    assert.match(chain?.value ?? '', '1 gap')
    assert.is(results.find((r) => r.check === 'wal shipping')?.ok, true, h.out)
    assert.is.not(h.code, 0)
  } finally {
    await store().put(gone.key, bytes)
  }
})

test('round trip: damage the data, restore: identical tables, checksums and Redis keys; the old database is kept', async () => {
  await pg(
    `delete from bank_lines where id % 3 = 0; update bank_customers set name = 'oops'; drop table "Audit Trail"; create table junk(x int)`,
  )
  // Keys written after the backup sit in the AOF: the restore must not let them replay.
  await redis('FLUSHALL')
  await redis('SET stale-after-backup 1')
  assert.is.not((await fingerprint()).tables, before.tables)
  // Visitors on all three domains throughout (30 s per request, the promised bound, so load is not failure).
  const load = startLoad(web.ports.http, Object.values(FIXTURE_DOMAINS), '/health', 3, 200_000, 30, 30_000)
  // A second witness of the page, on the droplet itself (every 50 ms): this machine's load generator
  // can stall for a moment on a loaded CI machine, as long as the pause itself (a second or two).
  const watch = `/tmp/page-watch-${Date.now()}`
  await onDroplet(
    web,
    // Each answer's status; a 503 whose body is the maintenance page is written "503-maintenance".
    `setsid sh -c 'while :; do c=$(curl -s -o ${watch}.body -w "%{http_code}" -H "Host: ${FIXTURE_DOMAINS.api}" http://127.0.0.1/health); if [ "$c" = 503 ] && grep -qF "\\"error\\":\\"maintenance\\"" ${watch}.body; then c=503-maintenance; fi; echo $c >> ${watch}; sleep 0.05; done' >/dev/null 2>&1 < /dev/null & echo $! > ${watch}.pid`,
  )
  const { code, out } = await runCaptured(restore, ['--env', 'bk', '--backup', first, '--yes'])
  const seen = await load.stop()
  const watched = await onDroplet(web, `kill $(cat ${watch}.pid); sort ${watch} | uniq -c`)
  assert.is(code, 0, out)
  // Only the api uses the data: site and saas never failed; the api answered the maintenance page, never a 502.
  const kinds = Object.keys(seen.failures)
  assert.ok(
    kinds.every((k) => k === `${FIXTURE_DOMAINS.api} 503`),
    `failures: ${JSON.stringify(seen.failures)} ${JSON.stringify(seen.samples)}`,
  )
  // The api was paused and showed the page: seen by the visitors here, or by the droplet's own watch.
  assert.ok(
    seen.failed > 0 || /^\s*\d+ 503-maintenance$/m.test(watched),
    `no maintenance page seen: ${seen.requests} requests here; on the droplet: ${watched.trim().replace(/\n\s*/g, ', ')}`,
  )
  assert.not.match(watched, /^\s*\d+ 502$/m, `the droplet's own watch saw a 502: ${watched}`)
  assert.is(seen.withRetryAfter, seen.failed, 'every 503 carried Retry-After')
  // Every 503 was the maintenance page: the visitors' samples here, and each one the droplet saw.
  if (seen.failed > 0)
    assert.match(seen.samples[`${FIXTURE_DOMAINS.api} 503`]?.[0] ?? '', '"error":"maintenance"')
  assert.not.match(
    watched,
    /^\s*\d+ 503$/m,
    `the droplet's own watch saw a 503 that was not the maintenance page: ${watched}`,
  )
  const summary = JSON.parse(
    out
      .split('\n')
      .find((l) => l.startsWith('restore-summary '))
      ?.slice('restore-summary '.length) ?? '{}',
  ) as { timings_s?: Record<string, number> }
  assert.type(summary.timings_s?.interruption, 'number', out)
  console.log(
    `      restore under load: ${seen.requests} requests, api paused ${seen.failSpanMs[FIXTURE_DOMAINS.api]} ms (the restore's phases, s: ${JSON.stringify(summary.timings_s)})`,
  )
  const after = await fingerprint()
  assert.is(
    after.tables.replace(/\nce_backup_canary.*/, ''),
    before.tables.replace(/\nce_backup_canary.*/, ''),
  )
  assert.is(after.redis, before.redis)
  // The safety net ran beside the scratch restore, its lines labelled, and was there before the swap: WAL
  // archiving is on and the chain whole, so a point the archive holds, not a dump of the live database.
  assert.match(
    out,
    /\[safety backup\] +the WAL archive holds the state before this restore, up to \S+: no safety dump needed/,
  )
  const point = /safety point: make restore ENV=bk AT=(\S+) undoes this restore/.exec(out)?.[1]
  assert.ok(point, out)
  assert.not.match(out, /\[safety backup\] backup \S+ complete in /)
  assert.ok(out.indexOf('undoes this restore') < out.indexOf('Swap in the restored database'), out)
  // Named for the restore's own time (the same backup restored twice keeps both replaced databases).
  const kept = /the previous database is kept as (conciliaextrato_before_\d{8}t\d{6}z)$/m.exec(out)?.[1] ?? ''
  assert.match(await pg('select datname from pg_database order by 1', 'postgres'), kept)
  // The damaged state is still there, renamed, and in the archive: nothing lost. The undo's point replays
  // (a drill to it: the base and the WAL up to it, the canary rows around it checked; nothing live changes).
  assert.match(await pg('select count(*) from junk', kept), '0')
  const undo = await runCaptured(restore, ['--env', 'bk', '--at', point as string, '--drill'])
  assert.is(undo.code, 0, undo.out)
  assert.match(undo.out, /canary row written at \S+ \([\d.]+ s before the point\) found, none after it/)
  const served = await onDroplet(web, `curl -fsS -H 'Host: ${FIXTURE_DOMAINS.api}' http://127.0.0.1/health`)
  assert.ok(served.length > 0)
})

test('make maintenance: ON=1 SERVICE=api shows the JSON page with Retry-After, site keeps serving; OFF=1 serves again', async () => {
  const args = ['--env', 'bk', '--on', '--service', 'api', '--reason', 'test window']
  const on = await runCaptured(maintenance, args)
  try {
    await maintenanceOnChecks(on)
  } finally {
    // The suite's later tests go through nginx: the window never outlives this test.
    await runCaptured(maintenance, ['--env', 'bk', '--off'])
  }
  const off = await runCaptured(maintenance, ['--env', 'bk', '--off'])
  assert.is(off.code, 0, off.out)
  assert.match(off.out, 'no service is in maintenance')
  assert.is((await getThrough(web.ports.http, FIXTURE_DOMAINS.api, '/health')).status, 200)
  assert.is(
    await onDroplet(web, 'test -e /srv/conciliaextrato/bk/maintenance && echo left || echo gone'),
    'gone\n',
  )
  const bad = await runCaptured(maintenance, ['--env', 'bk', '--on', '--off'])
  assert.is(bad.code, 2, bad.out)
  assert.match(bad.out, 'say ON=1 (show the maintenance page) or OFF=1')
})

async function maintenanceOnChecks(on: { code: number; out: string }): Promise<void> {
  assert.is(on.code, 0, on.out)
  const api = await getThrough(web.ports.http, FIXTURE_DOMAINS.api, '/health')
  assert.is(api.status, 503)
  assert.equal((JSON.parse(api.body) as { error: string }).error, 'maintenance')
  assert.is((await getThrough(web.ports.http, FIXTURE_DOMAINS.site, '/health')).status, 200)
  assert.match(
    on.out,
    /in maintenance: web-1: api until \d{4}-\d\d-\d\dT\S+Z, by .+ \(make maintenance\): test window\n/,
  )
  // The watchdog's flag too: it leaves the containers alone while the window is open.
  assert.match(await onDroplet(web, 'cat /srv/conciliaextrato/bk/maintenance'), /^until=.*\nby=/)
  const headers = await onDroplet(
    web,
    `curl -s -D - -o /dev/null -H 'Host: ${FIXTURE_DOMAINS.api}' http://127.0.0.1/health | tr -d '\\r'`,
  )
  assert.match(headers, 'Retry-After: 10')
  assert.match(headers, 'X-Maintenance: on')
  // make status says it too, for whoever looks next.
  const st = await runCaptured(status, ['--env', 'bk'])
  assert.is(st.code, 0, st.out)
  assert.match(st.out, /maintenance +api until \d{4}-\S+Z, by .+ \(make maintenance\): test window/)
}

test('restore drill: verified into a scratch database with timings; nothing live changes', async () => {
  await pg(`insert into bank_customers values (999999, 'after-drill-check', 'x')`)
  const { code, out } = await runCaptured(restore, ['--env', 'bk', '--backup', first, '--drill'])
  assert.is(code, 0, out)
  assert.match(out, /DRILL passed: backup \d{8}T\d{6}Z restores \(\d+ rows, 26 keys verified\)/)
  const summary = JSON.parse(
    out
      .split('\n')
      .find((l) => l.startsWith('restore-summary '))
      ?.slice(16) ?? '{}',
  )
  assert.ok(summary.timings_s['download+verify'] >= 0 && summary.timings_s['postgres-scratch'] >= 0, out)
  assert.is((await pg(`select name from bank_customers where id = 999999`)).trim(), 'after-drill-check')
  assert.not.match(await pg('select datname from pg_database', 'postgres'), 'ce_restore_')
})

test('rehearse-migration RELEASE=v2: the latest backup copied, personal data masked, v2 migrated on the copy alone; figures as one JSON line', async () => {
  const liveBefore = await pg('select version from schema_migrations order by 1')
  const { code, out } = await runCaptured(rehearseMigration, ['--env', 'bk', '--release', 'v2'])
  assert.is(code, 0, out)
  const figures = JSON.parse(
    out
      .split('\n')
      .find((l) => l.trim().startsWith('{"rows_before"'))
      ?.trim() ?? '{}',
  )
  // The copy: every table's rows (bank_customers, bank_lines, the app's...); v2's migration adds one row
  // to schema_migrations and a column to statements, and loses none.
  assert.ok(figures.rows_before > 1500, out)
  assert.is(figures.rows_after, figures.rows_before + 1, out)
  // name and email of bank_customers, name of accounts, memo of bank_lines: masked in the copy.
  assert.ok(figures.masked_columns >= 4, out)
  assert.match(out, 'bank_customers.email: e-mail addresses')
  assert.match(out, 'bank_customers.name: names of people and holders')
  assert.ok(figures.migrate_s >= 0, out)
  // Nothing live changed: the live schema is v1's, its names are not masked, no copy is left.
  assert.is(await pg('select version from schema_migrations order by 1'), liveBefore)
  assert.match(await pg(`select name from bank_customers where id = 7`), 'customer 7')
  assert.not.match(await pg('select datname from pg_database', 'postgres'), 'ce_migrate_')
})

test('rehearse-migration RELEASE=badmig: its broken migration fails on the copy (exit 4); the live database is untouched', async () => {
  const liveBefore = await pg('select version from schema_migrations order by 1')
  const { code, out } = await runCaptured(rehearseMigration, ['--env', 'bk', '--release', 'badmig'])
  assert.is(code, 4, out)
  assert.match(out, "badmig's migrations failed on a copy of bk's data")
  assert.match(out, '0002_broken_reference')
  assert.match(out, 'Do not deploy this release')
  assert.is(await pg('select version from schema_migrations order by 1'), liveBefore)
  assert.is((await pg(`select to_regclass('public.audit_log') is null`)).trim(), 't')
  assert.not.match(await pg('select datname from pg_database', 'postgres'), 'ce_migrate_')
})

test("after backups and restores, no plaintext dump reached this machine's disk; the stored objects are ciphertext", async () => {
  assert.equal(filesContaining(s3.dir, MARKER), [])
  assert.equal(filesContaining(s3.dir, 'PGDMP'), [])
  assert.equal(filesContaining(bed.group.dir, MARKER), [])
  assert.equal(
    readdirSync(tmpdir()).filter((f) => f.startsWith(`ce-restore-${process.pid}-`)),
    [],
    'restore downloads are removed',
  )
  const objects = await store().list(`bk/${first}/`)
  assert.ok(objects.length >= 6, JSON.stringify(objects))
})

for (const [name, damage, expect] of [
  [
    'one flipped byte',
    (b: Buffer) => {
      b[b.length - 100] = (b[b.length - 100] ?? 0) ^ 1
      return b
    },
    /failed authentication/,
  ],
  ['two chunks swapped', swapFirstTwoChunks, /failed authentication/],
  ['a truncated object', (b: Buffer) => b.subarray(0, b.length - 5000), /incomplete|truncated/],
] as const) {
  test(`${name} in the dump is detected before anything is restored`, async () => {
    const undo = await mutateObject(partKey('bk', first, 'postgres.dump'), damage)
    try {
      await pg(`update bank_customers set name = 'live-${name}' where id = 1`)
      const { code, out } = await runCaptured(restore, ['--env', 'bk', '--backup', first, '--yes'])
      assert.is.not(code, 0, out)
      assert.match(out, expect)
      assert.not.match(out, 'Swap in the restored database (the current one is kept, renamed)\n      ✓')
      assert.is((await pg('select name from bank_customers where id = 1')).trim(), `live-${name}`)
    } finally {
      await undo()
    }
  })
}

test('a wrong key and a missing object are detected with clear errors; nothing restored', async () => {
  const key = process.env.BACKUP_KEY
  process.env.BACKUP_KEY = generateBackupKey()
  try {
    const { code, out } = await runCaptured(restore, ['--env', 'bk', '--backup', first, '--yes'])
    assert.is(code, 3, out)
    assert.match(out, /wrong key: .*needs key id [0-9a-f]{16}/)
  } finally {
    process.env.BACKUP_KEY = key
  }
  const undo = await mutateObject(partKey('bk', first, 'redis.tar'), (b) => b)
  await store().delete([partKey('bk', first, 'redis.tar')])
  try {
    const { code, out } = await runCaptured(restore, ['--env', 'bk', '--backup', first, '--yes'])
    assert.is.not(code, 0, out)
    assert.match(out, /redis\.tar|incomplete/)
  } finally {
    await undo()
  }
})

test('a pg_dump that fails (database down) fails the backup loudly; "latest" does not move and nothing is left', async () => {
  const latest = await latestId()
  const pgId = (
    await onDroplet(web, 'docker ps -q --filter label=com.docker.compose.service=postgres')
  ).trim()
  await onDroplet(web, `docker stop ${pgId}`)
  try {
    const { code, out } = await runCaptured(backup, ['--env', 'bk'])
    assert.is(code, 1, out)
    assert.ok(/Step \d "Postgres: canary row/.test(out), out)
    assert.match(out, 'postgres of ce-bk-data is not running')
    assert.match(out, 'web-1: Postgres did not answer: the spool is left as it is')
    assert.is(await latestId(), latest)
    const all = await listBackups(store(), 'bk')
    assert.ok(
      all.every((e) => e.complete),
      JSON.stringify(all),
    )
  } finally {
    // Started again, and answering before the next test (a bounded wait: a loaded machine is slow).
    await onDroplet(
      web,
      `docker start ${pgId} >/dev/null; i=0; until docker exec ${pgId} pg_isready -q; do i=$((i+1)); [ "$i" -lt 240 ] || exit 1; sleep 0.5; done`,
    )
  }
})

test('a database a restore replaced is kept backup.keep.replaced_days, then the next backup drops it', async () => {
  const kept = (
    await pg("select datname from pg_database where datname like 'conciliaextrato_before_%'", 'postgres')
  )
    .trim()
    .split('\n')[0]
  assert.ok(kept, 'the round trip above left a replaced database')
  assert.match(
    await pg(
      `select shobj_description(oid, 'pg_database') from pg_database where datname = '${kept}'`,
      'postgres',
    ),
    /^replaced by restore at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m,
  )
  // Fresh: the backup keeps it.
  const fresh = await runCaptured(backup, ['--env', 'bk'])
  assert.is(fresh.code, 0, fresh.out)
  assert.match(fresh.out, `kept ${kept} `)
  // Replaced long ago (as if 2020): the backup drops it, and says so.
  await pg(`comment on database "${kept}" is 'replaced by restore at 2020-01-01T00:00:00Z'`, 'postgres')
  const old = await runCaptured(backup, ['--env', 'bk'])
  assert.is(old.code, 0, old.out)
  assert.match(old.out, `dropped ${kept} 2020-01-01T00:00:00Z`)
  assert.not.match(await pg('select datname from pg_database', 'postgres'), kept)
})

test('prune-backups shows its plan and keeps the newest complete backup; WAL goes from before the oldest kept base', async () => {
  const { code, out } = await runCaptured(pruneBackups, ['--env', 'bk'])
  assert.is(code, 0, out)
  assert.match(out, /keep\s+.*newest/)
  // All backups are from today: the daily slot keeps the newest, so the oldest kept base is a later
  // one than the first backup's; the WAL before its first segment goes.
  const base = firstBase as BaseInfo
  const plan = new RegExp(
    `WAL of cluster ${base.system}: (\\d+) segment\\(s\\) before ([0-9A-F]{24}) \\(the oldest kept base's first\\) to delete, (\\d+) kept`,
  ).exec(out)
  assert.ok(plan, out)
  const from = plan[2] as string
  assert.ok(from >= base.start_wal && Number(plan[1]) > 0, out)
  const applied = await runCaptured(pruneBackups, ['--env', 'bk', '--apply'])
  assert.is(applied.code, 0, applied.out)
  assert.match(applied.out, new RegExp(`; ${plan[1]} WAL segment\\(s\\), `))
  const left = (await archivedWal(store(), 'bk')).filter((w) => w.system === base.system)
  assert.ok(
    left.length >= Number(plan[3]) && left.every((w) => w.name >= from),
    left.map((w) => w.name).join(' '),
  )
  // What is left is one unbroken chain from there: make backups passes.
  const list = await runCaptured(backups, ['--env', 'bk'])
  assert.is(list.code, 0, list.out)
})

test('a production deploy takes a full, verified backup before it migrates', async () => {
  const file = join(bed.envDir, 'bk.yaml')
  const original = readFileSync(file, 'utf8')
  writeFileSync(file, asProduction(original))
  const count = (await listBackups(store(), 'bk')).length
  try {
    const { code, out } = await runCaptured(deploy, ['--env', 'bk', '--release', 'v2', '--yes'])
    assert.is(code, 0, out)
    const id = out.match(/pre-migration backup (\d{8}T\d{6}Z) \(make restore BACKUP=/)?.[1]
    assert.ok(id, out)
    const all = await listBackups(store(), 'bk')
    assert.is(all.length, count + 1)
    assert.ok(all.find((e) => e.id === id)?.complete)
  } finally {
    writeFileSync(file, original)
  }
})

/** Swaps chunk 1 and chunk 2 of an encrypted object (format: 84-byte header, then u32 length | data | tag). */
function swapFirstTwoChunks(b: Buffer): Buffer {
  const header = 84
  const len1 = b.readUInt32BE(header)
  const end1 = header + 4 + len1 + 16
  const len2 = b.readUInt32BE(end1)
  const end2 = end1 + 4 + len2 + 16
  return Buffer.concat([
    b.subarray(0, header),
    b.subarray(end1, end2),
    b.subarray(header, end1),
    b.subarray(end2),
  ])
}

test.run()

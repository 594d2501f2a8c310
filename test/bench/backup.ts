/**
 * make bench-backup: on a sandbox droplet (setup-server, deploy v1) with an S3-compatible store (s3rver on
 * this machine), builds a Postgres database of at least 1 GiB, then times
 *   1. the baseline: a plain `pg_dump -Fc` to /dev/null on the droplet (timed there, with date +%s.%N);
 *   2. `make backup`: dump, transfer over SSH, encrypt, upload, read back and verify;
 *   3. `make restore YES=1`: download + verify, pg_restore into a scratch database + row counts and
 *      canary (the safety net runs beside it: a point the WAL archive holds, else a safety backup), app
 *      stopped, swap, Redis, app started.
 * The runbooks run as their own processes (as `make` runs them), so they do not share an event loop with
 * s3rver; their wall time (process start to exit) is the figure. Prints the figures, the per-phase
 * breakdown, and a final JSON line
 * {"db_mb":..,"pg_dump_s":..,"backup_s":..,"restore_s":..,"ratio_vs_pg_dump":..,"rows_verified":..}
 * (db_mb in MiB). Targets (issue #20): backup_s <= 1.2 x pg_dump_s; a verified restore of 1 GB within 60 s.
 * KEEP_TEST_BED=1 leaves the droplet up afterwards (make sandbox-down removes it).
 */
import { writeFileSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
import { join } from 'node:path'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { table } from '../../lib/report/output.ts'
import type { RunbookSpec } from '../../lib/run/runbook.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { buildFixtureImages } from '../sandbox/fixtures.ts'
import { type S3Server, startS3Server } from '../sandbox/s3.ts'
import {
  createTestBed,
  destroyTestBed,
  onDroplet,
  runCaptured,
  spawnScript,
  writeS3BackupEnv,
} from '../support/test-bed.ts'

const ENV = 'bench'
const GiB = 1024 ** 3
const MiB = 1024 ** 2
/** Load bank_lines in batches until the tables alone pass this, then index, then top up to MIN_DB_BYTES. */
const HEAP_TARGET = 0.7 * GiB
const MIN_DB_BYTES = 1.05 * GiB
const BATCH_ROWS = 1_000_000

const PG = `$(docker ps -q --filter label=com.docker.compose.project=ce-${ENV}-data --filter label=com.docker.compose.service=postgres)`
const REDIS = `$(docker ps -q --filter label=com.docker.compose.project=ce-${ENV}-data --filter label=com.docker.compose.service=redis)`

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits
const since = (t0: number) => (performance.now() - t0) / 1000
/** The 1-minute load average: the figures are wall times, so other work on this machine shows in them. */
const load = () => `load ${loadavg()[0]?.toFixed(1)} on ${availableParallelism()} cores`

async function inProcess(spec: RunbookSpec, args: string[]): Promise<number> {
  const t0 = performance.now()
  const { code, out } = await runCaptured(spec, ['--env', ENV, ...args])
  if (code !== 0) throw new Error(`${spec.name} ${args.join(' ')} failed (${code}):\n${out}`)
  return since(t0)
}

/** A runbook as its own process, as `make` runs it: wall time from start to exit, and what it printed. */
async function timedScript(
  bed: { group: { dir: string } },
  name: string,
  args: string[],
): Promise<{ seconds: number; out: string; log: string }> {
  const t0 = performance.now()
  const run = spawnScript(`runbooks/${name}.ts`, ['--env', ENV, ...args])
  const code = await run.exit
  const seconds = since(t0)
  const out = run.output()
  const log = join(bed.group.dir, `${name}.log`)
  writeFileSync(log, out)
  if (code !== 0) throw new Error(`${name} ${args.join(' ')} failed (${code}):\n${out}`)
  return { seconds, out, log }
}

/** Each step's title and time, from the runbook's own `[i/n] title` ... `✓ status  12.3s` lines. */
function stepTimes(out: string): [string, string][] {
  const rows: [string, string][] = []
  let title = ''
  for (const line of out.split('\n')) {
    const start = /^\[\d+\/\d+\] (.*)$/.exec(line)
    if (start) title = start[1] ?? ''
    const done = /^\s+✓ \S+\s+([\d.]+)s$/.exec(line)
    if (done && title) {
      rows.push([title, done[1] ?? ''])
      title = ''
    }
  }
  return rows
}

function psql(web: SandboxDroplet, sql: string): Promise<string> {
  return onDroplet(
    web,
    `docker exec -i ${PG} psql -XAtq -v ON_ERROR_STOP=1 -U conciliaextrato -d conciliaextrato -c ${JSON.stringify(sql)}`,
  )
}

const dbBytes = async (web: SandboxDroplet) =>
  Number((await psql(web, 'select pg_database_size(current_database())')).trim())

/**
 * A bank-statement-like database: customers, imports and millions of statement lines (amounts, dates, hex
 * references and memos, so it compresses like real text rather than like zeros or pure noise), with
 * primary keys, two secondary indexes and two foreign keys, which pg_restore rebuilds.
 */
async function buildDatabase(
  web: SandboxDroplet,
): Promise<{ rows: number; bankLines: number; seconds: number }> {
  const t0 = performance.now()
  await psql(
    web,
    [
      'create table customers(id int primary key, name text not null, email text not null, created_at timestamptz not null)',
      `insert into customers select g, 'Cliente ' || g || ' Ltda', 'financeiro' || g || '@example.com.br', now() - g * interval '1 minute' from generate_series(1, 200000) g`,
      'create table statement_imports(id int primary key, customer_id int not null references customers(id), file_name text not null, imported_at timestamptz not null, lines int not null)',
      `insert into statement_imports select g, 1 + g % 200000, 'extrato-' || g || '.ofx', now() - g * interval '10 seconds', 100 + g % 900 from generate_series(1, 400000) g`,
      'create table bank_lines(id bigint not null, customer_id int not null, import_id int not null, booked_on date not null, amount numeric(12,2) not null, kind text not null, memo text not null, reference text not null)',
    ].join('; '),
  )
  let rows = 0
  const batch = async (n: number) => {
    await psql(
      web,
      `insert into bank_lines select g, 1 + (g::bigint * 7919 % 200000)::int, 1 + g % 400000, date '2020-01-01' + (g % 1800), round((random() * 20000 - 10000)::numeric, 2), (array['PIX','TED','DOC','BOLETO','TARIFA'])[1 + g % 5], 'PIX RECEBIDO ' || md5(g::text), md5((g * 31)::text) from generate_series(${rows + 1}, ${rows + n}) g`,
    )
    rows += n
  }
  while (
    Number((await psql(web, `select pg_total_relation_size('bank_lines')`)).trim()) < HEAP_TARGET &&
    rows < 20 * BATCH_ROWS
  )
    await batch(BATCH_ROWS)
  await psql(
    web,
    [
      'alter table bank_lines add primary key (id)',
      'create index bank_lines_customer_booked on bank_lines(customer_id, booked_on)',
      'alter table bank_lines add foreign key (customer_id) references customers(id)',
      'create index statement_imports_customer on statement_imports(customer_id)',
      'analyze',
    ].join('; '),
  )
  while ((await dbBytes(web)) < MIN_DB_BYTES && rows < 30 * BATCH_ROWS) await batch(BATCH_ROWS / 2)
  await psql(web, 'checkpoint')
  // Sessions in Redis too, so its part is not empty.
  await onDroplet(
    web,
    `for i in $(seq 1 5000); do echo "SET session:$i user-$i"; done | docker exec -i ${REDIS} redis-cli --no-auth-warning >/dev/null`,
  )
  return { rows: rows + 600_000, bankLines: rows, seconds: since(t0) }
}

/** A plain `pg_dump -Fc` of the database to /dev/null, timed on the droplet. */
async function plainPgDump(web: SandboxDroplet): Promise<number> {
  const out = await onDroplet(
    web,
    `pg=${PG}; s=$(date +%s.%N); docker exec "$pg" pg_dump -Fc -U conciliaextrato conciliaextrato >/dev/null; e=$(date +%s.%N); echo "$s $e"`,
  )
  const [s = 0, e = 0] = out.trim().split(' ').map(Number)
  return e - s
}

await buildFixtureImages()
const bed = await createTestBed('bench-backup', ['web-1'])
let s3: S3Server | undefined
try {
  const web = bed.droplets[0]
  if (!web) throw new Error('no droplet')
  // On the droplet's network gateway (a network this run made): the droplet's WAL shipper reaches it, so
  // continuous archiving runs through the backup and the restore as it does on a real host.
  s3 = await startS3Server({ buckets: ['ce-backups'], address: bed.gateway })
  writeS3BackupEnv(bed, ENV, s3, 'bench')
  console.log(`setup-server: ${(await inProcess(setupServer, [])).toFixed(1)} s`)
  console.log(`deploy v1: ${(await inProcess(deploy, ['--release', 'v1'])).toFixed(1)} s`)

  const built = await buildDatabase(web)
  const size = await dbBytes(web)
  if (size < GiB) throw new Error(`the database is only ${(size / MiB).toFixed(0)} MiB`)
  const sizes = await psql(
    web,
    `select string_agg(format('%s %s MiB', relname, pg_total_relation_size(oid) / 1048576), ', ' order by relname) from pg_class where relkind = 'r' and relnamespace = 'public'::regnamespace`,
  )
  console.log(
    `database: ${(size / MiB).toFixed(0)} MiB, ${built.rows} rows, built in ${built.seconds.toFixed(1)} s (${sizes.trim()})`,
  )

  // The baseline twice: the faster one counts (the first may still be warming caches).
  const dumps = [await plainPgDump(web), await plainPgDump(web)]
  const pgDumpS = Math.min(...dumps)
  console.log(
    `plain pg_dump -Fc > /dev/null on the droplet: ${dumps.map((d) => d.toFixed(1)).join(' s, ')} s (${load()})`,
  )

  const bk = await timedScript(bed, 'backup', [])
  const dumpLine = /postgres\.dump: .*/.exec(bk.out)?.[0] ?? ''
  console.log(
    `backup: ${bk.seconds.toFixed(1)} s wall (${dumpLine}); ratio ${(bk.seconds / pgDumpS).toFixed(2)} (${load()})`,
  )
  console.log(table([['backup step', 'seconds'], ...stepTimes(bk.out)]))

  const rs = await timedScript(bed, 'restore', ['--yes'])
  const line = rs.out.split('\n').find((l) => l.startsWith('restore-summary '))
  if (!line) throw new Error(`restore printed no restore-summary line:\n${rs.out}`)
  const summary = JSON.parse(line.slice('restore-summary '.length)) as {
    rows_verified: number
    timings_s: Record<string, number>
  }
  if (!/scratch database \S+: \d+ rows in \d+ tables match; canary found/.test(rs.out))
    throw new Error(`the restore did not report a verified scratch database:\n${rs.out}`)
  const live = Number((await psql(web, 'select count(*) from bank_lines')).trim())
  if (live !== built.bankLines) throw new Error(`after the restore bank_lines has ${live} rows`)
  const safety = summary.timings_s['safety-backup'] ?? 0
  const scratch = summary.timings_s['postgres-scratch'] ?? 0
  console.log(
    `restore (full, --yes): ${rs.seconds.toFixed(1)} s wall; its safety net (${/safety point: /.test(rs.out) ? 'a point the WAL archive holds' : 'a safety backup'}, ${safety} s) ran beside the scratch restore (${scratch} s); ${summary.rows_verified} rows verified (${load()})`,
  )
  console.log(
    table([
      ['restore phase (restore-summary timings_s)', 'seconds'],
      ...Object.entries(summary.timings_s).map(([p, s]) => [p, String(s)]),
    ]),
  )
  console.log(table([['restore step', 'seconds'], ...stepTimes(rs.out)]))
  console.log(`runbook output: ${bk.log}, ${rs.log}`)

  const ratio = bk.seconds / pgDumpS
  console.log(
    `targets: backup within 1.2x of pg_dump: ${ratio <= 1.2 ? 'met' : 'MISSED'} (${ratio.toFixed(2)}x); verified restore of 1 GB within 60 s: ${rs.seconds <= 60 ? 'met' : 'MISSED'} (${rs.seconds.toFixed(1)} s)`,
  )
  console.log(
    JSON.stringify({
      db_mb: Math.round(size / MiB),
      pg_dump_s: round(pgDumpS),
      backup_s: round(bk.seconds),
      restore_s: round(rs.seconds),
      ratio_vs_pg_dump: round(ratio, 2),
      rows_verified: summary.rows_verified,
    }),
  )
} finally {
  await s3?.close()
  // A failed clean-up must not hide why the run failed (e.g. the droplet removed by someone else).
  await destroyTestBed(bed).catch((err: Error) => {
    console.error(`could not remove the test bed: ${err.message.split('\n')[0]}`)
    process.exitCode = 1
  })
}

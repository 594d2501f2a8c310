import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import * as assert from 'uvu/assert'
import { compareCounts, parseManifest, totalRows } from '../../lib/backup/manifest.ts'
import {
  CANARY_TABLE,
  canarySql,
  configTar,
  parsePgVerify,
  pgDropReplaced,
  pgDumpWithCounts,
  pgRestoreScratch,
  pgSwap,
  REDIS_STAGING,
  redisSnapshot,
  redisStage,
  redisSwap,
  scratchDb,
  stopProject,
} from '../../lib/commands/backup.ts'
import { loadEnv } from '../../lib/env/load.ts'
import { InputError } from '../../lib/report/errors.ts'
import { suite } from '../harness.ts'
import { withFakeDocker } from '../support/fake-docker.ts'

const test = suite('backup command builders')
const t = { env: 'production', user: 'conciliaextrato', db: 'conciliaextrato' }

/**
 * docker as the restore scripts call it on one Postgres container (`cid`): `docker exec [-i] [-e X] cid
 * <cmd> ...`, with the container's /tmp in $ROOT and `df` reporting $AVAIL KiB free; `cases` handle the
 * rest (sh, stat, nproc, pg_restore).
 */
const fakePostgresContainer = (cases: string) =>
  withFakeDocker(`#!/bin/sh
[ "$1" = ps ] && { echo cid; exit 0; }
shift; [ "$1" = -i ] && shift; e=; [ "$1" = -e ] && { e=$2; shift 2; }; shift
case "$1" in
  df) printf 'Filesystem 1K-blocks Used Available Use%% Mounted\\nfs 100 0 %s 0%% /tmp\\n' "$AVAIL";;
  psql) exit 0;;${cases}
  rm) rm -f "\${ROOT}/$(basename "$3")";;
esac
`)

test('pg_dump runs in the snapshot the row counts were taken in, without a TTY, and fails when postgres is down', () => {
  const cmd = pgDumpWithCounts(t)
  assert.match(
    cmd,
    'set -eu\npg=$(docker ps -q --filter label=com.docker.compose.project=ce-production-data --filter label=com.docker.compose.service=postgres)',
  )
  assert.match(cmd, `[ -n "$pg" ] || { echo 'postgres of ce-production-data is not running`)
  assert.match(cmd, "'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;' 'SELECT pg_export_snapshot();'")
  // zstd in the image: pg_dump uncompressed through zstd -1 inside the container (pipefail: a failing
  // pg_dump fails the pipe); else pg_dump's own gzip level 1. Both in the exported snapshot.
  assert.match(cmd, 'snap=$(sed -n 1p "$t/out")')
  assert.match(
    cmd,
    `if docker exec "$pg" sh -c 'command -v zstd && command -v bash' >/dev/null 2>&1; then\n  echo "ce-dump compression=zstd" >&2\n  docker exec "$pg" bash -c 'set -o pipefail; pg_dump -Fc -Z0 --snapshot="$1" -U conciliaextrato conciliaextrato | zstd -1 -q' bash "$snap"\nelse\n  docker exec "$pg" pg_dump -Fc -Z1 --snapshot="$snap" -U conciliaextrato conciliaextrato\nfi`,
  )
  assert.not.match(cmd, 'exec -t')
  assert.not.match(cmd, 'exec -it')
  // Counts go to stderr, the dump alone to stdout; the snapshot's transaction ends after the dump.
  assert.ok(cmd.indexOf('pg_dump -Fc') < cmd.indexOf("echo 'COMMIT;' >&3"))
  assert.match(cmd, 'echo "ce-counts $(sed -n 2p "$t/out")" >&2')
})

test('the zstd dump pipe fails when pg_dump fails (run by bash with a failing pg_dump and a stand-in zstd)', () => {
  const bin = mkdtempSync(join(tmpdir(), 'ce-dump-pipe-'))
  writeFileSync(join(bin, 'pg_dump'), '#!/bin/sh\necho partial\nexit "$PG_DUMP_EXIT"\n', { mode: 0o755 })
  writeFileSync(join(bin, 'zstd'), '#!/bin/sh\ncat\n', { mode: 0o755 })
  // The command docker exec runs in the container: bash -c '<inner>' bash <snapshot>.
  const inner = /docker exec "\$pg" bash -c '(.*)' bash "\$snap"/.exec(pgDumpWithCounts(t))?.[1]
  assert.ok(inner, 'no zstd pipe in the dump command')
  const run = (exit: number) => {
    try {
      execFileSync('bash', ['-c', inner as string, 'bash', 'snap-1'], {
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, PG_DUMP_EXIT: String(exit) },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      return 0
    } catch (e) {
      return (e as { status: number }).status
    }
  }
  assert.is(run(0), 0)
  assert.is(run(1), 1)
  rmSync(bin, { recursive: true })
})

test('the canary row comes on stdin with quotes escaped', () => {
  const sql = canarySql('20261126T120000Z', "to'ken")
  assert.match(sql, `CREATE TABLE IF NOT EXISTS ${CANARY_TABLE}`)
  assert.match(sql, "VALUES ('20261126T120000Z', 'to''ken');")
})

test('Redis: a BGSAVE that really finished, then the RDB and (with AOF) its directory', () => {
  const cmd = redisSnapshot(t)
  assert.match(cmd, 'before=$(cli LASTSAVE)')
  assert.match(
    cmd,
    'if [ "$(cli LASTSAVE)" != "$before" ] && echo "$info" | grep "^rdb_bgsave_in_progress:0"',
  )
  assert.match(cmd, 'grep "^rdb_last_bgsave_status:ok"')
  assert.match(cmd, 'if [ "$aof" = yes ]; then set -- dump.rdb appendonlydir; else set -- dump.rdb; fi')
  assert.match(cmd, 'tar -C /data --warning=no-file-changed -cf - "$@"')
})

test('config tar: compose files, releases and nginx; secrets and locks only as configured', () => {
  const without = configTar('production', false)
  assert.match(without, '--exclude=srv/conciliaextrato/production/app.env')
  assert.match(without, '--exclude=srv/conciliaextrato/production/data.env')
  assert.match(without, '--exclude=srv/conciliaextrato/production/deploy.lock')
  assert.match(without, 'srv/conciliaextrato/production $(ls -d etc/nginx/conciliaextrato 2>/dev/null)')
  assert.not.match(configTar('production', true), 'app.env')
})

test('config tar without secrets leaves out every secret-bearing file (run by tar on a tree like a host)', () => {
  const root = mkdtempSync(join(tmpdir(), 'ce-config-tar-'))
  const files = [
    'srv/conciliaextrato/production/app.yaml',
    'srv/conciliaextrato/production/releases.jsonl',
    'srv/conciliaextrato/production/app.env',
    'srv/conciliaextrato/production/data.env',
    'srv/conciliaextrato/production/migrate.env',
    'srv/conciliaextrato/production/redis/redis.conf',
    'srv/conciliaextrato/production/deploy.lock/owner',
    'etc/nginx/conciliaextrato/production.conf',
    'etc/nginx/conciliaextrato/tls/production-origin.crt',
    'etc/nginx/conciliaextrato/tls/production-origin.key',
    'etc/nginx/conciliaextrato/tls/production-origin.key.prev',
  ]
  for (const f of files) {
    mkdirSync(dirname(join(root, f)), { recursive: true })
    writeFileSync(join(root, f), 'x')
  }
  const list = (withSecrets: boolean) =>
    execFileSync('sh', ['-c', `${configTar('production', withSecrets, root)} | tar -tf -`])
      .toString()
      .split('\n')
      .filter((l) => l && !l.endsWith('/'))
      .sort()
  try {
    assert.equal(list(false), [
      'etc/nginx/conciliaextrato/production.conf',
      'etc/nginx/conciliaextrato/tls/production-origin.crt',
      'srv/conciliaextrato/production/app.yaml',
      'srv/conciliaextrato/production/releases.jsonl',
    ])
    assert.equal(list(true), files.filter((f) => !f.includes('deploy.lock')).sort())
  } finally {
    rmSync(root, { recursive: true })
  }
})

test('restore goes to a scratch database first; the swap keeps the live one under another name', () => {
  assert.is(scratchDb('20261126T120000Z'), 'ce_restore_20261126t120000z')
  const r = pgRestoreScratch(t, 'ce_restore_x', 1000)
  assert.match(
    r,
    `-c 'DROP DATABASE IF EXISTS "ce_restore_x"' -c 'CREATE DATABASE "ce_restore_x" OWNER "conciliaextrato"'`,
  )
  // From a file, in parallel (a dump on stdin restores with one job).
  assert.match(
    r,
    'docker exec -e PGOPTIONS=\'-c synchronous_commit=off -c maintenance_work_mem=128MB\' "$pg" pg_restore --exit-on-error --no-owner --role=conciliaextrato -U conciliaextrato -d ce_restore_x -j "$jobs" "$f"',
  )
  const swap = pgSwap(t, 'ce_restore_x', 'conciliaextrato_before_x')
  assert.match(swap, 'ALTER DATABASE "conciliaextrato" RENAME TO "conciliaextrato_before_x";')
  // Dated, so backup can drop it after backup.keep.replaced_days (LGPD retention).
  assert.match(
    swap,
    /DO \$ce\$ BEGIN EXECUTE format\('\\''COMMENT ON DATABASE %I IS %L'\\'', '\\''conciliaextrato_before_x'\\'', '\\''replaced by restore at '\\'' \|\| to_char\(now\(\) AT TIME ZONE/,
  )
  const prune = pgDropReplaced(t, 14)
  assert.match(prune, "interval '\\''14 days'\\''")
  assert.match(prune, "datname LIKE '\\''conciliaextrato\\_before\\_%'\\''")
  assert.match(prune, 'echo "DROP DATABASE \\"$name\\";"')
  assert.match(prune, /found=\$\(docker exec "\$pg" psql /)
  assert.match(swap, 'ALTER DATABASE "ce_restore_x" RENAME TO "conciliaextrato";')
  assert.ok(swap.indexOf('pg_terminate_backend') < swap.indexOf('RENAME'))
  assert.not.match(swap, 'DROP DATABASE')
})

test('Redis restore: files staged while Redis serves, then swapped while it is stopped (no stale AOF survives)', () => {
  const stage = redisStage(t)
  assert.match(stage, `tar -C ${REDIS_STAGING} -xf -`)
  assert.match(stage, '--network none')
  assert.not.match(stage, 'docker stop', 'staging never stops Redis')
  assert.match(stage, 'docker create --name ce-production-redis-swap --network none')
  assert.match(stage, '! -name .ce-restore -exec rm -rf {} +', 'the helper removes all but the staged files')
  const swap = redisSwap(t, 'abc123')
  const stop = swap.indexOf('docker kill abc123')
  assert.ok(
    stop >= 0 && stop < swap.indexOf('docker start -a ce-production-redis-swap'),
    'files are swapped only once Redis stopped',
  )
  assert.ok(
    swap.indexOf('docker start -a ce-production-redis-swap') <
      swap.indexOf('docker start abc123 >/dev/null\n'),
  )
  assert.match(swap, '|| { docker start abc123 >/dev/null; exit 3; }', 'Redis starts again if the swap fails')
  assert.match(swap, 'INFO keyspace')
  assert.match(
    stopProject('ce-production-blue'),
    'docker ps -q --filter label=com.docker.compose.project=ce-production-blue',
  )
  const some = stopProject('ce-production-blue', ['api'])
  assert.match(some, '--filter label=com.docker.compose.service=api')
  assert.not.match(some, 'service=site')
})

test('verification output is parsed; count differences are named table by table', () => {
  assert.equal(parsePgVerify('{"public.a": 3}\ntok\n'), { counts: { 'public.a': 3 }, canary: 'tok' })
  assert.equal(compareCounts({ 'public.a': 3, 'public.b': 1 }, { 'public.a': 2, 'public.c': 0 }), [
    'public.a: backup has 3, restored has 2',
    'public.b: backup has 1, restored has no such table',
    'public.c: backup has no such table, restored has 0',
  ])
  assert.is(totalRows({ a: 2, b: 5 }), 7)
  assert.throws(() => parseManifest('{"format": 9}', 'backup X'), /manifest format 9 is not supported/)
  assert.throws(() => parseManifest('{"format": 1, "parts": {}}', 'backup X'), /lists no postgres.dump/)
  // A compression this code cannot unpack is refused when the manifest is read, not mid-restore.
  const parts = Object.fromEntries(
    ['postgres.dump', 'globals.sql', 'redis.tar', 'config.tar'].map((p) => [p, { bytes: 1 }]),
  )
  const manifest = (extra: object) => JSON.stringify({ format: 1, parts, postgres: {}, ...extra })
  assert.is(
    parseManifest(manifest({ postgres: { compression: 'zstd' } }), 'backup X').postgres.compression,
    'zstd',
  )
  assert.is(parseManifest(manifest({ base: { compression: 'gzip' } }), 'backup X').base?.compression, 'gzip')
  assert.throws(
    () => parseManifest(manifest({ postgres: { compression: 'xz' } }), 'backup X'),
    /backup X: the manifest's postgres.compression is "xz", which this runbook cannot unpack/,
  )
  assert.throws(
    () => parseManifest(manifest({ base: { compression: 'lz4' } }), 'backup X'),
    /base.compression is "lz4"/,
  )
})

const ENV = (backup: string) => `name: qa
kind: local
branch: staging
hosts:
  - { name: qa-1, address: 203.0.113.20, host_key: 'SHA256:JLMaqh8HJyBKDSUOY+IsmHSIiD8khfb1+x5vqEYo7eA' }
ssh: { user: deploy, key: { secret: SSH_PRIVATE_KEY } }
domains: { site: qa.example.com, saas: app.qa.example.com, api: api.qa.example.com }
images: { site: ghcr.io/o/site, saas: ghcr.io/o/saas, api: ghcr.io/o/api, postgres: postgres:15, redis: redis:7 }
secrets: [SSH_PRIVATE_KEY, BACKUP_KEY]
setup:
  firewall: { http_from: anywhere }
  deploy_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMkoayiSR6OjDO0KqyFDNGgH9jJGJnz3f1jko/vri05n ana@laptop']
${backup}
`

function load(backup: string) {
  const dir = mkdtempSync(join(tmpdir(), 'ce-env-'))
  writeFileSync(join(dir, 'qa.yaml'), ENV(backup))
  return loadEnv('qa', dir)
}

test('env backup: section read with defaults; a local dir is relative to the env file', () => {
  const env = load('backup:\n  store: { type: local, dir: ../backups }')
  assert.equal(env.backup?.keep, { daily: 7, weekly: 4, monthly: 12, replacedDays: 14 })
  assert.is(env.backup?.includeSecrets, false)
  assert.ok(env.backup?.store.type === 'local' && env.backup.store.dir.endsWith('/backups'))
})

test('env backup: S3 needs its credentials declared; bad fields are named', () => {
  let msg = ''
  try {
    load(
      'backup:\n  store: { type: s3, endpoint: "fra1.digitaloceanspaces.com", bucket: B, prefix: /x }\n  keep: { daily: -1 }',
    )
  } catch (err) {
    assert.instance(err, InputError)
    msg = (err as Error).message
  }
  assert.match(
    msg,
    'backup.store.endpoint: expected an endpoint URL like https://fra1.digitaloceanspaces.com',
  )
  assert.match(msg, 'backup.store.bucket: expected a bucket (Space) name')
  assert.match(msg, 'backup.store.prefix: expected a key prefix')
  assert.match(msg, 'backup.keep.daily: expected an integer from 0 to 1000')
  assert.match(msg, 'backup: SPACES_ACCESS_KEY_ID must also be listed under secrets')
  assert.match(msg, 'backup: SPACES_SECRET_ACCESS_KEY must also be listed under secrets')
})

test('parallel restore: the dump lands whole in a file, -j per CPU (at most 8), the file removed; no room or a short dump refused', () => {
  const root = mkdtempSync(join(tmpdir(), 'ce-pgrestore-'))
  // docker exec <cid> ...: the container's /tmp is a directory here; pg_restore logs its arguments.
  const docker = fakePostgresContainer(`
  sh) exec sh -c 'cat > "$1"' sh "\${ROOT}/$(basename "$5")";;
  stat) stat -c %s "\${ROOT}/$(basename "$4")";;
  nproc) echo "$CPUS";;
  pg_restore) echo "$e pg_restore $*" >> "$ROOT/log"; ls "$ROOT" >> "$ROOT/log";;`)
  const script = pgRestoreScratch(t, 'ce_restore_x', 1000)
  const dump = 'x'.repeat(1000)
  const run = (env: string, input = dump) =>
    docker(`export ROOT=${root} ${env}; printf '%s' '${input}' | { ${script}\n}`)
  const ok = run('AVAIL=100 CPUS=16')
  assert.is(ok.code, 0, ok.out)
  const log = readFileSync(join(root, 'log'), 'utf8')
  assert.match(log, 'PGOPTIONS=-c synchronous_commit=off -c maintenance_work_mem=128MB pg_restore')
  assert.match(log, '-j 8 /tmp/ce_restore_x.dump')
  assert.match(log, 'ce_restore_x.dump')
  assert.not.ok(existsSync(join(root, 'ce_restore_x.dump')), 'the dump file was left behind')
  // 1000 bytes + 10% needs 2 KiB: 1 KiB free is refused before anything is written.
  const full = run('AVAIL=1 CPUS=2')
  assert.is(full.code, 3)
  assert.match(full.out, 'has 1 KiB free in /tmp; the dump needs 2 KiB')
  // A dump cut short never reaches pg_restore.
  rmSync(join(root, 'log'))
  const short = run('AVAIL=100 CPUS=2', 'x'.repeat(10))
  assert.is(short.code, 1)
  assert.match(short.out, "the dump arrived with 10 bytes, the backup's manifest says 1000")
  assert.not.ok(existsSync(join(root, 'log')), 'pg_restore ran on a short dump')
  rmSync(root, { recursive: true })
})

test('a zstd dump is uncompressed into the file on its way in; an image without zstd, or a damaged stream, stops before pg_restore', () => {
  const root = mkdtempSync(join(tmpdir(), 'ce-pgrestore-zstd-'))
  const bin = join(root, 'bin')
  mkdirSync(bin)
  // The container's zstd: uncompresses by copying (the data is plain here), fails when told to.
  writeFileSync(
    join(bin, 'zstd'),
    '#!/bin/sh\n[ -z "$ZSTD_FAIL" ] || { echo "zstd: /*stdin*\\: unexpected end of file" >&2; exit 1; }\ncat\n',
    { mode: 0o755 },
  )
  // docker exec <cid> sh -c '<script>' [sh <file>]: the script runs here, the container's /tmp in $ROOT.
  const docker = fakePostgresContainer(`
  sh) PATH="$ZPATH" exec /bin/sh -c "$3" sh "\${ROOT}/$(basename "\${5:-none}")";;
  nproc) echo 2;;
  pg_restore) for f; do :; done; echo "pg_restore $*" >> "$ROOT/log"; cat "\${ROOT}/$(basename "$f")" >> "$ROOT/log";;`)
  const script = pgRestoreScratch(t, 'ce_restore_z', 1000, 'zstd')
  const run = (env: string) => docker(`export ROOT=${root} ${env}; printf '%s' 'plain-dump' | { ${script}\n}`)
  const ok = run(`AVAIL=100 ZPATH=${bin}:/usr/bin:/bin`)
  assert.is(ok.code, 0, ok.out)
  assert.match(readFileSync(join(root, 'log'), 'utf8'), 'pg_restore --exit-on-error')
  assert.match(readFileSync(join(root, 'log'), 'utf8'), 'plain-dump')
  assert.not.ok(existsSync(join(root, 'ce_restore_z.dump')), 'the dump file was left behind')
  // Room for 4 times the compressed bytes (1000 -> 4400 bytes: 5 KiB) is asked before anything is written.
  const full = run(`AVAIL=4 ZPATH=${bin}:/usr/bin:/bin`)
  assert.is(full.code, 3)
  assert.match(full.out, 'has 4 KiB free in /tmp; the dump needs 5 KiB')
  rmSync(join(root, 'log'))
  const damaged = run(`AVAIL=100 ZSTD_FAIL=1 ZPATH=${bin}:/usr/bin:/bin`)
  assert.is(damaged.code, 1)
  assert.match(damaged.out, 'unexpected end of file')
  assert.not.ok(existsSync(join(root, 'log')), 'pg_restore ran on a damaged dump')
  // The image has no zstd: said so, exit 3, nothing restored.
  const none = run('AVAIL=100 ZPATH=/nonexistent')
  assert.is(none.code, 3)
  assert.match(none.out, 'this backup is compressed with zstd and the Postgres image has no zstd')
  assert.not.ok(existsSync(join(root, 'log')), 'pg_restore ran without zstd')
  rmSync(root, { recursive: true })
})

test.run()

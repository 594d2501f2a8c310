import { remotePaths } from '../env/host-paths.ts'
import { TLS_DIR } from '../env/tls-paths.ts'
import { projectContainers, projectName } from './compose.ts'
import { quote } from './shell.ts'

// What backup and restore run on a host: Postgres and Redis inside their containers (never with a
// TTY: a TTY corrupts a binary dump), the host's deploy config as a tar. Pure: strings only.

export interface DataTarget {
  env: string
  user: string
  db: string
}

export const CANARY_TABLE = 'ce_backup_canary'
/** The point-in-time canary (lib/commands/pitr-canary.ts): written every minute, so never counted. */
export const PITR_CANARY_TABLE = 'ce_pitr_canary'

/** The running container of a data service, or a clear failure (exit 3) when it is not running. */
export function container(t: DataTarget, service: 'postgres' | 'redis', variable: string): string {
  const project = projectName(t.env, 'data')
  return [
    `${variable}=$(${projectContainers(project, service)})`,
    `[ -n "$${variable}" ] || { echo ${quote(`${service} of ${project} is not running: start it (make deploy) or check make status`)} >&2; exit 3; }`,
  ].join('\n')
}

/**
 * REDISCLI_AUTH exported from the env's data.env: the password Redis takes now (make rotate-secret
 * changes it while Redis runs, so the container's own variable may be an old one). Used as
 * `docker exec -e REDISCLI_AUTH ...`: the value never appears on a command line.
 */
export function redisAuth(env: string): string {
  return `REDISCLI_AUTH=$(. ${quote(remotePaths({ name: env }).dataEnv)} && printf '%s' "$REDIS_PASSWORD") && export REDISCLI_AUTH`
}

export const psql = (t: DataTarget, db = t.db, stdin = false) =>
  `docker exec${stdin ? ' -i' : ''} "$pg" psql -XAtq -v ON_ERROR_STOP=1 -U ${quote(t.user)} -d ${quote(db)}`

/** One JSON object {"schema.table": rows} of exact counts, in the transaction's snapshot. */
export const COUNTS_SQL = `SELECT coalesce(json_object_agg(t, n ORDER BY t), '{}') FROM (SELECT format('%I.%I', schemaname, relname) AS t, (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', schemaname, relname), false, true, '')))[1]::text::bigint AS n FROM pg_stat_user_tables WHERE relname <> '${PITR_CANARY_TABLE}') s`

/** Writes the canary row (SQL on stdin, so the token never appears in a process list). */
export function canaryWrite(t: DataTarget): string {
  return ['set -eu', container(t, 'postgres', 'pg'), psql(t, t.db, true)].join('\n')
}

export function canarySql(backupId: string, token: string): string {
  return [
    `CREATE TABLE IF NOT EXISTS ${CANARY_TABLE} (backup_id text PRIMARY KEY, token text NOT NULL, written_at timestamptz NOT NULL DEFAULT now());`,
    `INSERT INTO ${CANARY_TABLE} (backup_id, token) VALUES ('${backupId.replace(/'/g, "''")}', '${token.replace(/'/g, "''")}');`,
    '',
  ].join('\n')
}

/**
 * The Postgres image has zstd (and bash, for pipefail): the official postgres image carries both. Then
 * the dump and the base are compressed with zstd -1 (a third of gzip -1's CPU, and smaller); an image
 * without it gets gzip -1, as backups were taken before.
 */
const HAS_ZSTD = `docker exec "$pg" sh -c 'command -v zstd && command -v bash' >/dev/null 2>&1`

/** How a dump or base was compressed on the host: zstd -1, or gzip -1 where the image had no zstd. */
export type Compression = 'gzip' | 'zstd'

/**
 * Inside a container of the live Postgres image, before unpacking a zstd part: a clear failure (exit 3)
 * when the image has no zstd (the backup was taken with an image that had it).
 */
export const NEEDS_ZSTD = `command -v zstd >/dev/null || { echo ${quote('this backup is compressed with zstd and the Postgres image has no zstd: use the official postgres image (it carries zstd) or one with the zstd package')} >&2; exit 3; }`

/**
 * A custom-format dump (`pg_dump -Fc`) on stdout, inside one exported snapshot whose exact per-table row
 * counts are counted in that same snapshot (so they match the dump even while the app writes) and
 * reported on stderr as `ce-counts {json}`. Compressed inside the container (only the compressed bytes
 * cross docker exec, SSH and the store): uncompressed by pg_dump (-Z0) and piped through zstd -1, said on
 * stderr as `ce-dump compression=zstd`; without zstd in the image, pg_dump's own gzip at level 1 (the
 * default level made pg_dump CPU-bound). Any failure, pg_dump's inside the pipe too, exits non-zero, so
 * the dump is never taken for complete.
 */
export function pgDumpWithCounts(t: DataTarget): string {
  return [
    'set -eu',
    container(t, 'postgres', 'pg'),
    't=$(mktemp -d)',
    `trap 'exec 3>&- 2>/dev/null || true; rm -rf "$t"' EXIT`,
    'mkfifo "$t/sql"',
    `${psql(t, t.db, true)} <"$t/sql" >"$t/out" 2>"$t/err" &`,
    'holder=$!',
    'exec 3>"$t/sql"',
    `printf '%s\\n' 'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;' 'SELECT pg_export_snapshot();' ${quote(`${COUNTS_SQL};`)} '\\echo ce-ready' >&3`,
    'i=0',
    'until [ "$(sed -n 3p "$t/out")" = ce-ready ]; do',
    '  kill -0 "$holder" 2>/dev/null || { echo "psql could not open a snapshot:" >&2; cat "$t/err" >&2; exit 3; }',
    '  i=$((i+1)); [ "$i" -lt 1200 ] || { echo "psql did not export a snapshot within 120 s" >&2; exit 3; }',
    '  sleep 0.1',
    'done',
    'snap=$(sed -n 1p "$t/out")',
    `if ${HAS_ZSTD}; then`,
    '  echo "ce-dump compression=zstd" >&2',
    `  docker exec "$pg" bash -c ${quote(`set -o pipefail; pg_dump -Fc -Z0 --snapshot="$1" -U ${quote(t.user)} ${quote(t.db)} | zstd -1 -q`)} bash "$snap"`,
    'else',
    `  docker exec "$pg" pg_dump -Fc -Z1 --snapshot="$snap" -U ${quote(t.user)} ${quote(t.db)}`,
    'fi',
    'echo "ce-counts $(sed -n 2p "$t/out")" >&2',
    `echo 'COMMIT;' >&3`,
    'exec 3>&-',
    'wait "$holder"',
  ].join('\n')
}

export function pgGlobals(t: DataTarget): string {
  return [
    'set -eu',
    container(t, 'postgres', 'pg'),
    `docker exec "$pg" pg_dumpall --globals-only -U ${quote(t.user)}`,
  ].join('\n')
}

/**
 * A physical base backup on stdout: pg_basebackup's tar (one tablespace; -X fetch puts the WAL it needs
 * to be consistent inside it; -c fast: a checkpoint now, not at the next scheduled one), over the
 * container's socket (initdb's `local replication all trust`). On stderr: the cluster's system
 * identifier first (`ce-base system=`), pg_basebackup -v's start and end points, then when it finished
 * (`ce-base finished=`, the host's clock, as Postgres's commit times are). See lib/backup/base-backup.ts.
 */
export function pgBaseBackup(t: DataTarget): string {
  return [
    'set -eu',
    container(t, 'postgres', 'pg'),
    `sys=$(docker exec "$pg" psql -XAtq -v ON_ERROR_STOP=1 -U ${quote(t.user)} -d ${quote(t.db)} -c 'SELECT system_identifier FROM pg_control_system()')`,
    'echo "ce-base system=$sys" >&2',
    // What the data directory unpacks to (the restore's disk check), before it is compressed.
    `size=$(docker exec "$pg" psql -XAtq -v ON_ERROR_STOP=1 -U ${quote(t.user)} -d ${quote(t.db)} -c 'SELECT sum(pg_database_size(datname))::bigint FROM pg_database')`,
    // Compressed by pg_basebackup itself (zstd -1 where the image can unpack it again, else gzip -1):
    // about a third of the bytes to carry, seal, store and read back.
    `if ${HAS_ZSTD}; then c=zstd; else c=gzip; fi`,
    'echo "ce-base size=$size compression=$c" >&2',
    `docker exec "$pg" pg_basebackup -U ${quote(t.user)} -D - -F tar -X fetch -c fast -v --compress=client-$c:1`,
    'echo "ce-base finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >&2',
  ].join('\n')
}

/**
 * A BGSAVE that really finished (LASTSAVE moved, rdb_last_bgsave_status:ok), then /data as a tar on
 * stdout: dump.rdb, and the AOF directory when AOF is on (Redis loads the AOF first at start).
 * Reports `ce-redis aof=<yes|no> keys=<n>` on stderr.
 */
export function redisSnapshot(t: DataTarget): string {
  return [
    'set -eu',
    container(t, 'redis', 'r'),
    redisAuth(t.env),
    'cli() { docker exec -e REDISCLI_AUTH "$r" redis-cli --no-auth-warning "$@"; }',
    'before=$(cli LASTSAVE)',
    '[ "$before" -lt "$(date +%s)" ] || sleep 1',
    'i=0',
    'until cli BGSAVE 2>&1 | grep "started" >/dev/null; do',
    '  i=$((i+1)); [ "$i" -lt 600 ] || { echo "Redis refused BGSAVE for 120 s (another save running?)" >&2; exit 3; }',
    '  sleep 0.2',
    'done',
    'i=0',
    'while :; do',
    '  info=$(cli INFO persistence | tr -d "\\r")',
    '  if [ "$(cli LASTSAVE)" != "$before" ] && echo "$info" | grep "^rdb_bgsave_in_progress:0" >/dev/null; then break; fi',
    '  i=$((i+1)); [ "$i" -lt 3000 ] || { echo "Redis BGSAVE did not finish within 600 s" >&2; exit 3; }',
    '  sleep 0.2',
    'done',
    'echo "$info" | grep "^rdb_last_bgsave_status:ok" >/dev/null || { echo "Redis BGSAVE failed: $(echo "$info" | grep rdb_last_bgsave_status)" >&2; exit 3; }',
    'aof=$(cli CONFIG GET appendonly | sed -n 2p | tr -d "\\r")',
    'keys=$(cli INFO keyspace | tr -d "\\r" | sed -n "s/^db[0-9]*:keys=\\([0-9]*\\).*/\\1/p" | awk "{s+=\\$1} END {print s+0}")',
    'echo "ce-redis aof=$aof keys=$keys" >&2',
    'if [ "$aof" = yes ]; then set -- dump.rdb appendonlydir; else set -- dump.rdb; fi',
    // The AOF may grow while it is read: that is fine (Redis loads a truncated tail), so only a real
    // error (status 2) fails.
    'status=0; docker exec "$r" tar -C /data --warning=no-file-changed -cf - "$@" || status=$?',
    '[ "$status" -le 1 ] || exit "$status"',
  ].join('\n')
}

/**
 * Files of the config that hold secrets: the app's, each service's and data's variables, Redis's config, a swarm
 * manager's migrate.env (connection URLs), and the origin TLS private keys (and their .prev copies).
 */
export function configSecretPaths(env: string): string[] {
  const base = `srv/conciliaextrato/${env}`
  return [
    `${base}/app.env`,
    `${base}/data.env`,
    `${base}/migrate.env`,
    ...['site', 'saas', 'api'].map((svc) => `${base}/${svc}.env`),
    `${base}/redis`,
    `${TLS_DIR.replace(/^\//, '')}/*.key*`,
  ]
}

/**
 * The host's deploy config as a tar on stdout: compose files, release history, nginx; secrets only
 * when asked (backup.include_secrets). `root` is / on a host (another directory in the unit tests).
 */
export function configTar(env: string, includeSecrets: boolean, root = '/'): string {
  const base = `srv/conciliaextrato/${env}`
  const excludes = [
    `${base}/deploy.lock`,
    `${base}/backup.lock`,
    `${base}/*.dump`,
    ...(includeSecrets ? [] : configSecretPaths(env)),
  ]
  return [
    'set -eu',
    `cd ${quote(root)} && tar -cf - ${excludes.map((e) => `--exclude=${quote(e)}`).join(' ')} ${quote(base)} $(ls -d etc/nginx/conciliaextrato 2>/dev/null)`,
  ].join('\n')
}

// ---- restore ----

export const scratchDb = (backupId: string) => `ce_restore_${backupId.toLowerCase()}`

/** Parallel pg_restore jobs at most (index builds and table loads; more only queue on the disk). */
export const MAX_RESTORE_JOBS = 8

/** Settings of pg_restore's sessions into the scratch database (see pgRestoreScratch). */
export const RESTORE_PGOPTIONS = '-c synchronous_commit=off -c maintenance_work_mem=128MB'

/**
 * A fresh scratch database, then the dump (stdin, `bytes` long) written to a file in the Postgres
 * container and restored from it with `pg_restore -j` (one job per CPU of the host, at most 8): tables
 * load and indexes build in parallel, which a dump on stdin cannot do. A zstd dump (`compression`) is
 * uncompressed on its way into the file (zstd checks its own checksum; pg_restore then reads no
 * compressed data); a dump pg_dump compressed itself arrives as it is, its size checked. The file is
 * removed however the command ends; a host without room for it (the dump, at least 4 times its bytes
 * when zstd, plus 10%) is refused before anything is written. The live database is not touched.
 */
export function pgRestoreScratch(
  t: DataTarget,
  scratch: string,
  bytes: number,
  compression?: Compression,
): string {
  const zstd = compression === 'zstd'
  const need = Math.ceil(((zstd ? bytes * 4 : bytes) * 1.1) / 1024)
  return [
    'set -eu',
    container(t, 'postgres', 'pg'),
    `f=${quote(`/tmp/${scratch}.dump`)}`,
    `trap 'docker exec "$pg" rm -f "$f"' EXIT`,
    `avail=$(docker exec "$pg" df -Pk /tmp | awk 'NR==2 {print $4}')`,
    `if [ "$avail" -lt ${need} ]; then echo "the Postgres container has $avail KiB free in /tmp; the dump needs ${need} KiB" >&2; exit 3; fi`,
    ...(zstd ? [`docker exec "$pg" sh -c ${quote(NEEDS_ZSTD)}`] : []),
    recreateDb(t, scratch),
    ...(zstd
      ? [`docker exec -i "$pg" sh -c 'zstd -dcq > "$1"' sh "$f"`]
      : [
          `docker exec -i "$pg" sh -c 'cat > "$1"' sh "$f"`,
          `got=$(docker exec "$pg" stat -c %s "$f")`,
          `if [ "$got" -ne ${bytes} ]; then echo "the dump arrived with $got bytes, the backup's manifest says ${bytes}" >&2; exit 1; fi`,
        ]),
    ...pgRestoreFile(t, scratch),
  ].join('\n')
}

/** A fresh, empty database `db` (dropped first if it exists), owned by the app's user. `$pg`: Postgres. */
export function recreateDb(t: DataTarget, db: string): string {
  return `${psql(t, 'postgres')} -c ${quote(`DROP DATABASE IF EXISTS "${db}"`)} -c ${quote(`CREATE DATABASE "${db}" OWNER "${t.user}"`)}`
}

/** `pg_restore -j` of the custom-format dump "$f" (in the Postgres container "$pg") into `db`. */
export function pgRestoreFile(t: DataTarget, db: string): string[] {
  return [
    `jobs=$(docker exec "$pg" nproc)`,
    `if [ "$jobs" -gt ${MAX_RESTORE_JOBS} ]; then jobs=${MAX_RESTORE_JOBS}; fi`,
    `echo "pg_restore -j $jobs" >&2`,
    // A scratch database: a commit need not wait for its WAL flush (a crash discards the scratch
    // anyway, and the swap's own commit flushes everything before it), and index builds sort in memory
    // (128 MB per job, at most MAX_RESTORE_JOBS jobs).
    `docker exec -e PGOPTIONS=${quote(RESTORE_PGOPTIONS)} "$pg" pg_restore --exit-on-error --no-owner --role=${quote(t.user)} -U ${quote(t.user)} -d ${quote(db)} -j "$jobs" "$f"`,
  ]
}

/** Row counts (one JSON line) and the canary's token (one line, empty when absent) in a database. */
export function pgVerify(t: DataTarget, db: string, backupId: string): string {
  return [
    'set -eu',
    container(t, 'postgres', 'pg'),
    `${psql(t, db)} -c ${quote(COUNTS_SQL)}`,
    `${psql(t, db)} -c ${quote(`SELECT coalesce((SELECT token FROM ${CANARY_TABLE} WHERE backup_id = '${backupId.replace(/'/g, "''")}'), '')`)}`,
  ].join('\n')
}

export function parsePgVerify(out: string): { counts: Record<string, number>; canary: string } {
  const [counts = '{}', canary = ''] = out.split('\n')
  return { counts: JSON.parse(counts) as Record<string, number>, canary: canary.trim() }
}

/**
 * The verified scratch database becomes the live one by two renames; the database it replaces is
 * kept under `keepAs` (nothing lost). Sessions on the live database are ended first (the app is stopped).
 */
export function pgSwap(t: DataTarget, scratch: string, keepAs: string): string {
  const sql = [
    `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname IN ('${t.db}', '${scratch}') AND pid <> pg_backend_pid();`,
    `ALTER DATABASE "${t.db}" RENAME TO "${keepAs}";`,
    `ALTER DATABASE "${scratch}" RENAME TO "${t.db}";`,
    // When it was replaced: how long it has been kept (backup drops it after backup.keep.replaced_days).
    // (COMMENT takes a literal only: the time goes in through format() and EXECUTE.)
    `DO $ce$ BEGIN EXECUTE format('COMMENT ON DATABASE %I IS %L', '${keepAs}', '${REPLACED_MARK}' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')); END $ce$;`,
  ].join('\n')
  return [
    'set -eu',
    container(t, 'postgres', 'pg'),
    `echo ${quote(sql)} | ${psql(t, 'postgres', true)} >/dev/null`,
  ].join('\n')
}

const REPLACED_MARK = 'replaced by restore at '

/**
 * Drops the databases a restore replaced (`<db>_before_<time>`, marked with when) longer than `days`
 * ago, and prints `dropped <name> <when>` for each, `kept <name> <when>` for the others (`undated`:
 * replaced before the mark existed; never dropped automatically). LGPD: bounded retention.
 */
export function pgDropReplaced(t: DataTarget, days: number): string {
  const note = "shobj_description(oid, 'pg_database')"
  const when = `substr(${note}, ${REPLACED_MARK.length + 1})`
  // CASE, not AND: the date is cast only where the comment is ours.
  const list = [
    `SELECT datname || ' ' || CASE WHEN ${note} LIKE '${REPLACED_MARK}%' THEN ${when} ELSE 'undated' END || ' ' ||`,
    `  CASE WHEN ${note} LIKE '${REPLACED_MARK}%' THEN`,
    `    CASE WHEN ${when}::timestamptz < now() - interval '${Math.floor(days)} days' THEN 'drop' ELSE 'keep' END`,
    "  ELSE 'keep' END",
    `FROM pg_database WHERE datname LIKE '${t.db.replace(/_/g, '\\_')}\\_before\\_%' ORDER BY datname`,
  ].join('\n')
  return [
    'set -eu',
    container(t, 'postgres', 'pg'),
    `found=$(${psql(t, 'postgres')} -c ${quote(list)})`,
    '[ -n "$found" ] || exit 0',
    'echo "$found" | while read -r name when verdict; do',
    '  if [ "$verdict" = drop ]; then',
    `    echo "DROP DATABASE \\"$name\\";" | ${psql(t, 'postgres', true)} >/dev/null && echo "dropped $name $when"`,
    '  else echo "kept $name $when"; fi',
    'done',
  ].join('\n')
}

export function pgDropDb(t: DataTarget, db: string): string {
  return [
    'set -eu',
    container(t, 'postgres', 'pg'),
    `${psql(t, 'postgres')} -c ${quote(`DROP DATABASE IF EXISTS "${db}"`)}`,
  ].join('\n')
}

/** Where the backup's Redis files wait inside Redis's own volume (Redis ignores a subdirectory). */
export const REDIS_STAGING = '/data/.ce-restore'

/** The stopped helper container that swaps the staged files in: created while staging, started in the pause. */
export function redisSwapHelper(env: string): string {
  return `ce-${env}-redis-swap`
}

/** Inside the helper, Redis stopped: every file of /data but the staged ones removed, the staged ones renamed in. */
const SWAP_FILES = [
  'set -eu',
  'cd /data',
  `[ -d ${REDIS_STAGING} ] || { echo "no staged Redis files in ${REDIS_STAGING}" >&2; exit 3; }`,
  `find . -mindepth 1 -maxdepth 1 ! -name ${REDIS_STAGING.split('/').pop()} -exec rm -rf {} +`,
  `find ${REDIS_STAGING} -mindepth 1 -maxdepth 1 -exec mv {} . \\;`,
  `rmdir ${REDIS_STAGING}`,
].join('; ')

/**
 * Before anything stops: the backup's Redis files (tar on stdin) unpacked into a staging directory in
 * Redis's volume by a throwaway container of the same image with no network (Redis keeps serving),
 * and the swap helper created (not started). Prints Redis's container id, for the swap.
 */
export function redisStage(t: DataTarget): string {
  const helper = quote(redisSwapHelper(t.env))
  return [
    'set -eu',
    container(t, 'redis', 'r'),
    `vol=$(docker inspect -f '{{range .Mounts}}{{if eq .Destination "/data"}}{{.Name}}{{end}}{{end}}' "$r")`,
    `img=$(docker inspect -f '{{.Config.Image}}' "$r")`,
    `docker run --rm -i --network none -v "$vol":/data --entrypoint sh "$img" -c 'rm -rf ${REDIS_STAGING} && mkdir ${REDIS_STAGING} && tar -C ${REDIS_STAGING} -xf - && chown -R redis:redis ${REDIS_STAGING}'`,
    `docker rm -f ${helper} >/dev/null 2>&1 || true`,
    `docker create --name ${helper} --network none -v "$vol":/data --entrypoint sh "$img" -c ${quote(SWAP_FILES)} >/dev/null`,
    'echo "$r"',
  ].join('\n')
}

/**
 * The pause's Redis part, in as few Docker calls as it takes: Redis (container `redisId`) killed, the
 * helper swaps the files (the old AOF cannot replay over the restored data), Redis started; once it
 * answers PING, its key count is printed. If the swap fails, Redis starts again on its own files.
 * The helper container is removed afterwards (redisUnstage), outside the pause.
 */
export function redisSwap(t: DataTarget, redisId: string): string {
  const helper = quote(redisSwapHelper(t.env))
  const r = quote(redisId)
  return [
    'set -eu',
    // Killed, not stopped: every client of Redis is stopped, and its data is about to be replaced
    // (the safety backup holds it): a final save would only lengthen the pause.
    `docker kill ${r} >/dev/null`,
    `docker start -a ${helper} || { docker start ${r} >/dev/null; exit 3; }`,
    `docker start ${r} >/dev/null`,
    redisAuth(t.env),
    `docker exec -e REDISCLI_AUTH ${r} sh -c ${quote(
      [
        'i=0',
        'until redis-cli --no-auth-warning PING 2>/dev/null | grep PONG >/dev/null; do i=$((i+1)); [ "$i" -lt 600 ] || { echo "Redis did not answer within 60 s after the restore" >&2; exit 3; }; sleep 0.1; done',
        "redis-cli --no-auth-warning INFO keyspace | tr -d '\\r' | sed -n 's/^db[0-9]*:keys=\\([0-9]*\\).*/\\1/p' | awk '{s+=$1} END {print s+0}'",
      ].join('; '),
    )}`,
  ].join('\n')
}

/** Removes the swap helper, and what a failed run staged (Redis ignores it, but it takes space). */
export function redisUnstage(t: DataTarget): string {
  return [
    `docker rm -f ${quote(redisSwapHelper(t.env))} >/dev/null 2>&1 || true`,
    container(t, 'redis', 'r'),
    `docker exec "$r" rm -rf ${REDIS_STAGING}`,
  ].join('\n')
}

/** Stops a colour's containers (of `services` only, when given) and prints their ids (to start the very same ones again). */
export function stopProject(project: string, services?: readonly string[]): string {
  const ids = services
    ? services.map((s) => `$(${projectContainers(project, s)})`).join(' ')
    : `$(${projectContainers(project)})`
  return `ids=$(echo ${ids}); [ -z "$ids" ] || docker stop -t 10 $ids >/dev/null; echo $ids`
}

export function startContainers(ids: string[]): string {
  return ids.length ? `docker start ${ids.map(quote).join(' ')} >/dev/null` : 'true'
}

/**
 * Drill: the backup's Redis files (tar on stdin) loaded by a throwaway redis-server from the same
 * image, with no network, as production would load them (AOF first when it was on); prints its keys.
 */
export function redisDrill(t: DataTarget, aof: boolean): string {
  const inner = [
    'set -eu',
    'mkdir -p /tmp/drill && tar -C /tmp/drill -xf -',
    `redis-server --dir /tmp/drill --port 6399 --appendonly ${aof ? 'yes' : 'no'} --daemonize yes --logfile /tmp/drill.log`,
    'i=0; until redis-cli -p 6399 PING 2>/dev/null | grep PONG >/dev/null; do i=$((i+1)); [ "$i" -lt 300 ] || { cat /tmp/drill.log >&2; exit 3; }; sleep 0.2; done',
    `redis-cli -p 6399 INFO keyspace | tr -d '\\r' | sed -n 's/^db[0-9]*:keys=\\([0-9]*\\).*/\\1/p' | awk '{s+=$1} END {print s+0}'`,
    'redis-cli -p 6399 SHUTDOWN NOSAVE >/dev/null 2>&1 || true',
  ].join('\n')
  return [
    'set -eu',
    container(t, 'redis', 'r'),
    `img=$(docker inspect -f '{{.Config.Image}}' "$r")`,
    `docker run --rm -i --network none --entrypoint sh "$img" -c ${quote(inner)}`,
  ].join('\n')
}

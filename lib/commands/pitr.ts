import {
  type Compression,
  container,
  type DataTarget,
  NEEDS_ZSTD,
  pgRestoreFile,
  psql,
  recreateDb,
} from './backup.ts'
import { quote } from './shell.ts'

// Restore to a point in time, the host's half (lib/backup/pitr.ts drives it): a throwaway Postgres
// server (the live container's image, no network) on a volume of its own gets the base backup's data
// directory and the archived WAL, replays it to the target and promotes; its database is then copied
// into the live server's scratch database, which restore verifies and swaps as for a dump. Nothing
// live is touched here. Run as the deploy user (docker), no sudo. Pure: commands as strings.

/** The recovery server's container and volume (one per env: restore holds the deploy lock). */
export const pitrName = (env: string) => `ce-${env}-pitr`

/** Where the archived WAL waits inside the recovery server's data directory, gzipped, one file per segment. */
export const PITR_WAL_DIR = 'ce-wal'
const PGDATA = '/var/lib/postgresql/data'

/** `img`: the live Postgres container's image (the same major version as the data it wrote). */
function liveImage(t: DataTarget): string[] {
  return [container(t, 'postgres', 'pg'), `img=$(docker inspect -f '{{.Config.Image}}' "$pg")`]
}

/** Whatever an earlier run left (container, volume) removed. Idempotent. */
export function pitrRemove(env: string): string {
  const name = quote(pitrName(env))
  return [
    `docker rm -f ${name} >/dev/null 2>&1 || true`,
    `docker volume rm ${name} >/dev/null 2>&1 || true`,
  ].join('\n')
}

/** Whatever an earlier run left removed, then a fresh, labelled volume for the recovery server. */
export function pitrVolume(env: string): string {
  return [
    'set -eu',
    pitrRemove(env),
    `docker volume create --label conciliaextrato.pitr=${quote(env)} ${quote(pitrName(env))} >/dev/null`,
  ].join('\n')
}

/**
 * The base backup's tar (stdin, `bytes` long; gzip or zstd when `packed` says so) unpacked into the volume,
 * after checking the disk has room for it and the WAL (`walBytes`, unpacked) with 10% to spare: a full disk is refused before
 * anything is written. Then recovery.signal: the server starts in archive recovery. The WAL is
 * unpacked beside it at the same time (pitrLoadWal, into ce-wal/).
 */
export function pitrLoadBase(
  t: DataTarget,
  bytes: number,
  walBytes: number,
  packed?: { compression?: Compression; data_bytes?: number },
): string {
  // A compressed base unpacks to about the databases' size it recorded (at least 4 times its bytes if not).
  const unpacked = packed?.compression ? Math.max(packed.data_bytes ?? 0, bytes * 4) : bytes
  const need = Math.ceil(((unpacked + walBytes) * 1.1) / 1024)
  const inner = [
    'set -eu',
    `avail=$(df -Pk /pgdata | awk 'NR==2 {print $4}')`,
    `if [ "$avail" -lt ${need} ]; then echo "the Docker disk has $avail KiB free; the base backup and its WAL need ${need} KiB" >&2; exit 3; fi`,
    ...unpackTar(packed?.compression, '/pgdata'),
    'touch /pgdata/recovery.signal',
  ].join('\n')
  return [
    'set -eu',
    ...liveImage(t),
    `docker run --rm -i --network none -v ${quote(pitrName(t.env))}:/pgdata --entrypoint sh "$img" -c ${quote(inner)}`,
  ].join('\n')
}

/** tar -x of stdin into `dir`, uncompressing it as `compression` says (zstd: the image must have it). */
export function unpackTar(compression: Compression | undefined, dir: string): string[] {
  if (compression === 'gzip') return [`tar -xz -C ${dir}`]
  if (compression === 'zstd') return [NEEDS_ZSTD, `tar --zstd -x -C ${dir}`]
  return [`tar -x -C ${dir}`]
}

/** A tar of `ce-wal/<segment>.gz` files (stdin) unpacked beside the data directory (tar makes ce-wal/). */
export function pitrLoadWal(t: DataTarget): string {
  return [
    'set -eu',
    ...liveImage(t),
    `docker run --rm -i --network none -v ${quote(pitrName(t.env))}:/pgdata --entrypoint tar "$img" -x -C /pgdata`,
  ].join('\n')
}

/** Postgres's restore_command: a segment from the WAL directory, or a failure (not archived) for any other. */
export function pitrRestoreCommand(): string {
  const file = `${PGDATA}/${PITR_WAL_DIR}/%f.gz`
  return `test -f ${file} && gunzip -c ${file} > %p`
}

/**
 * The server's `postgres` arguments: archive recovery to `target` (an ISO time, or 'latest': every WAL
 * segment there is), then promote. No listening socket but the container's own, no archiving.
 */
export function pitrServerArgs(target: string): string[] {
  const args = [
    'postgres',
    '-c',
    'listen_addresses=',
    '-c',
    'archive_mode=off',
    '-c',
    `restore_command=${pitrRestoreCommand()}`,
  ]
  if (target !== 'latest')
    // Postgres's own form: its setting's parser refuses ISO 8601's T and Z.
    args.push(
      '-c',
      `recovery_target_time=${target.replace('T', ' ').replace(/Z$/, '+00')}`,
      '-c',
      'recovery_target_action=promote',
    )
  return args
}

/** The recovery server started (detached) on the volume, which holds recovery.signal. */
export function pitrStart(t: DataTarget, target: string): string {
  const name = quote(pitrName(t.env))
  return [
    'set -eu',
    ...liveImage(t),
    `docker run -d --name ${name} --label conciliaextrato.pitr=${quote(t.env)} --network none -v ${name}:${PGDATA} "$img" ${pitrServerArgs(target).map(quote).join(' ')} >/dev/null`,
  ].join('\n')
}

/**
 * Waits until the server has replayed and promoted (pg_is_in_recovery() false), at most `timeoutS`;
 * a server that stopped (Postgres refuses a target it cannot reach) or a timeout: exit 3 with the end
 * of its log. Prints the last replayed transaction's commit time (UTC, empty when none was replayed),
 * then the log lines that say where replay stopped.
 */
export function pitrWait(t: DataTarget, timeoutS: number): string {
  const name = quote(pitrName(t.env))
  const sql = `SELECT coalesce(to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), '')`
  return [
    'set -eu',
    `c=${name}`,
    'SECONDS=0',
    'while :; do',
    `  state=$(docker inspect -f '{{.State.Status}}' "$c" 2>/dev/null || echo gone)`,
    '  if [ "$state" != running ]; then echo "the recovery server stopped ($state); the end of its log:" >&2; docker logs --tail 15 "$c" >&2 2>&1 || true; exit 3; fi',
    `  r=$(docker exec "$c" psql -XAtq -U ${quote(t.user)} -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null || true)`,
    '  [ "$r" != f ] || break',
    `  if [ "$SECONDS" -ge ${timeoutS} ]; then echo "recovery did not finish within ${timeoutS} s; the end of its log:" >&2; docker logs --tail 15 "$c" >&2 2>&1; exit 3; fi`,
    '  sleep 1',
    'done',
    `docker exec "$c" psql -XAtq -U ${quote(t.user)} -d postgres -c ${quote(sql)}`,
    `docker logs "$c" 2>&1 | grep -E 'recovery stopping|last completed transaction|redo done|selected new timeline' | sed 's/^/ce-pitr-log /' || true`,
  ].join('\n')
}

/**
 * The recovered database copied into the live server's scratch database `scratch`: pg_dump -Fc from the
 * recovery server into a file in the live Postgres container, then pg_restore -j from it (as a dump
 * restore does). Then the row counts of both, one JSON line each: recovered, then scratch.
 */
export function pitrCopy(t: DataTarget, scratch: string, countsSql: string): string {
  const name = quote(pitrName(t.env))
  return [
    'set -eu',
    container(t, 'postgres', 'pg'),
    `f=${quote(`/tmp/${scratch}.dump`)}`,
    `trap 'docker exec "$pg" rm -f "$f"' EXIT`,
    recreateDb(t, scratch),
    `docker exec ${name} pg_dump -Fc -Z0 -U ${quote(t.user)} ${quote(t.db)} | docker exec -i "$pg" sh -c 'cat > "$1"' sh "$f"`,
    ...pgRestoreFile(t, scratch),
    `docker exec ${name} psql -XAtq -v ON_ERROR_STOP=1 -U ${quote(t.user)} -d ${quote(t.db)} -c ${quote(countsSql)}`,
    `${psql(t, scratch)} -c ${quote(countsSql)}`,
  ].join('\n')
}

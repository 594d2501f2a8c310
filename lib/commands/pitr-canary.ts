import { container, type DataTarget, PITR_CANARY_TABLE, psql } from './backup.ts'
import { quote } from './shell.ts'

// The point-in-time canary: a row written at a known time (its commit's own clock) into the live
// database, once a watchdog run and once per restore drill. A restore to a time T must bring back the
// newest row written before T and none written after it: proof that replay stopped at T, not at the
// base nor at the end of the archive. Pure: SQL and shell as strings.

export { PITR_CANARY_TABLE }
/** Rows older than this go as new ones come: the table stays a few thousand rows. */
export const PITR_CANARY_KEEP_DAYS = 40

const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`
const iso = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', ${ISO})`

/**
 * One statement string (one transaction): the table if missing, old rows pruned, then the row, whose
 * time is printed (ISO, UTC). `writer` says who wrote it (watchdog, restore-drill).
 */
export function canaryWriteSql(writer: string): string {
  return [
    `CREATE TABLE IF NOT EXISTS ${PITR_CANARY_TABLE} (at timestamptz PRIMARY KEY DEFAULT clock_timestamp(), writer text NOT NULL);`,
    `DELETE FROM ${PITR_CANARY_TABLE} WHERE at < now() - interval '${PITR_CANARY_KEEP_DAYS} days';`,
    `INSERT INTO ${PITR_CANARY_TABLE} (writer) VALUES ('${writer.replace(/'/g, "''")}') RETURNING ${iso('at')};`,
  ].join(' ')
}

/** The restore drill's own canary, written into the live database; prints its time. */
export function pitrCanaryWrite(t: DataTarget, writer: string): string {
  return ['set -eu', container(t, 'postgres', 'pg'), `${psql(t)} -c ${quote(canaryWriteSql(writer))}`].join(
    '\n',
  )
}

/** `ISO time|segment`: the WAL switched (so the segment holding everything before it is archived next). */
export function walSwitch(t: DataTarget): string {
  return [
    'set -eu',
    container(t, 'postgres', 'pg'),
    `${psql(t)} -c ${quote(`SELECT ${iso('now()')} || '|' || pg_walfile_name(pg_switch_wal())`)}`,
  ].join('\n')
}

/**
 * In database `db`: `<rows after T>|<newest row at or before T, ISO>`; `absent` when the table is not
 * there (no canary was ever written before the base backup).
 */
export function canaryProbe(t: DataTarget, db: string, target: string): string {
  const at = `'${target.replace(/'/g, "''")}'::timestamptz`
  const sql = `SELECT count(*) FILTER (WHERE at > ${at}) || '|' || coalesce(${iso(`max(at) FILTER (WHERE at <= ${at})`)}, '') FROM ${PITR_CANARY_TABLE}`
  return [
    'set -eu',
    container(t, 'postgres', 'pg'),
    `if [ "$(${psql(t, db)} -c ${quote(`SELECT to_regclass('public.${PITR_CANARY_TABLE}') IS NOT NULL`)})" = t ]; then`,
    `  ${psql(t, db)} -c ${quote(sql)}`,
    'else echo absent; fi',
  ].join('\n')
}

export interface CanarySeen {
  /** Rows written after the target (a restore to the target must have none). */
  after: number
  /** The newest row written at or before the target ('' when none). */
  newest: string
}

export function parseCanaryProbe(out: string): CanarySeen | undefined {
  const line = out.trim().split('\n').at(-1)?.trim() ?? ''
  if (line === 'absent') return { after: 0, newest: '' }
  const m = /^(\d+)\|(\S*)$/.exec(line)
  if (!m) return undefined
  return { after: Number(m[1]), newest: m[2] ?? '' }
}

import { container, type DataTarget, pgRestoreFile, psql, recreateDb } from './backup.ts'
import { quote } from './shell.ts'

// make rehearse-migration's commands on the data host: the scratch copy's columns and constraints, the
// masking SQL applied to it, and the release's migrate run against it alone. Pure, unit tested as strings.

/** Text columns of the public schema's tables: `table<TAB>column` lines. */
export const COLUMNS_SQL = `SELECT c.table_name, c.column_name FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name) WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.data_type IN ('text', 'character varying', 'character') ORDER BY 1, 2`

/** Constraints of the public schema: `table<TAB>name<TAB>type<TAB>validated` lines. */
export const CONSTRAINTS_SQL = `SELECT conrelid::regclass::text, conname, contype, convalidated FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid <> 0 ORDER BY 1, 2`

/** One query on `db`, tab-separated rows. */
export function pgQuery(t: DataTarget, db: string, sql: string): string {
  return ['set -eu', container(t, 'postgres', 'pg'), `${psql(t, db)} -F '\t' -c ${quote(sql)}`].join('\n')
}

/** SQL on stdin run on `db` in one transaction, stopping at the first error. */
export function pgApply(t: DataTarget, db: string): string {
  // -1: one transaction; ON_ERROR_STOP (psql's defaults here) stops at the first error.
  return ['set -eu', container(t, 'postgres', 'pg'), `${psql(t, db, true)} -1`].join('\n')
}

/**
 * The release's `api migrate` against the scratch database only: its variables (DATABASE_URL naming the
 * scratch database) come on stdin into a 0600 file removed afterwards; the exit code is migrate's.
 */
export function migrateScratch(network: string, image: string): string {
  return [
    'set -u',
    'umask 077',
    'f=$(mktemp)',
    'cat > "$f"',
    `docker run --rm --network ${quote(network)} --env-file "$f" ${quote(image)} migrate`,
    'rc=$?',
    'rm -f "$f"',
    'exit $rc',
  ].join('\n')
}

/**
 * A copy of the live database into `scratch`, on the data host (deploy's rehearsal of a release's
 * migrations): pg_dump of the live database inside the Postgres container, restored into a new scratch
 * database; the dump removed whatever happens. Refused (exit 3) when the container's /tmp has less room
 * than the live database's size. The live database is only read.
 */
export function cloneLiveToScratch(t: DataTarget, scratch: string): string {
  return [
    'set -eu',
    container(t, 'postgres', 'pg'),
    `f=${quote(`/tmp/${scratch}.dump`)}`,
    `trap 'docker exec "$pg" rm -f "$f"' EXIT`,
    `size=$(${psql(t, t.db)} -tAc ${quote('SELECT pg_database_size(current_database()) / 1024')})`,
    `avail=$(docker exec "$pg" df -Pk /tmp | awk 'NR==2 {print $4}')`,
    `if [ "$avail" -lt "$size" ]; then echo "the Postgres container has $avail KiB free in /tmp; a copy of ${t.db} may need $size KiB" >&2; exit 3; fi`,
    recreateDb(t, scratch),
    `docker exec "$pg" pg_dump -Fc -U ${quote(t.user)} -f "$f" ${quote(t.db)}`,
    ...pgRestoreFile(t, scratch),
  ].join('\n')
}

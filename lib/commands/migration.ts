import { container, type DataTarget, psql } from './backup.ts'
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

import { InputError } from '../report/errors.ts'
import { container, type DataTarget } from './backup.ts'
import { quote } from './shell.ts'

// `make psql`: one SQL text run by psql inside the env's Postgres container, in one transaction.
// Read-only unless WRITE=1: a guard against a slip at 3 a.m., not a security boundary (whoever
// holds the deploy key can do anything on the host). Pure: strings only.

export const READ_ONLY_TIMEOUT = '60s'

/** SQL= must say something; a NUL byte cannot reach psql. */
export function checkSql(raw: string | undefined): string {
  const sql = raw?.trim() ?? ''
  if (!sql)
    throw new InputError(
      'SQL is required',
      [],
      'Give the statement: make psql ENV=<env> SQL="select count(*) from bank_lines" (WRITE=1 to change data).',
    )
  if (sql.includes('\0')) throw new InputError('SQL contains a NUL byte')
  return sql
}

/**
 * psql reading the SQL from stdin (never on a command line: no process list shows it), one
 * transaction, stopping at the first error. Read-only: every transaction of the session starts READ
 * ONLY (PGOPTIONS) and a statement may run 60 s at most.
 */
export function psqlCommand(t: DataTarget, opts: { write: boolean }): string {
  const options = opts.write
    ? ''
    : ` -e ${quote(`PGOPTIONS=-c default_transaction_read_only=on -c statement_timeout=${READ_ONLY_TIMEOUT}`)}`
  return [
    'set -eu',
    container(t, 'postgres', 'pg'),
    `docker exec -i${options} "$pg" psql -X -v ON_ERROR_STOP=1 --single-transaction -P pager=off -U ${quote(t.user)} -d ${quote(t.db)}`,
  ].join('\n')
}

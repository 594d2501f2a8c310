import * as assert from 'uvu/assert'
import { checkSql, psqlCommand } from '../../lib/commands/psql.ts'
import { InputError } from '../../lib/report/errors.ts'
import { setSinks } from '../../lib/report/output.ts'
import { runRunbook } from '../../lib/run/runbook.ts'
import { psql } from '../../runbooks/psql.ts'
import { suite } from '../harness.ts'

// make psql: what it accepts and the command the data host runs (proved on a droplet in deploy.test.ts).
const test = suite('psql: request and command')
const t = { env: 'production', user: 'conciliaextrato', db: 'conciliaextrato' }

test('SQL is required and trimmed; a NUL byte is refused', () => {
  assert.is(checkSql('  select 1  '), 'select 1')
  assert.throws(
    () => checkSql(undefined),
    (e: Error) => e instanceof InputError && /SQL is required/.test(e.message),
  )
  assert.throws(() => checkSql('   '), /SQL is required/)
  assert.throws(() => checkSql('select 1\0'), /NUL/)
})

test('read-only: every transaction READ ONLY, 60 s per statement; the SQL on stdin, never on the line', () => {
  const cmd = psqlCommand(t, { write: false })
  assert.match(cmd, "-e 'PGOPTIONS=-c default_transaction_read_only=on -c statement_timeout=60s'")
  assert.match(cmd, 'label=com.docker.compose.project=ce-production-data')
  assert.match(cmd, 'docker exec -i ')
  assert.match(
    cmd,
    'psql -X -v ON_ERROR_STOP=1 --single-transaction -P pager=off -U conciliaextrato -d conciliaextrato',
  )
  // psql itself gets no -c: the statement could otherwise show in a process list.
  assert.not.match(cmd, /psql [^\n]* -c /)
})

test('WRITE: the same single transaction, without the read-only option', () => {
  const cmd = psqlCommand(t, { write: true })
  assert.not.match(cmd, 'default_transaction_read_only')
  assert.match(cmd, '--single-transaction')
  assert.match(cmd, 'ON_ERROR_STOP=1')
})

test('no SQL: exit 2 naming SQL before the env file is even read (an unknown env is not reached)', async () => {
  let out = ''
  setSinks((t) => {
    out += t
  })
  const saved = process.env.AUDIT_DIR
  process.env.AUDIT_DIR = `/tmp/ce-psql-unit-${process.pid}`
  try {
    assert.is(await runRunbook(psql, ['--env', 'no-such-env']), 2)
  } finally {
    setSinks(
      (t) => process.stdout.write(t),
      (t) => process.stderr.write(t),
    )
    if (saved === undefined) delete process.env.AUDIT_DIR
    else process.env.AUDIT_DIR = saved
  }
  assert.match(out, 'SQL is required')
  assert.not.match(out, 'no-such-env.yaml')
})

test.run()

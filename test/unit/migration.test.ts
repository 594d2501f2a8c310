import * as assert from 'uvu/assert'
import {
  CONSTRAINTS_SQL,
  cloneLiveToScratch,
  migrateScratch,
  pgApply,
  pgQuery,
} from '../../lib/commands/migration.ts'
import { REHEARSE_FLAG, rehearseStep } from '../../lib/deploy/rehearse.ts'
import { compareCopies, parseConstraints, validateSql } from '../../lib/migration/compare.ts'
import { columnsToMask, MASK_RULES, maskingSql, parseColumns } from '../../lib/migration/masking.ts'
import type { Context } from '../../lib/run/runbook.ts'
import { suite } from '../harness.ts'

const test = suite('rehearse-migration: masking rules, the comparison, the host commands')

const data = { env: 'production', user: 'conciliaextrato', db: 'conciliaextrato' }

test('the masking rules take the personal columns by name, and leave the rest', () => {
  const cols = parseColumns(
    [
      'accounts\tname',
      'accounts\tcurrency',
      'customers\tcpf_cnpj',
      'customers\temail',
      'customers\tphone',
      'customers\tholder_name',
      'bank_lines\tmemo',
      'bank_lines\tpix_key',
      'statements\treference',
      'statements\tstatus',
      'users\tusername',
      'x',
    ].join('\n'),
  )
  const masked = columnsToMask(cols)
  assert.equal(
    masked.map((m) => `${m.table}.${m.column}`),
    [
      'accounts.name',
      'customers.cpf_cnpj',
      'customers.email',
      'customers.phone',
      'customers.holder_name',
      'bank_lines.memo',
      'bank_lines.pix_key',
    ],
  )
  assert.is(masked.find((m) => m.column === 'cpf_cnpj')?.rule, 'CPF/CNPJ and tax ids')
  // username is not "name"; reference and status are not personal.
  assert.not.ok(masked.some((m) => ['username', 'reference', 'status', 'currency'].includes(m.column)))
  const sql = maskingSql(masked)
  assert.is(sql.split('\n').length, 3, 'one UPDATE per table')
  assert.match(sql, `UPDATE public."customers" SET "cpf_cnpj" = left(translate(md5("cpf_cnpj"::text)`)
  assert.match(sql, `"email" = 'user-' || left(md5("email"::text), 12) || '@example.invalid'`)
  assert.ok(MASK_RULES.length >= 6)
  // A quote in a name cannot break out of the identifier.
  assert.match(
    maskingSql([{ table: 'a"b', column: 'e"mail', rule: 'e-mail addresses' }]),
    'UPDATE public."a""b" SET "e""mail"',
  )
})

test('compare: rows lost or a table gone fail; dropped and added constraints are named; NOT VALID ones are validated', () => {
  const before = {
    counts: { 'public.a': 10, 'public.b': 5, 'public.schema_migrations': 1 },
    constraints: parseConstraints('a\ta_pkey\tp\tt\nb\tb_a_fkey\tf\tt\n'),
  }
  const after = {
    counts: { 'public.a': 10, 'public.schema_migrations': 2 },
    constraints: parseConstraints('a\ta_pkey\tp\tt\na\ta_amount_check\tc\tf\n'),
  }
  const c = compareCopies(before, after)
  assert.equal([c.rows_before, c.rows_after], [16, 12])
  assert.equal(c.lost, ['public.b is gone (it held 5 rows)'])
  assert.equal(c.dropped, ['b.b_a_fkey (f)'])
  assert.equal(c.added, ['a.a_amount_check (c)'])
  assert.equal(validateSql(c.unvalidated), 'ALTER TABLE a VALIDATE CONSTRAINT "a_amount_check";')
  const fewer = compareCopies(before, { ...before, counts: { ...before.counts, 'public.a': 7 } })
  assert.equal(fewer.lost, ['public.a lost 3 of 10 rows'])
})

test('host commands: queries on the scratch database; migrate with its variables from stdin, removed after', () => {
  const q = pgQuery(data, 'ce_migrate_x', CONSTRAINTS_SQL)
  assert.match(q, `psql -XAtq -v ON_ERROR_STOP=1 -U conciliaextrato -d ce_migrate_x -F '\t' -c`)
  assert.match(
    pgApply(data, 'ce_migrate_x'),
    `docker exec -i "$pg" psql -XAtq -v ON_ERROR_STOP=1 -U conciliaextrato -d ce_migrate_x -1`,
  )
  const m = migrateScratch('ce-production', 'ghcr.io/ce/api:abc')
  assert.match(m, 'docker run --rm --network ce-production --env-file "$f" ghcr.io/ce/api:abc migrate')
  assert.match(m, 'umask 077')
  assert.match(m, 'rm -f "$f"\nexit $rc')
  assert.not.match(m, 'DATABASE_URL')
})

test("deploy's copy of the live database: room checked first, dumped inside the container, restored into the copy, the dump removed", () => {
  const c = cloneLiveToScratch(
    { env: 'production', user: 'conciliaextrato', db: 'conciliaextrato' },
    'ce_rehearse_v2_x',
  )
  assert.match(c, /^set -eu\n/)
  assert.match(c, `f=/tmp/ce_rehearse_v2_x.dump\ntrap 'docker exec "$pg" rm -f "$f"' EXIT`)
  assert.match(c, "-tAc 'SELECT pg_database_size(current_database()) / 1024'")
  assert.match(c, /if \[ "\$avail" -lt "\$size" \]; then .* exit 3; fi/)
  assert.match(c, 'DROP DATABASE IF EXISTS "ce_rehearse_v2_x"')
  assert.match(c, 'CREATE DATABASE "ce_rehearse_v2_x" OWNER "conciliaextrato"')
  assert.match(c, 'docker exec "$pg" pg_dump -Fc -U conciliaextrato -f "$f" conciliaextrato')
  assert.match(c, /pg_restore --exit-on-error .* -d ce_rehearse_v2_x -j "\$jobs" "\$f"/)
  // The dump comes before the restore, and the live database is never restored into.
  assert.ok(c.indexOf('pg_dump') < c.indexOf('pg_restore'))
  assert.not.match(c, '-d conciliaextrato -j')
})

test("deploy's rehearsal: production's gate only; a swarm env and ALLOW_UNREHEARSED=1 skip it, saying why", () => {
  const ctx = (kind: string, over: Record<string, unknown> = {}, args: Record<string, unknown> = {}) =>
    ({ env: { kind, name: kind, ...over }, args }) as unknown as Context
  const skip = rehearseStep.skip as (c: Context) => string | false
  assert.is(skip(ctx('production')), false)
  assert.match(String(skip(ctx('staging'))), "staging: production's gate")
  assert.match(String(skip(ctx('production', { swarm: {} }))), 'a swarm env')
  assert.match(
    String(skip(ctx('production', {}, { [REHEARSE_FLAG]: true }))),
    'ALLOW_UNREHEARSED=1 (audited)',
  )
})

test.run()

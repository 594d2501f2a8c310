/**
 * psql — one SQL text on the env's Postgres, from this machine, audited. Read-only by default.
 *
 * When: during an incident, to look at the data (counts, a customer's rows, locks) without logging
 *   in; WRITE=1 for a fix the team agreed on (production asks for the typed env name).
 * Options: SQL="<statements>" (required), WRITE=1 (the transaction may change data).
 * Changes: nothing, unless WRITE=1. The statement, who ran it and when go to the audit record (on the
 *   host and locally), secrets redacted.
 * Abort: Ctrl-C: the transaction is rolled back (psql runs it as one; it never commits halfway).
 * On-call page: docs/runbooks/psql.md
 */
import { checkSql, psqlCommand } from '../lib/commands/psql.ts'
import { print } from '../lib/report/output.ts'
import { stringArg } from '../lib/run/cli.ts'
import { confirmMidRun, isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { DB_NAME, DB_USER } from '../lib/stack/files.ts'
import { dataSession } from '../lib/swarm/hosts.ts'

export const psql: RunbookSpec = {
  name: 'psql',
  // A read-only run changes nothing; WRITE=1 asks for the typed env name itself (step 1) in production.
  mutates: false,
  // SQL is checked before any host is contacted: a missing statement is exit 2 at once.
  validate: (args) => void checkSql(stringArg(args, 'sql')),
  needs: () => ['ssh', 'app'],
  options: [
    { name: 'sql', makeVar: 'SQL', value: true, help: 'the SQL to run (one transaction)' },
    { name: 'write', makeVar: 'WRITE=1', help: 'allow the transaction to change data' },
  ],
  steps: [
    {
      title: 'Run the SQL on the data host, in one transaction (read-only unless WRITE=1)',
      next: 'The transaction was rolled back: nothing changed. Read the error above, fix the SQL and run again.',
      async run(ctx) {
        const sql = checkSql(stringArg(ctx.args, 'sql'))
        const write = ctx.args.write === true
        const host = dataSession(ctx)
        if (!host) throw new Error(`${ctx.env.file} has no host`)
        if (write && ctx.env.confirm)
          await confirmMidRun(ctx, `WRITE=1: this SQL may change ${ctx.env.name}'s data`)
        // Who ran what, and in which mode: the audit record keeps it (redacted), on the host and here.
        ctx.auditEvent(`psql ${write ? 'WRITE' : 'read-only'} on ${host.name}: ${sql}`)
        print(`      ${write ? 'WRITE' : 'read-only'} transaction on ${host.name}`)
        const out = await host.exec(
          psqlCommand({ env: ctx.env.name, user: DB_USER, db: DB_NAME }, { write }),
          {
            stdin: `${sql}\n`,
            timeoutS: write ? 600 : 120,
            echo: false,
          },
        )
        if (!out.dryRun) print(out.stdout.trimEnd())
        return write ? 'changed' : 'ok'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(psql)

/**
 * ship-records — this machine's audit records and run state (an emergency's .state/), copied to the
 * env's backup store under records/<env>/<day>/<run>/, so what a CI run did outlives its runner (the
 * Actions artifact is kept 90 days and only in GitHub; the store is where the on-call looks after a
 * disaster, beside the backups).
 *
 * When: the last step of every workflow that runs a runbook on an env (if: always()); by hand after a
 * run from a laptop that should be on record. Changes: adds objects to the store; never deletes one.
 * Needs no host. On-call page: docs/runbooks/emergency.md#records
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { RUN_ID, recordFiles, recordKey, runName } from '../lib/backup/records.ts'
import { openBackupStore } from '../lib/backup/take.ts'
import { stateDir } from '../lib/emergency/state.ts'
import { InputError } from '../lib/report/errors.ts'
import { print } from '../lib/report/output.ts'
import { auditDir } from '../lib/run/audit.ts'
import { stringArg } from '../lib/run/cli.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'

export const shipRecords: RunbookSpec = {
  name: 'ship-records',
  mutates: false,
  offline: true,
  options: [
    {
      name: 'run-id',
      makeVar: 'RUN_ID',
      value: true,
      help: 'names the copy (default: the Actions run id and attempt, else the time)',
    },
  ],
  validate(args) {
    const id = stringArg(args, 'run-id')
    if (id !== undefined && !RUN_ID.test(id))
      throw new InputError(`RUN_ID=${id}: letters, digits, . _ - only (it names a directory in the store)`)
  },
  needs: () => ['store'],
  steps: [
    {
      title: 'Copy the audit records and run state to the backup store',
      next: "The records are still on this machine (.audit/, .state/; in Actions also the run's artifact). Check the store's credentials and endpoint, then run make ship-records again.",
      async run(ctx) {
        const files = recordFiles(
          ctx.env.name,
          { audit: auditDir(), state: stateDir() },
          existsSync,
          readdirSync,
        )
        if (files.length === 0) {
          print('      no audit record or run state on this machine: nothing to copy')
          return 'ok'
        }
        const store = openBackupStore(ctx)
        const run = runName(stringArg(ctx.args, 'run-id'), process.env)
        for (const f of files) {
          const key = recordKey(ctx.env.name, run, f.name)
          print(`      ${f.name} -> ${key}`)
          if (ctx.dryRun) continue
          await store.put(key, readFileSync(join(f.dir, f.base)))
        }
        if (!ctx.dryRun) print(`      ${files.length} file(s) in ${store.description}`)
        return ctx.dryRun ? 'ok' : 'changed'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(shipRecords)

/**
 * prune-backups — retention: keep the newest backup of each of the last N days, weeks and months
 * (backup.keep in the env file) and always the newest complete one; delete the rest.
 *
 * Shows what it would delete unless APPLY=1. Incomplete backups go once older than a day. Only signed
 * COMPLETE markers count (BACKUP_KEY verifies them): planted ones cannot push real backups out; a backup
 * signed with a key the keyring lacks is kept.
 * On-call page: docs/runbooks/backup.md#retention
 */
import { listBackups } from '../lib/backup/catalog.ts'
import { applyRetention, planRetention } from '../lib/backup/retention.ts'
import { openBackupTarget } from '../lib/backup/take.ts'
import { print, table } from '../lib/report/output.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'

export const pruneBackups: RunbookSpec = {
  name: 'prune-backups',
  mutates: true,
  offline: true,
  needs: () => ['store', 'backup-key'],
  options: [
    { name: 'apply', makeVar: 'APPLY=1', help: 'delete what the plan lists (default: only show it)' },
  ],
  steps: [
    {
      title: 'Plan retention (and apply it with APPLY=1)',
      async run(ctx) {
        const { store, keyring } = openBackupTarget(ctx)
        const keep = ctx.env.backup?.keep ?? { daily: 7, weekly: 4, monthly: 12 }
        const entries = await listBackups(store, ctx.env.name, { keyring })
        const plan = planRetention(
          entries,
          { keepDaily: keep.daily, keepWeekly: keep.weekly, keepMonthly: keep.monthly },
          new Date(),
        )
        print(
          table([
            ['id', 'decision', 'why'],
            ...plan.keep.map((k) => [k.id, 'keep', k.reasons.join(', ')]),
            ...plan.delete.map((d) => [d.id, 'delete', d.reason]),
          ]),
        )
        if (plan.delete.length === 0) {
          print('      nothing to delete')
          return 'ok'
        }
        if (ctx.args.apply !== true || ctx.dryRun) {
          print(`      would delete ${plan.delete.length} backup(s); run again with APPLY=1 to delete them`)
          return ctx.dryRun ? 'dry-run' : 'ok'
        }
        const done = await applyRetention(store, ctx.env.name, plan)
        print(
          `      deleted ${done.deleted.length} backup(s): ${done.objects} objects, ${(done.bytes / 1048576).toFixed(1)} MB`,
        )
        return 'changed'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(pruneBackups)

/**
 * prune-backups — retention: keep the newest backup of each of the last N days, weeks and months
 * (backup.keep in the env file) and always the newest complete one; delete the rest, and each cluster's
 * archived WAL older than the first segment its oldest kept base backup needs.
 *
 * Shows what it would delete unless APPLY=1. Incomplete backups go once older than a day. Only signed
 * COMPLETE markers count (BACKUP_KEY verifies them): planted ones cannot push real backups out; a backup
 * signed with a key the keyring lacks is kept.
 * On-call page: docs/runbooks/backup.md#retention
 */
import { BASE_PART, type BaseInfo } from '../lib/backup/base-backup.ts'
import { type BackupEntry, listBackups } from '../lib/backup/catalog.ts'
import { readBackupManifest } from '../lib/backup/restore.ts'
import { applyRetention, planRetention, type RetentionPlan } from '../lib/backup/retention.ts'
import { openBackupTarget } from '../lib/backup/take.ts'
import { archivedWal } from '../lib/backup/wal-archive.ts'
import { describeWalPlan, planWalRetention } from '../lib/backup/wal-retention.ts'
import { print, table } from '../lib/report/output.ts'
import { type Context, isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { openStore } from '../lib/store/storage.ts'
import type { BackupStore } from '../lib/store/store.ts'

export const pruneBackups: RunbookSpec = {
  name: 'prune-backups',
  mutates: true,
  offline: true,
  // Deleting takes the prune key (backup.prune_key), which CI and the hosts never hold.
  needs: (_env, args) => ['store', 'backup-key', ...(args.apply === true ? (['store-prune'] as const) : [])],
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
        // The WAL the kept base backups no longer need (their manifests say where each chain starts).
        const walPlan = planWalRetention(
          await archivedWal(store, ctx.env.name),
          await keptBases(ctx, entries, plan),
        )
        for (const line of describeWalPlan(walPlan)) print(`      ${line}`)
        const walGone = walPlan.flatMap((c) => c.remove)
        if (plan.delete.length === 0 && walGone.length === 0) {
          print('      nothing to delete')
          return 'ok'
        }
        if (ctx.args.apply !== true || ctx.dryRun) {
          print(
            `      would delete ${plan.delete.length} backup(s) and ${walGone.length} WAL segment(s); run again with APPLY=1 to delete them`,
          )
          return ctx.dryRun ? 'dry-run' : 'ok'
        }
        // Backups first: a base goes before the WAL it needed. Deleted with the prune key, if the env has one.
        const deleter = pruneStore(ctx)
        const done = await applyRetention(deleter, ctx.env.name, plan)
        await deleter.delete(walGone.map((w) => w.key))
        print(
          `      deleted ${done.deleted.length} backup(s): ${done.objects} objects, ${(done.bytes / 1048576).toFixed(1)} MB; ${walGone.length} WAL segment(s), ${(walGone.reduce((a, w) => a + w.bytes, 0) / 1048576).toFixed(1)} MB`,
        )
        return 'changed'
      },
    },
  ],
}

/** The store as the prune key sees it (backup.prune_key), else as the everyday key, which then can delete. */
function pruneStore(ctx: Context): BackupStore {
  const backup = ctx.env.backup
  if (!backup) throw new Error('unreachable: the plan read the backups')
  if (backup.store.type === 's3' && !backup.pruneKey)
    print(
      `      ${ctx.env.file} has no backup.prune_key: deleting with the everyday key, which CI and the hosts hold too (docs/runbooks/backup.md#protection)`,
    )
  return openStore(backup.store, ctx.secrets, {}, backup.pruneKey ? 'prune' : 'everyday')
}

/** The base backups of the backups the plan keeps (complete ones with a base part), from their manifests. */
async function keptBases(ctx: Context, entries: BackupEntry[], plan: RetentionPlan): Promise<BaseInfo[]> {
  const kept = new Set(plan.keep.map((k) => k.id))
  const withBase = entries.filter((e) => kept.has(e.id) && e.complete && e.parts.includes(BASE_PART))
  const bases: BaseInfo[] = []
  for (const e of withBase) {
    const { manifest } = await readBackupManifest(ctx, e.id)
    if (manifest.base) bases.push(manifest.base)
  }
  return bases
}

if (isMain(import.meta.url)) await main(pruneBackups)

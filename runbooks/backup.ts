/**
 * backup — Postgres, Redis and the host's deploy config, encrypted on this machine and kept off-site.
 *
 * When: daily (CI schedule), before risky work, or whenever the on-call wants a restore point.
 * Changes: gives the host's WAL shipper its config and turns WAL archiving on; writes one canary
 *   row (table ce_backup_canary) so a restore can prove it has this backup's data; uploads a new
 *   backup. Nothing is deleted (make prune-backups does that).
 * Abort: Ctrl-C: the partial upload is removed; it never had a COMPLETE marker, so "latest" never moved.
 * On-call page: docs/runbooks/backup.md
 */

import { backupRun, maybeRun, setRun } from '../lib/backup/state.ts'
import {
  archiveConfig,
  complete,
  discardIncomplete,
  dumpPostgres,
  dumpWithBase,
  openBackupTarget,
  readBack,
  snapshotRedis,
  startBackup,
  writeManifest,
} from '../lib/backup/take.ts'
import { configureWalArchiving } from '../lib/backup/wal-install.ts'
import {
  configTar,
  pgBaseBackup,
  pgDropReplaced,
  pgDumpWithCounts,
  redisSnapshot,
} from '../lib/commands/backup.ts'
import { remotePaths } from '../lib/env/host-paths.ts'
import { notifyOnEnd } from '../lib/notify/run-outcome.ts'
import { InputError } from '../lib/report/errors.ts'
import { print, printErr } from '../lib/report/output.ts'
import { stringArg } from '../lib/run/cli.ts'
import { takeDeployLock } from '../lib/run/lock.ts'
import { type Context, isMain, main, type RunbookSpec, type Step } from '../lib/run/runbook.ts'
import { dataSession } from '../lib/swarm/hosts.ts'

const NEXT_DUMP =
  'Nothing became "latest". Check that Postgres and Redis run (make status ENV=<env>), then run make backup again.'

/** A streaming phase; --dry-run shows its command instead. */
function phase(title: string, command: (ctx: Context) => string, run: (ctx: Context) => Promise<void>): Step {
  return {
    title,
    next: NEXT_DUMP,
    async run(ctx) {
      if (ctx.dryRun) {
        print(`  [${dataSession(ctx)?.name}] would stream, encrypt and upload:\n${command(ctx)}`)
        return 'changed'
      }
      await run(ctx)
      return 'changed'
    },
  }
}

/**
 * Retention (LGPD): a database that a restore replaced is kept backup.keep.replaced_days, then dropped
 * here (daily, with the scheduled backup). The backup is already complete: a failure here is reported,
 * never undoes it.
 */
const dropReplacedDatabases: Step = {
  title: 'Drop databases a restore replaced more than backup.keep.replaced_days ago',
  next: 'The backup is complete. Drop old <db>_before_<time> databases by hand (docs/runbooks/restore.md).',
  async run(ctx) {
    const days = ctx.env.backup?.keep.replacedDays ?? 14
    const command = pgDropReplaced(backupRun(ctx).data, days)
    const host = dataSession(ctx)
    if (!host) return 'skipped'
    if (ctx.dryRun) {
      print(`  [${host.name}] would run:\n${command}`)
      return 'dry-run'
    }
    const res = await host.exec(command, { echo: false, allowFail: true })
    if (res.code !== 0) {
      printErr(
        `      could not drop old replaced databases (exit ${res.code}: ${res.stderr.trim().split('\n')[0] ?? ''}); the backup is complete. Next: drop them by hand (docs/runbooks/restore.md).`,
      )
      return 'skipped'
    }
    const out = res.stdout.trim()
    for (const line of out.split('\n').filter(Boolean)) print(`      ${line}`)
    return out.includes('dropped ') ? 'changed' : 'ok'
  },
}

export const backup: RunbookSpec = {
  name: 'backup',
  mutates: false,
  needs: () => ['ssh', 'store', 'backup-key', 'notify:backup'],
  options: [
    {
      name: 'reason',
      makeVar: 'REASON',
      value: true,
      help: 'why this backup is taken (kept in its manifest; default: manual, or scheduled in CI)',
    },
  ],
  steps: [
    {
      title: 'Check the backup store and the key, and take the backup lock',
      next: 'Nothing was changed. Fix the store settings or secrets named above, then run again.',
      async run(ctx) {
        const host = dataSession(ctx)
        if (!host) throw new InputError(`${ctx.env.file} has no host to back up`)
        const target = openBackupTarget(ctx)
        const reason = stringArg(ctx.args, 'reason') ?? (process.env.GITHUB_ACTIONS ? 'scheduled' : 'manual')
        const run = await startBackup(ctx, host, target, reason)
        setRun(ctx, run)
        print(`      backup ${run.id} of ${ctx.env.name} (${host.name}) to ${target.store.description}`)
        print(`      key ${target.keyring.current.id}; release live: ${run.release ?? 'none'}`)
        await takeDeployLock(ctx, 'backup', `${remotePaths(ctx.env).base}/backup.lock`)
        ctx.onCleanup(async () => {
          const r = maybeRun(ctx)
          if (r && !r.completed && !ctx.dryRun) await discardIncomplete(r).catch(() => {})
        })
        notifyBackup(ctx)
        return 'ok'
      },
    },
    {
      title: "WAL archiving: the shipper's config (sealed to the recipient), the spool turned on",
      next: 'The backup itself was not started. `systemctl status conciliaextrato-wal-shipper@<env>` and its journal on the host; docs/runbooks/backup.md#wal-archiving.',
      async run(ctx) {
        const host = dataSession(ctx)
        if (!host) return 'skipped'
        const { status, on } = await configureWalArchiving(ctx, host, openBackupTarget(ctx).keyring)
        backupRun(ctx).archiving = on
        return status
      },
    },
    {
      title:
        'Postgres: canary rows, then pg_dump -Fc with row counts and, when WAL is archived, the physical base backup beside it',
      next: NEXT_DUMP,
      async run(ctx) {
        const run = backupRun(ctx)
        if (ctx.dryRun) {
          print(
            `  [${dataSession(ctx)?.name}] would stream, encrypt and upload:\n${pgDumpWithCounts(run.data)}`,
          )
          print(`  and beside it (if WAL archiving is on):\n${pgBaseBackup(run.data)}`)
          return 'changed'
        }
        if (run.archiving) await dumpWithBase(run)
        else {
          print(
            '      WAL archiving is not on (see above): no base backup; the recovery point is this backup',
          )
          await dumpPostgres(run)
        }
        return 'changed'
      },
    },
    phase(
      'Redis: a BGSAVE that finished, then the RDB and the AOF',
      (ctx) => redisSnapshot(backupRun(ctx).data),
      (ctx) => snapshotRedis(backupRun(ctx)),
    ),
    phase(
      'Deploy config: compose files, release history, nginx',
      (ctx) => configTar(ctx.env.name, ctx.env.backup?.includeSecrets ?? false),
      (ctx) => archiveConfig(backupRun(ctx)),
    ),
    {
      title: 'Manifest, then read everything back and verify it',
      next: 'The upload did not verify: the store may be failing. Nothing became "latest"; run again.',
      async run(ctx) {
        if (ctx.dryRun) return 'dry-run'
        await writeManifest(backupRun(ctx))
        await readBack(backupRun(ctx))
        return 'changed'
      },
    },
    {
      title: 'Mark the backup complete (it is now the latest)',
      async run(ctx) {
        if (ctx.dryRun) return 'dry-run'
        await complete(backupRun(ctx))
        return 'changed'
      },
    },
    dropReplacedDatabases,
  ],
}

function notifyBackup(ctx: Context): void {
  notifyOnEnd(ctx, () => {
    const run = maybeRun(ctx)
    if (!run) return undefined
    return {
      event: 'backup',
      ok: run.completed,
      title: `backup ${run.id} of ${ctx.env.name}: ${run.completed ? 'success' : 'failed'}`,
      ...(run.release ? { release: run.release } : {}),
      durationS: Object.values(run.timings).reduce((a, b) => a + b, 0),
      runbook: 'docs/runbooks/backup.md',
    }
  })
}

if (isMain(import.meta.url)) await main(backup)

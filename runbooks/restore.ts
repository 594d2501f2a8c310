/**
 * restore — put a backup's data back: Postgres and Redis, verified before anything live is touched.
 *
 * When: data was lost or damaged (a bad migration, a mistaken delete), or after `make emergency`.
 * Changes: nothing until every part verified and a scratch copy of the database matched the backup
 *   (the safety net meanwhile, in the background: a point the WAL archive already holds, else a backup
 *   of the current state); then, after a confirmation (YES=1 in CI) and once it is there, Redis's files are
 *   staged beside the live ones. Only then the pause: the services that use the data
 *   (services.<name>.uses) show the maintenance page (503 + Retry-After) and stop, the restored
 *   database is swapped in (the current one is KEPT, renamed), Redis's files are swapped, the services
 *   start, and the page comes off the moment they answer. The other services keep serving throughout.
 *   AT=<time>: the scratch database is a base backup replayed with the archived WAL to that time.
 *   DRILL=1 stops after the verification and changes nothing live. On a swarm env the data is on the
 *   data host, and the pause is the stack removed on every node (every service shows the page); it is
 *   deployed again (the live release, as the last deploy left it on the manager).
 * Abort: Ctrl-C before the swap changes nothing live; after it, the app is started again and the
 *   maintenance page taken off either way.
 * On-call page: docs/runbooks/restore.md
 */

import { chooseRestore, describePitr, pitrCommands, restoreToScratch } from '../lib/backup/pitr.ts'
import {
  checkRedisKeys,
  describeBackup,
  downloadAll,
  drillRedis,
  removeDownloads,
  stageRedis,
  swapDatabase,
  swapRedis,
  timedPhase,
  unstageRedis,
} from '../lib/backup/restore.ts'
import { isDrill, notifyRestore, reportRestore } from '../lib/backup/restore-report.ts'
import { startSafety } from '../lib/backup/restore-safety.ts'
import { restoreRun, setRestore } from '../lib/backup/restore-state.ts'
import { expectAnswers, requireMaintenanceConfig, turnOff, turnOn } from '../lib/deploy/maintenance.ts'
import { type AppPause, colourPause } from '../lib/deploy/pause.ts'
import { SERVICES } from '../lib/env/load.ts'
import { InputError } from '../lib/report/errors.ts'
import { print } from '../lib/report/output.ts'
import { stringArg } from '../lib/run/cli.ts'
import { takeDeployLock } from '../lib/run/lock.ts'
import { type Context, confirmMidRun, isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { dataSession } from '../lib/swarm/hosts.ts'
import { stackPause } from '../lib/swarm/restore.ts'

/** Steps that change live data do not run in a drill. */
const inDrill = (ctx: Context) => isDrill(ctx) && 'a drill changes nothing live'
/** The app is paused by colour on a single host, by stack on a swarm env. */
const app = (ctx: Context): AppPause => (ctx.env.swarm ? stackPause : colourPause)

export const restore: RunbookSpec = {
  name: 'restore',
  mutates: true,
  // A restore (not a drill) first takes a safety backup, so both read and write the store.
  needs: () => ['ssh', 'store', 'backup-key', 'notify:restore'],
  options: [
    {
      name: 'backup',
      makeVar: 'BACKUP',
      value: true,
      help: 'the backup id to restore (default: the latest complete one)',
    },
    {
      name: 'at',
      makeVar: 'AT',
      value: true,
      help: 'a point in time (UTC, 2026-12-02T10:31:07Z), or latest: a base backup replayed with the archived WAL up to it',
    },
    {
      name: 'fresh-host',
      makeVar: 'FRESH_HOST=1',
      help: 'the host was just built (make emergency): skip the safety backup of its empty data (it is still kept, renamed)',
    },
    {
      name: 'drill',
      makeVar: 'DRILL=1',
      help: 'verify the backup into a scratch database and report timings; change nothing live',
    },
  ],
  steps: [
    {
      title: 'Choose the backup and read its manifest',
      next: 'Nothing was changed. `make backups ENV=<env>` lists the backups and the key each needs.',
      async run(ctx) {
        const host = dataSession(ctx)
        if (!host) throw new InputError(`${ctx.env.file} has no host to restore to`)
        const r = await chooseRestore(ctx, host, stringArg(ctx.args, 'at'), stringArg(ctx.args, 'backup'))
        setRestore(ctx, r)
        ctx.onCleanup(async () => removeDownloads(r))
        notifyRestore(ctx)
        for (const line of [...describeBackup(r), ...(r.pitr ? describePitr(r.pitr) : [])])
          print(`      ${line}`)
        return 'ok'
      },
    },
    {
      title: 'Download every part and verify every tag and checksum (nothing is touched yet)',
      next: 'Nothing was changed. This backup is damaged or needs another key: restore an older one (BACKUP=<id>).',
      async run(ctx) {
        if (ctx.dryRun) return 'ok'
        await downloadAll(restoreRun(ctx))
        return 'ok'
      },
    },
    {
      title: 'Take the deploy lock (no deploy may run during a restore)',
      async run(ctx) {
        await takeDeployLock(ctx, isDrill(ctx) ? 'restore-drill' : 'restore')
        return 'ok'
      },
    },
    {
      skip: inDrill,
      title:
        'Start the safety net, in the background: a point the WAL archive holds, else a backup of the current state',
      next: 'Nothing live was changed. If the safety backup failed, fix the backup store first (make backup).',
      async run(ctx) {
        const r = restoreRun(ctx)
        if (ctx.args['fresh-host'] === true) {
          // The safety backup would be the newest in the store and hold nothing: never "latest".
          print('      FRESH_HOST=1: a new host, its empty database is kept renamed; no safety backup')
          return 'skipped'
        }
        if (ctx.dryRun) {
          print(
            `  [${r.host.name}] would take a backup of the current state (reason: pre-restore of ${r.entry.id})`,
          )
          return 'dry-run'
        }
        startSafety(ctx, r)
        print('      started: its lines are marked [safety backup]; the swap waits for it')
        return 'changed'
      },
    },
    {
      title: 'Restore Postgres into a scratch database; compare row counts and the canary',
      next: 'Nothing live was changed (the scratch database is dropped). Try an older backup (BACKUP=<id>).',
      async run(ctx) {
        const r = restoreRun(ctx)
        if (ctx.dryRun) {
          print(`  [${r.host.name}] would restore into the scratch database ${r.scratch} and compare`)
          for (const c of pitrCommands(r)) print(`  [${r.host.name}] would run:\n${c}`)
          return 'dry-run'
        }
        await restoreToScratch(ctx, r)
        if (isDrill(ctx)) await drillRedis(r)
        return 'ok'
      },
    },
    {
      skip: inDrill,
      title: 'Confirm, then wait for the safety net',
      next: 'Nothing live was changed. If the safety backup failed, fix the backup store first (make backup).',
      async run(ctx) {
        const r = restoreRun(ctx)
        await confirmMidRun(ctx, `Replace ${ctx.env.name}'s data with backup ${r.entry.id}`)
        // Its failure is the restore's: nothing live was changed yet.
        const safety = await r.safety
        if (!safety) return ctx.dryRun ? 'dry-run' : 'skipped'
        print(
          `      safety ${safety.backupId ? `backup ${safety.backupId}` : 'point'}: ${safety.undo} undoes this restore`,
        )
        return 'changed'
      },
    },
    {
      skip: inDrill,
      title: "Stage Redis's files beside the live ones (Redis keeps serving)",
      next: 'Nothing live was changed. Check the disk on the data host (make status).',
      async run(ctx) {
        const r = restoreRun(ctx)
        if (ctx.dryRun) return 'dry-run'
        ctx.onCleanup(async () => {
          await unstageRedis(r)
        })
        await stageRedis(r)
        return 'changed'
      },
    },
    {
      skip: inDrill,
      title: 'Show the maintenance page for the services that use the data, and stop them',
      next: 'Nothing live was changed yet; the services are started again and the page taken off as the run ends.',
      async run(ctx) {
        const r = restoreRun(ctx)
        const web = app(ctx).webHosts(ctx, r.host)
        const services = app(ctx).services(ctx)
        // An nginx config from before the maintenance page would show 502s: refuse before anything stops.
        await requireMaintenanceConfig(ctx, web)
        await app(ctx).prepare?.(ctx, r.host)
        // However the run ends from here, the page comes off (after the services were started again).
        ctx.onCleanup(async () => {
          if (!ctx.dryRun) await turnOff(ctx, web, services)
        })
        const until = new Date(Date.now() + 3600_000)
        await turnOn(ctx, web, { services, until, reason: `restore of ${r.entry.id}`, runbook: 'restore' })
        r.pauseStartedMs = Date.now()
        await timedPhase(r, 'app-stop', () => app(ctx).stop(ctx, r.host))
        return 'changed'
      },
    },
    {
      skip: inDrill,
      title:
        "Swap in the restored database (the current one is kept, renamed) and Redis's staged files (no stale AOF replays), both at once",
      next: 'Check `make status`; the previous database is kept under the name printed above.',
      async run(ctx) {
        if (ctx.dryRun) return 'dry-run'
        const r = restoreRun(ctx)
        // Independent: the database on Postgres, the files in Redis's volume; each waits only for itself.
        const [db, redis] = await Promise.allSettled([swapDatabase(r), swapRedis(r)])
        if (db.status === 'rejected') throw db.reason
        if (redis.status === 'rejected') throw redis.reason
        return 'changed'
      },
    },
    {
      skip: inDrill,
      title:
        "Start the services, take the maintenance page off, check every domain through nginx and Redis's keys",
      next: 'The data is restored. If the app does not come up, check its logs (make logs) or roll back (make rollback).',
      async run(ctx) {
        const r = restoreRun(ctx)
        const web = app(ctx).webHosts(ctx, r.host)
        await timedPhase(r, 'app-start', () => app(ctx).start(ctx, r.host))
        await turnOff(ctx, web, app(ctx).services(ctx))
        if (ctx.dryRun) return 'dry-run'
        if (r.pauseStartedMs !== undefined)
          r.timings.interruption = Math.round((Date.now() - r.pauseStartedMs) / 100) / 10
        await expectAnswers(ctx, web, SERVICES, 'off')
        // Checked once the page is off: the data is live either way, and the check costs the pause nothing.
        checkRedisKeys(r)
        return 'changed'
      },
    },
    {
      title: 'Report',
      async run(ctx) {
        reportRestore(ctx)
        return 'ok'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(restore)

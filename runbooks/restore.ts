/**
 * restore — put a backup's data back: Postgres and Redis, verified before anything live is touched.
 *
 * When: data was lost or damaged (a bad migration, a mistaken delete), or after `make emergency`.
 * Changes: nothing until every part verified and a scratch copy of the database matched the backup;
 *   then, after a confirmation (YES=1 in CI), a safety backup of the current state, the app stopped,
 *   the restored database swapped in (the current one is KEPT, renamed), Redis replaced, the app
 *   started and checked through nginx. DRILL=1 stops after the verification and changes nothing live.
 *   On a swarm env the data is on the data host, and "the app stopped" is the stack removed on every
 *   node; it is deployed again (the live release, as the last deploy left it on the manager).
 * Abort: Ctrl-C before the swap changes nothing live; after it, the app is started again either way.
 * On-call page: docs/runbooks/restore.md
 */

import {
  chooseBackup,
  describeBackup,
  downloadAll,
  drillRedis,
  dropScratch,
  removeDownloads,
  restoreRedis,
  restoreScratch,
  swapDatabase,
  timedPhase,
} from '../lib/backup/restore.ts'
import { maybeRestore, restoreRun, setRestore } from '../lib/backup/restore-state.ts'
import { takeBackup } from '../lib/backup/take.ts'
import { startContainers, stopProject } from '../lib/commands/backup.ts'
import { projectName } from '../lib/commands/compose.ts'
import { liveColourProbe } from '../lib/commands/nginx.ts'
import { waitHealthy } from '../lib/deploy/prepare.ts'
import { throughNginx } from '../lib/deploy/switch.ts'
import { SERVICES } from '../lib/env/load.ts'
import { notifyRunOutcome } from '../lib/notify/run-outcome.ts'
import { EXIT, InputError, RunbookError } from '../lib/report/errors.ts'
import { print, printErr, table } from '../lib/report/output.ts'
import { stringArg } from '../lib/run/cli.ts'
import { takeDeployLock } from '../lib/run/lock.ts'
import { type Context, confirmMidRun, isMain, main, type RunbookSpec, type Step } from '../lib/run/runbook.ts'
import { dataSession, swarmHosts } from '../lib/swarm/hosts.ts'
import { startStack, stopStack } from '../lib/swarm/restore.ts'

const drill = (ctx: Context) => ctx.args.drill === true
/** Steps that change live data: skipped in a drill. */
function live(step: Step): Step {
  return {
    ...step,
    async run(ctx) {
      if (drill(ctx)) return 'skipped'
      return step.run(ctx)
    },
  }
}
const stopped = new WeakMap<Context, { project: string; ids: string[] }>()
/** A swarm env's stack was deployed again by the start step (the cleanup need not). */
const restarted = new WeakSet<Context>()

export const restore: RunbookSpec = {
  name: 'restore',
  mutates: true,
  options: [
    {
      name: 'backup',
      makeVar: 'BACKUP',
      value: true,
      help: 'the backup id to restore (default: the latest complete one)',
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
        const r = await chooseBackup(ctx, host, stringArg(ctx.args, 'backup'))
        setRestore(ctx, r)
        ctx.onCleanup(async () => removeDownloads(r))
        ctx.onCleanup(notifyRestore(ctx))
        for (const line of describeBackup(r)) print(`      ${line}`)
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
        await takeDeployLock(ctx, drill(ctx) ? 'restore-drill' : 'restore')
        return 'ok'
      },
    },
    {
      title: 'Restore Postgres into a scratch database; compare row counts and the canary',
      next: 'Nothing live was changed (the scratch database is dropped). Try an older backup (BACKUP=<id>).',
      async run(ctx) {
        const r = restoreRun(ctx)
        if (ctx.dryRun) {
          print(`  [${r.host.name}] would restore into the scratch database ${r.scratch} and compare`)
          return 'dry-run'
        }
        ctx.onCleanup(async () => {
          if (!r.swapped) await dropScratch(r)
        })
        await restoreScratch(r)
        if (drill(ctx)) await drillRedis(r)
        return 'ok'
      },
    },
    live({
      title: 'Confirm, then take a safety backup of the current state',
      next: 'Nothing live was changed. If the safety backup failed, fix the backup store first (make backup).',
      async run(ctx) {
        const r = restoreRun(ctx)
        await confirmMidRun(ctx, `Replace ${ctx.env.name}'s data with backup ${r.entry.id}`)
        if (ctx.dryRun) return 'dry-run'
        if (ctx.args['fresh-host'] === true) {
          // The safety backup would be the newest in the store and hold nothing: never "latest".
          print('      FRESH_HOST=1: a new host, its empty database is kept renamed; no safety backup')
          return 'skipped'
        }
        const safety = await timedPhase(r, 'safety-backup', () =>
          takeBackup(ctx, r.host, `pre-restore of ${r.entry.id}`),
        )
        print(
          `      safety backup ${safety.id}: make restore ENV=${ctx.env.name} BACKUP=${safety.id} undoes this restore`,
        )
        return 'changed'
      },
    }),
    live({
      title: 'Stop the app (nginx answers 502 until it is back)',
      async run(ctx) {
        const r = restoreRun(ctx)
        if (ctx.env.swarm) {
          // A swarm env: the stack is removed on every node, and deployed again however the run ends.
          ctx.onCleanup(async () => {
            if (!restarted.has(ctx) && !ctx.dryRun)
              await startStack(ctx).catch((e: Error) =>
                printErr(`  could not start the stack again: ${e.message}`),
              )
          })
          await stopStack(ctx)
          return 'changed'
        }
        const colour = (
          await r.host.exec(liveColourProbe(ctx.env.name), { probe: true, echo: false })
        ).stdout.trim()
        const project = projectName(ctx.env.name, colour === 'green' ? 'green' : 'blue')
        const out = await r.host.exec(stopProject(project), { echo: false })
        const ids = out.stdout.trim().split(/\s+/).filter(Boolean)
        stopped.set(ctx, { project, ids })
        // However the run ends from here, the app is started again.
        ctx.onCleanup(async () => {
          if (ids.length && !ctx.dryRun)
            await r.host.exec(startContainers(ids), { allowFail: true, echo: false })
        })
        print(`      stopped ${ids.length} container(s) of ${project}`)
        return 'changed'
      },
    }),
    live({
      title: 'Swap in the restored database (the current one is kept, renamed)',
      next: 'Check `make status`; the previous database is kept under the name printed above.',
      async run(ctx) {
        if (ctx.dryRun) return 'dry-run'
        await swapDatabase(restoreRun(ctx))
        return 'changed'
      },
    }),
    live({
      title: 'Restore Redis (stopped, its files replaced: no stale AOF can replay) and check its keys',
      async run(ctx) {
        if (ctx.dryRun) return 'dry-run'
        await restoreRedis(restoreRun(ctx))
        return 'changed'
      },
    }),
    live({
      title: 'Start the app and check every domain through nginx',
      next: 'The data is restored. If the app does not come up, check its logs (make status) or roll back (make rollback).',
      async run(ctx) {
        const r = restoreRun(ctx)
        const s = stopped.get(ctx)
        if (ctx.env.swarm) {
          await startStack(ctx)
          restarted.add(ctx)
        } else {
          if (!s || ctx.dryRun) return 'dry-run'
          await r.host.exec(startContainers(s.ids), { echo: false })
          await waitHealthy(r.host, s.project, ctx.env.health.timeoutS)
        }
        if (ctx.dryRun) return 'dry-run'
        const bad: string[] = []
        // Through nginx on every web host (a swarm env's web nodes; the single host otherwise).
        const web = ctx.env.swarm ? swarmHosts(ctx).nodes : [r.host]
        for (const host of web)
          for (const service of SERVICES) {
            const out = await host.exec(throughNginx(ctx.env.domains[service], ctx.env.health.path, 1), {
              probe: true,
              echo: false,
            })
            const code = out.stdout.trim().split(' ')[0]
            if (code !== '200') bad.push(`${host.name}: ${ctx.env.domains[service]} answered ${code}`)
          }
        if (bad.length) throw new RunbookError(`after the restore: ${bad.join(', ')}`, EXIT.gateFailed)
        print('      every domain answers through nginx')
        return 'changed'
      },
    }),
    {
      title: 'Report',
      async run(ctx) {
        const r = maybeRestore(ctx)
        if (!r || ctx.dryRun) return 'ok'
        print(table([['phase', 'seconds'], ...Object.entries(r.timings).map(([p, s]) => [p, String(s)])]))
        const total = Object.values(r.timings).reduce((a, b) => a + b, 0)
        const rows = r.manifest.postgres.rows
        print(
          drill(ctx)
            ? `      DRILL passed: backup ${r.entry.id} restores (${rows} rows, ${r.manifest.redis.keys} keys verified) in ${total.toFixed(1)} s; nothing live was changed`
            : `      restored backup ${r.entry.id}: ${rows} rows, ${r.manifest.redis.keys} keys; previous database kept as ${r.keptAs}`,
        )
        print(
          `restore-summary ${JSON.stringify({ backup: r.entry.id, drill: drill(ctx), rows_verified: rows, redis_keys: r.manifest.redis.keys, timings_s: r.timings })}`,
        )
        return 'ok'
      },
    },
  ],
}

function notifyRestore(ctx: Context): () => Promise<void> {
  return async () => {
    const r = maybeRestore(ctx)
    if (!r) return
    const ok = ctx.failure() === null
    await notifyRunOutcome(ctx, {
      event: 'restore',
      ok,
      title: `${drill(ctx) ? 'restore drill' : 'restore'} of backup ${r.entry.id} to ${ctx.env.name}: ${ok ? 'success' : 'failed'}`,
      durationS: Object.values(r.timings).reduce((a, b) => a + b, 0),
      runbook: 'docs/runbooks/restore.md',
    })
  }
}

if (isMain(import.meta.url)) await main(restore)

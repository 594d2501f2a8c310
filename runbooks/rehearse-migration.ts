/**
 * rehearse-migration — a release's migrations tried on a copy of the env's data before they meet it:
 * the latest backup (or BACKUP=) restored into a scratch database on the data host and checked against
 * the backup's row counts; personal data masked in the copy (the rules: lib/migration/masking.ts); the
 * release's own `api migrate` run against the copy alone, timed; row counts and constraints compared,
 * constraints left NOT VALID validated against the copy's data. The scratch database is dropped at the
 * end, whatever happened. Nothing live changes: no lock, no pause, the live database is not touched.
 * Exit 4 when the migrations fail, lose rows or leave a constraint the data breaks. Run it before a
 * production deploy whose release migrates. `make rehearse-migration ENV=<env> RELEASE=<sha> [BACKUP=<id>] [JSON=1]`
 * On-call page: docs/runbooks/rehearse-migration.md
 */

import {
  chooseBackup,
  downloadAll,
  dropScratch,
  type RestoreRun,
  removeDownloads,
  restoreScratch,
} from '../lib/backup/restore.ts'
import { deliverTo } from '../lib/deploy/prepare.ts'
import { imageRefs } from '../lib/deploy/state.ts'
import type { Comparison } from '../lib/migration/compare.ts'
import { type Copy, compareCopy, maskCopy, migrateCopy, readCopy } from '../lib/migration/on-copy.ts'
import { EXIT, InputError, RunbookError } from '../lib/report/errors.ts'
import { print } from '../lib/report/output.ts'
import { redact } from '../lib/report/redact.ts'
import { stringArg } from '../lib/run/cli.ts'
import { perRun } from '../lib/run/per-run.ts'
import { type Context, isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { dataSession } from '../lib/swarm/hosts.ts'

interface Rehearsal {
  r: RestoreRun
  masked?: number
  before?: Copy
  migrateS?: number
  comparison?: Comparison
}
const runs = perRun<Rehearsal>('migration rehearsal')

function release(ctx: Context): string {
  const id = stringArg(ctx.args, 'release')
  if (!id)
    throw new InputError(
      'RELEASE= is required: the release whose migrations to rehearse (its commit SHA or tag)',
    )
  return id
}

function host(ctx: Context) {
  const h = dataSession(ctx)
  if (!h) throw new InputError(`${ctx.env.file} has no data host`)
  return h
}

export const rehearseMigration: RunbookSpec = {
  name: 'rehearse-migration',
  mutates: false,
  needs: () => ['ssh', 'app', 'registry', 'store', 'backup-key'],
  validate: (args) => {
    if (!stringArg(args, 'release'))
      throw new InputError(
        'RELEASE= is required: the release whose migrations to rehearse (its commit SHA or tag)',
      )
  },
  options: [
    { name: 'release', makeVar: 'RELEASE', value: true, help: 'the release whose migrations to rehearse' },
    {
      name: 'backup',
      makeVar: 'BACKUP',
      value: true,
      help: 'the backup to copy (default: the latest complete one)',
    },
    { name: 'json', makeVar: 'JSON=1', help: 'print the figures as one JSON line on stdout' },
  ],
  steps: [
    {
      title: "The release's api image on the data host (it carries the migrations)",
      next: 'Nothing was changed. Build and publish the release first (images.yml), or check the registry token.',
      async run(ctx) {
        const changed = await deliverTo(ctx, host(ctx), [imageRefs(ctx.env, release(ctx)).api])
        return changed ? 'changed' : 'ok'
      },
    },
    {
      title: 'The backup to copy: downloaded, every tag and checksum verified',
      next: 'Nothing was changed. `make backups ENV=<env>` lists the backups; BACKUP=<id> picks another.',
      async run(ctx) {
        const r = await chooseBackup(ctx, host(ctx), stringArg(ctx.args, 'backup'))
        r.scratch = `ce_migrate_${r.entry.id.toLowerCase()}`
        runs.set(ctx, { r })
        // Whatever happens from here: the copy dropped, the downloads removed.
        ctx.onCleanup(async () => {
          if (!ctx.dryRun) await dropScratch(r)
          removeDownloads(r)
        })
        print(
          `      backup ${r.entry.id} (${r.manifest.created_at}, release ${r.manifest.release ?? 'none'}), into ${r.scratch}`,
        )
        if (ctx.dryRun) return 'ok'
        await downloadAll(r)
        return 'ok'
      },
    },
    {
      title: "Restored into a scratch database on the data host, checked against the backup's row counts",
      next: 'Nothing live was changed (the scratch database is dropped). A damaged backup: BACKUP=<an older one>.',
      async run(ctx) {
        if (ctx.dryRun) return 'dry-run'
        await restoreScratch(runs.get(ctx).r)
        return 'ok'
      },
    },
    {
      title: 'Personal data masked in the copy (the rules: lib/migration/masking.ts)',
      next: 'Nothing live was changed. A rule that does not fit a column: fix lib/migration/masking.ts.',
      async run(ctx) {
        const x = runs.get(ctx)
        if (ctx.dryRun) return 'dry-run'
        const masked = await maskCopy(host(ctx), x.r.data, x.r.scratch)
        x.masked = masked
        x.before = await readCopy(host(ctx), x.r.data, x.r.scratch)
        print(
          `      ${masked} column(s) masked; ${Object.keys(x.before.counts).length} tables, ${x.before.constraints.length} constraints before the migrations`,
        )
        return 'ok'
      },
    },
    {
      title: "The release's migrations on the copy alone (api migrate), timed",
      next: "Do not deploy this release: its migrations fail on this env's data. Nothing live was changed. Fix the migration, release again.",
      async run(ctx) {
        const x = runs.get(ctx)
        const image = imageRefs(ctx.env, release(ctx)).api
        if (ctx.dryRun) {
          print(`      would run ${image} migrate against ${x.r.scratch}`)
          return 'dry-run'
        }
        const out = await migrateCopy(host(ctx), ctx.env, ctx.secrets, image, x.r.scratch)
        x.migrateS = out.seconds
        if (out.code !== 0)
          throw new RunbookError(
            `${release(ctx)}'s migrations failed on a copy of ${ctx.env.name}'s data (exit ${out.code}, ${x.migrateS} s)`,
            EXIT.gateFailed,
          )
        print(`      migrated in ${x.migrateS} s`)
        return 'ok'
      },
    },
    {
      title: 'Rows and constraints compared; constraints left NOT VALID validated against the copy',
      next: "Do not deploy this release as it is: its migrations lose rows or break a constraint on this env's data (above). Nothing live was changed.",
      async run(ctx) {
        const x = runs.get(ctx)
        if (ctx.dryRun || !x.before) return 'dry-run'
        const { comparison: c, problems } = await compareCopy(host(ctx), x.r.data, x.r.scratch, x.before)
        x.comparison = c
        const line = JSON.stringify({
          rows_before: c.rows_before,
          rows_after: c.rows_after,
          masked_columns: x.masked ?? 0,
          migrate_s: x.migrateS ?? null,
          release: release(ctx),
          backup: x.r.entry.id,
        })
        print(`      ${line}`)
        if (ctx.args.json === true) process.stdout.write(`${redact(line)}\n`)
        if (problems.length)
          throw new RunbookError(
            `the migrations of ${release(ctx)} on a copy of ${ctx.env.name}'s data:\n${problems.map((p) => `- ${p}`).join('\n')}`,
            EXIT.gateFailed,
          )
        return 'ok'
      },
    },
  ],
}

if (isMain(import.meta.url)) {
  await main(rehearseMigration)
}

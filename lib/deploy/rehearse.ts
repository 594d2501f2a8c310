import { pgDropDb } from '../commands/backup.ts'
import { cloneLiveToScratch } from '../commands/migration.ts'
import { compareCopy, maskCopy, migrateCopy, readCopy } from '../migration/on-copy.ts'
import { EXIT, RunbookError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import type { Step } from '../run/runbook.ts'
import { DB_NAME, DB_USER } from '../stack/files.ts'
import { state } from './state.ts'

// Production's gate before its migrations: the release's own migrations (the pinned api image this
// deploy runs) first on a copy of the live database, made on the data host and masked there; rows and
// constraints compared. A failure stops the deploy before the live database is migrated. The copy is
// dropped whatever happens; the live database is only read. make rehearse-migration does the same on
// a copy of a backup, any time (docs/runbooks/rehearse-migration.md).

export const REHEARSE_FLAG = 'allow-unrehearsed'

export const rehearseStep: Step = {
  title:
    "Production: the release's migrations first on a masked copy of the live database (on the data host), rows and constraints compared",
  next: 'Nothing switched and the live database was not migrated. Fix the migration, release again (make rehearse-migration ENV=<env> RELEASE=<sha> tries it on a backup).',
  skip: (ctx) =>
    ctx.env.kind !== 'production'
      ? `${ctx.env.kind}: production's gate`
      : ctx.env.swarm
        ? 'a swarm env: the data host holds no app image; run make rehearse-migration before the deploy'
        : ctx.args[REHEARSE_FLAG] === true
          ? 'ALLOW_UNREHEARSED=1 (audited)'
          : false,
  async run(ctx) {
    const s = state(ctx)
    // One host (a swarm env skips this step): the env's data host, or its only host.
    const host = ctx.hosts.find((h) => h.host.roles.includes('data')) ?? ctx.hosts[0]
    if (!s.live || !host) {
      print('      nothing is live on this env yet: no data to rehearse on')
      return 'skipped'
    }
    const data = { env: ctx.env.name, user: DB_USER, db: DB_NAME }
    const copy = `ce_rehearse_${s.release
      .replace(/[^a-z0-9]/gi, '')
      .slice(0, 20)
      .toLowerCase()}_${Date.now().toString(36)}`
    if (ctx.dryRun) {
      print(
        `      would copy ${DB_NAME} into ${copy}, mask it, run ${s.images.api} migrate against it, compare, drop it`,
      )
      return 'dry-run'
    }
    ctx.onCleanup(async () => {
      await host.exec(pgDropDb(data, copy), { echo: false, allowFail: true })
    })
    const t0 = Date.now()
    await host.exec(cloneLiveToScratch(data, copy), { echo: false, timeoutS: 3600 })
    const masked = await maskCopy(host, data, copy)
    const before = await readCopy(host, data, copy)
    print(`      copied in ${Math.round((Date.now() - t0) / 100) / 10} s; ${masked} column(s) masked`)
    const out = await migrateCopy(host, ctx.env, ctx.secrets, s.images.api, copy, s.dbLogin)
    if (out.code !== 0)
      throw new RunbookError(
        `${s.release}'s migrations failed on a copy of ${ctx.env.name}'s live data (exit ${out.code}, ${out.seconds} s): the live database was not migrated`,
        EXIT.gateFailed,
      )
    const { comparison: c, problems } = await compareCopy(host, data, copy, before)
    print(`      migrated the copy in ${out.seconds} s; rows ${c.rows_before} -> ${c.rows_after}`)
    if (problems.length)
      throw new RunbookError(
        `${s.release}'s migrations on a copy of ${ctx.env.name}'s live data:\n${problems.map((p) => `- ${p}`).join('\n')}`,
        EXIT.gateFailed,
      )
    await host.exec(pgDropDb(data, copy), { echo: false, allowFail: true })
    return 'ok'
  },
}

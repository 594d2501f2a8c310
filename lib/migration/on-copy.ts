import type { DataTarget } from '../commands/backup.ts'
import { COUNTS_SQL } from '../commands/backup.ts'
import { COLUMNS_SQL, CONSTRAINTS_SQL, migrateScratch, pgApply, pgQuery } from '../commands/migration.ts'
import type { Env } from '../env/load.ts'
import type { Secrets } from '../env/secrets.ts'
import type { HostSession } from '../host/session.ts'
import { print } from '../report/output.ts'
import { redact } from '../report/redact.ts'
import { appEnv, DB_NAME, networkName } from '../stack/files.ts'
import { type Comparison, type Constraint, compareCopies, parseConstraints, validateSql } from './compare.ts'
import { columnsToMask, maskingSql, parseColumns } from './masking.ts'

// A release's migrations on a copy of an env's data (a scratch database on the data host): the copy's
// personal data masked, its rows and constraints read, the release's `api migrate` run against it alone,
// and the two compared. Shared by make rehearse-migration (a copy of a backup) and production's deploy
// (a copy of the live database, just before its own migrations).

export interface Copy {
  counts: Record<string, number>
  constraints: Constraint[]
}

/** The copy's row counts and constraints. */
export async function readCopy(host: HostSession, data: DataTarget, db: string): Promise<Copy> {
  const counts = JSON.parse(
    (await host.exec(pgQuery(data, db, COUNTS_SQL), { echo: false })).stdout.trim() || '{}',
  ) as Record<string, number>
  const constraints = parseConstraints(
    (await host.exec(pgQuery(data, db, CONSTRAINTS_SQL), { echo: false })).stdout,
  )
  return { counts, constraints }
}

/** Personal data masked in the copy (lib/migration/masking.ts); how many columns were. */
export async function maskCopy(host: HostSession, data: DataTarget, db: string): Promise<number> {
  const masked = columnsToMask(
    parseColumns((await host.exec(pgQuery(data, db, COLUMNS_SQL), { echo: false })).stdout),
  )
  for (const m of masked) print(`      ${m.table}.${m.column}: ${m.rule}`)
  if (masked.length)
    await host.exec(pgApply(data, db), { stdin: maskingSql(masked), echo: false, timeoutS: 3600 })
  return masked.length
}

/**
 * `image`'s migrate against the copy alone: the app's variables (`login`: the role the apps log in as)
 * with DATABASE_URL naming the copy, checked before anything runs: the live database is never named.
 * Returns its exit code and duration; its last lines are printed, redacted.
 */
export async function migrateCopy(
  host: HostSession,
  env: Env,
  secrets: Secrets,
  image: string,
  db: string,
  login?: string,
): Promise<{ code: number; seconds: number }> {
  const vars = appEnv(secrets, login).replace(new RegExp(`/${DB_NAME}$`, 'm'), `/${db}`)
  if (!vars.includes(`/${db}\n`))
    throw new Error('the copy is not in DATABASE_URL: not running the migrations')
  const t0 = Date.now()
  const out = await host.exec(migrateScratch(networkName(env), image), {
    stdin: vars,
    echo: false,
    allowFail: true,
    timeoutS: 3600,
  })
  const seconds = Math.round((Date.now() - t0) / 100) / 10
  for (const l of `${out.stdout}${out.stderr}`.trim().split('\n').slice(-12)) print(`      | ${redact(l)}`)
  return { code: out.code, seconds }
}

/** Rows and constraints compared; constraints left NOT VALID validated against the copy's data. The problems found. */
export async function compareCopy(
  host: HostSession,
  data: DataTarget,
  db: string,
  before: Copy,
): Promise<{ comparison: Comparison; problems: string[] }> {
  const c = compareCopies(before, await readCopy(host, data, db))
  for (const d of c.dropped) print(`      dropped: ${d}`)
  for (const a of c.added) print(`      added: ${a}`)
  const problems = [...c.lost]
  if (c.unvalidated.length) {
    const v = await host.exec(pgApply(data, db), {
      stdin: validateSql(c.unvalidated),
      echo: false,
      allowFail: true,
      timeoutS: 3600,
    })
    if (v.code !== 0)
      problems.push(`a NOT VALID constraint does not hold on the data: ${v.stderr.trim().split('\n').pop()}`)
    else print(`      ${c.unvalidated.length} NOT VALID constraint(s) hold on the copy's data`)
  }
  return { comparison: c, problems }
}

import { existsSync, readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { runLocal } from '../host/local-run.ts'
import { EXIT, RunbookError } from '../report/errors.ts'
import { print, printErr, table } from '../report/output.ts'
import { inActions } from '../run/github-actions.ts'
import { perRun } from '../run/per-run.ts'
import type { RunContext, Step } from '../run/step.ts'
import {
  AUDIT,
  auditSkipReason,
  GATE_RUSTFLAGS,
  type GateCommand,
  migrateCommand,
  parseAudit,
  parseDiagnostics,
  parseFailedTests,
  parseFmt,
  parseMigration,
  parseSquawk,
} from './commands.ts'
import { type GateResult, scratchPostgres, showOutput } from './run.ts'

// Each gate is a step that keeps going when it fails (every gate runs, the report names every failure);
// the run still fails, with exit 4, and the last step lists what failed, by name.

export interface GateOptions {
  workspace: string
  migrations: string
  migrate: string
  image: string
}

const NEXT = 'Fix each item listed, run make gates again; nothing was built or deployed.'
const results = perRun<GateResult[]>('gate results')

type Options = (args: RunContext['args']) => GateOptions

/** Runs one gate, times it, keeps its result; a failed gate fails its step with what failed, by name. */
function gate(
  name: string,
  options: Options,
  check: (o: GateOptions) => Promise<Omit<GateResult, 'gate' | 'seconds'>>,
): Step<RunContext> {
  return {
    title: name,
    next: NEXT,
    keepGoing: true,
    async run(ctx) {
      const t0 = Date.now()
      const r: GateResult = { gate: name, seconds: 0, ...(await check(options(ctx.args))) }
      r.seconds = Math.round((Date.now() - t0) / 100) / 10
      results.set(ctx, [...(results.maybe(ctx) ?? []), r])
      if (r.status === 'failed') throw new RunbookError(r.details.join('\n'), EXIT.gateFailed)
      if (r.status === 'skipped') {
        print(`      – ${r.details.join('; ')} (not passed)`)
        return 'skipped'
      }
      return 'ok'
    },
  }
}

export function cargoGate(g: GateCommand, options: Options): Step<RunContext> {
  return gate(g.name, options, async ({ workspace }) => {
    const ran = await runLocal(g.argv, { cwd: workspace, ...(g.env ? { env: g.env } : {}) })
    const failed = ran.code !== 0
    showOutput(g.name, ran, failed)
    if (!failed) return { status: 'passed', details: [] }
    const out = `${ran.stdout}\n${ran.stderr}`
    const named =
      g.name === 'fmt'
        ? parseFmt(out).map((f) => `${f.replace(`${workspace}/`, '')}: not formatted (cargo fmt --all)`)
        : g.name === 'test'
          ? parseFailedTests(out).map((t) => `test ${t} failed`)
          : parseDiagnostics(out).map((d) => d.replace(`${workspace}/`, ''))
    return { status: 'failed', details: named.length ? named : [`${g.argv.join(' ')} exited ${ran.code}`] }
  })
}

/** cargo audit: high, critical and unscored advisories fail; without an advisory database it is skipped (failed in CI), never passed. */
export const auditGate = (options: Options) =>
  gate('audit', options, async ({ workspace }) => {
    const ran = await runLocal(AUDIT, { cwd: workspace })
    const skip = auditSkipReason(ran.code, ran.stderr)
    if (skip) {
      // In CI the audit must really run: a skip there would let every deploy through unaudited.
      if (inActions())
        return {
          status: 'failed',
          details: [
            `${skip}: in CI the audit must run (install cargo-audit and fetch its advisory database first)`,
          ],
        }
      return { status: 'skipped', details: [skip] }
    }
    let parsed: ReturnType<typeof parseAudit>
    try {
      parsed = parseAudit(ran.stdout)
    } catch {
      showOutput('audit', ran, true)
      return { status: 'failed', details: [`cargo audit gave no report (exit ${ran.code})`] }
    }
    for (const f of parsed.other) print(`      note: ${f.id} in ${f.crate} (${f.severity}): below the bar`)
    return parsed.blocking.length
      ? { status: 'failed', details: parsed.blocking.map((f) => `${f.id} in ${f.crate}: ${f.severity}`) }
      : { status: 'passed', details: [] }
  })

/** squawk, from this repository's node_modules (npm ci installs it; no install script needed). */
const SQUAWK = resolve(import.meta.dirname, '..', '..', 'node_modules', '.bin', 'squawk')

/** The migrations linted by squawk: destructive DDL fails (see DESTRUCTIVE_DDL), the rest are notes. */
export const migrationsLintGate = (options: Options) =>
  gate('migrations-lint', options, async ({ workspace, migrations, image }) => {
    const dir = join(workspace, migrations)
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.sql'))
      .sort()
      .map((f) => join(dir, f))
    if (files.length === 0) return { status: 'passed', details: [] }
    if (!existsSync(SQUAWK))
      return { status: 'failed', details: ['squawk is not installed here: run npm ci in the runbooks'] }
    // The Postgres major the migrations will run on (postgres:15 -> 15), for squawk's version rules.
    const major = /:(\d+)/.exec(image)?.[1]
    const ran = await runLocal(
      [SQUAWK, '--reporter', 'json', ...(major ? [`--pg-version=${major}`] : []), ...files],
      {
        cwd: workspace,
      },
    )
    let parsed: ReturnType<typeof parseSquawk>
    try {
      parsed = parseSquawk(ran.stdout, workspace)
    } catch {
      showOutput('migrations-lint', ran, true)
      return { status: 'failed', details: [`squawk gave no report (exit ${ran.code})`] }
    }
    const rules = [...new Set(parsed.other.map((f) => f.rule))]
    if (rules.length)
      print(
        `      note: ${parsed.other.length} finding(s) below the bar (${rules.join(', ')}): see squawk's rules`,
      )
    return parsed.blocking.length
      ? {
          status: 'failed',
          details: parsed.blocking.map(
            (f) =>
              `${f.where}: ${f.rule}: ${f.message} (reviewed? add "-- squawk-ignore ${f.rule}" above it)`,
          ),
        }
      : { status: 'passed', details: [] }
  })

/** The pending migrations, applied by the app's own command to a throwaway Postgres. */
export const migrationsGate = (options: Options) =>
  gate('migrations', options, async (o) => {
    let pg: Awaited<ReturnType<typeof scratchPostgres>>
    try {
      pg = await scratchPostgres(o.image)
    } catch (err) {
      return {
        status: 'failed',
        details: [`${(err as Error).message} (is Docker running? POSTGRES_IMAGE=?)`],
      }
    }
    try {
      const ran = await runLocal(['bash', '-c', migrateCommand(o.migrate, o.migrations)], {
        cwd: o.workspace,
        // The cargo gates' RUSTFLAGS: `cargo run` reuses what test compiled.
        env: { DATABASE_URL: pg.url, RUSTFLAGS: GATE_RUSTFLAGS },
      })
      const failed = ran.code !== 0
      showOutput('migrations', ran, failed)
      return failed
        ? { status: 'failed', details: [`${o.migrations}: ${parseMigration(ran.stderr || ran.stdout)}`] }
        : { status: 'passed', details: [] }
    } finally {
      await pg.stop()
    }
  })

/** The table of every gate, its machine-readable line, and what failed, by name. */
export const reportStep: Step<RunContext> = {
  title: 'Report',
  async run(ctx) {
    const all = results.maybe(ctx) ?? []
    print(
      table([
        ['gate', 'status', 'seconds', 'details'],
        ...all.map((r) => [r.gate, r.status, r.seconds.toFixed(1), r.details.join('; ')]),
      ]),
    )
    print(
      `gates-summary ${JSON.stringify(Object.fromEntries(all.map((r) => [r.gate, { status: r.status, s: r.seconds }])))}`,
    )
    const failed = all.filter((r) => r.status === 'failed')
    if (failed.length) {
      printErr(`\n✗ ${failed.length} gate(s) failed: ${failed.map((f) => f.gate).join(', ')}`)
      for (const f of failed) {
        printErr(`  ${f.gate}:`)
        for (const d of f.details) printErr(`    - ${d}`)
      }
      printErr(`  next:        ${NEXT}`)
    }
    return 'ok'
  },
}

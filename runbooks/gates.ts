/**
 * gates — the quality gates a release must pass before it is built and deployed, the same on a laptop
 * and in CI: rustfmt, clippy with warnings denied, cargo check with warnings denied, cargo test,
 * cargo audit (high and critical advisories fail; without an advisory database it says "skipped",
 * never "passed"), and the pending migrations applied to a scratch Postgres.
 *
 * When: CI on every push to staging and main (before the images are built); by hand before a PR.
 * Changes: nothing outside the workspace's target/ and a throwaway Postgres container it removes.
 * Every gate runs even when an earlier one failed: the report lists every failure, by name.
 * On-call page: docs/runbooks/gates.md
 */
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import {
  AUDIT,
  auditSkipReason,
  cargoGates,
  migrateCommand,
  parseAudit,
  parseDiagnostics,
  parseFailedTests,
  parseFmt,
  parseMigration,
} from '../lib/gates/commands.ts'
import { type GateResult, scratchPostgres, showOutput } from '../lib/gates/run.ts'
import { runLocal } from '../lib/host/local-run.ts'
import { EXIT, InputError } from '../lib/report/errors.ts'
import { print, printErr, table } from '../lib/report/output.ts'
import { appendLocalAudit, auditLine, ciRunUrl, whoAmI } from '../lib/run/audit.ts'
import { parseArgs, stringArg } from '../lib/run/cli.ts'
import { appendStepSummary, errorAnnotation, inActions, summaryMarkdown } from '../lib/run/github-actions.ts'
import { isMain } from '../lib/run/runbook.ts'

const OPTIONS = [
  { name: 'workspace', makeVar: 'WORKSPACE', value: true, help: 'the Rust workspace (default: .)' },
  {
    name: 'migrations',
    makeVar: 'MIGRATIONS',
    value: true,
    help: 'its migrations directory, relative to the workspace (default: migrations)',
  },
  {
    name: 'migrate-cmd',
    makeVar: 'MIGRATE_CMD',
    value: true,
    help: 'how the app applies migrations; DATABASE_URL is set, {dir} is the directory (default: cargo run -p api -- migrate --dir {dir})',
  },
  {
    name: 'postgres-image',
    makeVar: 'POSTGRES_IMAGE',
    value: true,
    help: 'the scratch Postgres image (default: postgres:15, as production runs)',
  },
]
const DEFAULT_MIGRATE = 'cargo run --quiet --locked -p api -- migrate --dir {dir}'

export async function gates(argv: string[]): Promise<number> {
  const started = new Date()
  let results: GateResult[] = []
  let code: number = EXIT.ok
  let error: string | null = null
  let args: Record<string, string | boolean> = {}
  try {
    args = parseArgs(argv, OPTIONS)
    const workspace = resolve(stringArg(args, 'workspace') ?? '.')
    if (!existsSync(join(workspace, 'Cargo.toml')))
      throw new InputError(
        `WORKSPACE=${workspace} has no Cargo.toml`,
        [],
        'Point WORKSPACE at the app repository (the Rust workspace root).',
      )
    const migrations = stringArg(args, 'migrations') ?? 'migrations'
    if (!existsSync(join(workspace, migrations)))
      throw new InputError(
        `MIGRATIONS=${migrations}: ${join(workspace, migrations)} does not exist`,
        [],
        'Pass MIGRATIONS=<dir> relative to the workspace.',
      )
    print(`gates · ${workspace}${inActions() ? ' · GitHub Actions' : ''}`)
    results = await runAll(workspace, {
      migrations,
      migrate: stringArg(args, 'migrate-cmd') ?? DEFAULT_MIGRATE,
      image: stringArg(args, 'postgres-image') ?? 'postgres:15',
    })
    report(results)
    const failed = results.filter((r) => r.status === 'failed')
    if (failed.length) {
      code = EXIT.gateFailed
      error = `${failed.length} gate(s) failed: ${failed.map((f) => f.gate).join(', ')}`
      printErr(`\n✗ ${error}`)
      for (const f of failed) {
        printErr(`  ${f.gate}:`)
        for (const d of f.details) printErr(`    - ${d}`)
        if (inActions()) print(errorAnnotation(`gate ${f.gate} failed`, f.details.join('\n')))
      }
      printErr('  next:        fix each item above, run make gates again; nothing was built or deployed')
    }
  } catch (err) {
    code = err instanceof InputError ? EXIT.badInput : EXIT.stepFailed
    error = (err as Error).message
    printErr(`\n✗ ${error}`)
    if (err instanceof InputError && err.next) printErr(`  next: ${err.next}`)
  }
  const ended = new Date()
  const outcome = code === EXIT.ok ? 'success' : code === EXIT.badInput ? 'invalid-input' : 'failed'
  appendLocalAudit(
    auditLine({
      ts: ended.toISOString(),
      who: whoAmI(),
      runbook: 'gates',
      env: '',
      args,
      release: process.env.GITHUB_SHA ?? null,
      started_at: started.toISOString(),
      ended_at: ended.toISOString(),
      duration_s: Math.round((ended.getTime() - started.getTime()) / 100) / 10,
      outcome,
      failed_step: results.find((r) => r.status === 'failed')?.gate ?? null,
      error,
      hosts: [],
      dry_run: false,
      ci_run_url: ciRunUrl(),
    }),
  )
  if (inActions())
    appendStepSummary(
      summaryMarkdown(
        'gates',
        outcome,
        results.map((r) => ({ step: r.gate, status: r.status, seconds: r.seconds })),
      ),
    )
  return code
}

async function runAll(
  workspace: string,
  o: { migrations: string; migrate: string; image: string },
): Promise<GateResult[]> {
  const results: GateResult[] = []
  const cargo = cargoGates()
  const count = cargo.length + 2 // then audit and migrations
  const timed = async (gate: string, fn: () => Promise<Omit<GateResult, 'gate' | 'seconds'>>) => {
    print(`\n[${results.length + 1}/${count}] ${gate}`)
    const t0 = Date.now()
    const r = { gate, seconds: 0, ...(await fn()) }
    r.seconds = Math.round((Date.now() - t0) / 100) / 10
    print(
      `      ${r.status === 'passed' ? '✓' : r.status === 'skipped' ? '–' : '✗'} ${r.status}  ${r.seconds}s${r.status === 'skipped' ? `: ${r.details.join('; ')} (not passed)` : ''}`,
    )
    results.push(r)
  }
  for (const g of cargo) {
    await timed(g.name, async () => {
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
      return {
        status: 'failed',
        details: named.length ? named : [`${g.argv.join(' ')} exited ${ran.code}`],
      }
    })
  }
  await timed('audit', async () => {
    const ran = await runLocal(AUDIT, { cwd: workspace })
    const skip = auditSkipReason(ran.code, ran.stderr)
    if (skip) {
      if (inActions()) print(`::warning title=gate audit skipped::${skip}`)
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
      ? {
          status: 'failed',
          details: parsed.blocking.map((f) => `${f.id} in ${f.crate}: ${f.severity}`),
        }
      : { status: 'passed', details: [] }
  })
  await timed('migrations', async () => {
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
        cwd: workspace,
        env: { DATABASE_URL: pg.url },
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
  return results
}

function report(results: GateResult[]): void {
  print(
    `\n${table([
      ['gate', 'status', 'seconds', 'details'],
      ...results.map((r) => [r.gate, r.status, r.seconds.toFixed(1), r.details.join('; ')]),
    ])}`,
  )
  print(
    `gates-summary ${JSON.stringify(Object.fromEntries(results.map((r) => [r.gate, { status: r.status, s: r.seconds }])))}`,
  )
}

if (isMain(import.meta.url)) process.exit(await gates(process.argv.slice(2)))

/**
 * gates — the quality gates a release must pass before it is built and deployed, the same on a laptop
 * and in CI: rustfmt, clippy, cargo check and cargo test (one RUSTFLAGS, warnings denied, one build
 * cache), cargo audit (high, critical and unscored advisories fail; without an advisory database it
 * says "skipped", never "passed", and fails in CI), the migrations linted by squawk (destructive DDL
 * fails) and applied to a scratch Postgres. GATES=fmt,audit runs some of them (CI splits them in two
 * jobs: the fast ones, and those that compile).
 *
 * When: CI on every push to staging and main (before the images are built); by hand before a PR.
 * Changes: nothing outside the workspace's target/ and a throwaway Postgres container it removes.
 * Every gate runs even when an earlier one failed: the report lists every failure, by name (exit 4).
 * It runs on the step runner like every runbook (numbered steps, audit record, Actions summary), with
 * no env: it needs no host and no secret.
 * On-call page: docs/runbooks/gates.md
 */
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { cargoGates, GATE_NAMES, type GateName } from '../lib/gates/commands.ts'
import {
  auditGate,
  cargoGate,
  type GateOptions,
  migrationsGate,
  migrationsLintGate,
  reportStep,
} from '../lib/gates/steps.ts'
import { InputError } from '../lib/report/errors.ts'
import type { ParsedArgs } from '../lib/run/cli.ts'
import { stringArg } from '../lib/run/cli.ts'
import { isMain, type LocalRunbookSpec, main, runRunbook } from '../lib/run/runbook.ts'
import type { RunContext, Step } from '../lib/run/step.ts'

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
  {
    name: 'gates',
    makeVar: 'GATES',
    value: true,
    help: `the gates to run, comma-separated (default: all: ${GATE_NAMES.join(',')})`,
  },
]
const DEFAULT_MIGRATE = 'cargo run --quiet --locked -p api -- migrate --dir {dir}'

const gateOptions = (args: ParsedArgs): GateOptions => ({
  workspace: resolve(stringArg(args, 'workspace') ?? '.'),
  migrations: stringArg(args, 'migrations') ?? 'migrations',
  migrate: stringArg(args, 'migrate-cmd') ?? DEFAULT_MIGRATE,
  image: stringArg(args, 'postgres-image') ?? 'postgres:15',
})

export const gatesRunbook: LocalRunbookSpec = {
  name: 'gates',
  local: true,
  options: OPTIONS,
  check(args) {
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
    const picked = selectedGates(stringArg(args, 'gates'))
    return picked.length === GATE_NAMES.length ? workspace : `${workspace} (${picked.join(', ')})`
  },
  steps: [
    ...[
      ...cargoGates().map((g) => ({ name: g.name as GateName, step: cargoGate(g, gateOptions) })),
      { name: 'audit' as const, step: auditGate(gateOptions) },
      { name: 'migrations-lint' as const, step: migrationsLintGate(gateOptions) },
      { name: 'migrations' as const, step: migrationsGate(gateOptions) },
    ].map(({ name, step }) => onlyIfPicked(name, step)),
    reportStep,
  ],
}

/** GATES=a,b: those gates (unknown names are bad input); unset: every gate. */
export function selectedGates(raw: string | undefined): GateName[] {
  if (raw === undefined || raw.trim() === '') return [...GATE_NAMES]
  const names = raw.split(',').map((n) => n.trim())
  const unknown = names.filter((n) => !(GATE_NAMES as readonly string[]).includes(n))
  if (unknown.length || names.length === 0)
    throw new InputError(
      `GATES=${raw}: ${unknown.map((u) => `"${u}"`).join(', ')} is not a gate`,
      [],
      `Pick among ${GATE_NAMES.join(', ')} (comma-separated), or leave GATES out to run them all.`,
    )
  return GATE_NAMES.filter((n) => names.includes(n))
}

/** A gate left out by GATES= is skipped, and says so (never counted as passed). */
function onlyIfPicked(name: GateName, step: Step<RunContext>): Step<RunContext> {
  return {
    ...step,
    skip: (ctx) =>
      selectedGates(stringArg(ctx.args, 'gates')).includes(name)
        ? false
        : `not in GATES=${stringArg(ctx.args, 'gates')}`,
  }
}

/** The gates with these arguments; resolves to the exit code (0, 2 bad input, 4 a gate failed). */
export const gates = (argv: string[]): Promise<number> => runRunbook(gatesRunbook, argv)

if (isMain(import.meta.url)) await main(gatesRunbook)

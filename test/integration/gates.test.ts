import { execFileSync } from 'node:child_process'
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { setSinks } from '../../lib/report/output.ts'
import { errorAnnotation } from '../../lib/run/github-actions.ts'
import { gates } from '../../runbooks/gates.ts'
import { suite } from '../harness.ts'
import { ensureDockerEngine } from '../sandbox/engine.ts'
import { buildDataImages, DATA_IMAGES } from '../sandbox/fixtures.ts'

// make gates on a copy of the fixture Rust workspace, with a scratch Postgres from the sandbox image.
const test = suite('gates on the fixture Rust workspace', { timeoutS: 600 })
const APP = join(import.meta.dirname, '..', 'sandbox', 'app')
let clean: string
let broken: string

function copyWorkspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ce-gates-ws-'))
  execFileSync('bash', ['-c', `tar -C "${APP}" --exclude=./target -cf - . | tar -C "${dir}" -xf -`])
  return dir
}

async function runGates(args: string[], env: Record<string, string> = {}) {
  const saved = { ...process.env }
  Object.assign(process.env, env)
  let out = ''
  setSinks((t) => {
    out += t
  })
  try {
    const code = await gates([...args, '--postgres-image', DATA_IMAGES.postgres])
    return { code, out }
  } finally {
    setSinks(
      (t) => process.stdout.write(t),
      (t) => process.stderr.write(t),
    )
    for (const k of Object.keys(env)) delete process.env[k]
    Object.assign(process.env, saved)
  }
}

test.before(async () => {
  await ensureDockerEngine()
  await buildDataImages()
  clean = copyWorkspace()
  broken = copyWorkspace()
  appendFileSync(
    join(broken, 'crates/common/src/lib.rs'),
    '\npub fn  badly_formatted( ) -> u8 { 1 }\n\npub fn needless_clone(x: u32) -> u32 {\n    let y = x.clone();\n    y\n}\n',
  )
  appendFileSync(
    join(broken, 'crates/site/src/main.rs'),
    '\n#[cfg(test)]\nmod gate_breakers {\n    #[test]\n    fn gate_must_fail() {\n        assert_eq!(1 + 1, 3, "deliberately failing test");\n    }\n}\n',
  )
  // Destructive DDL (the release still serving reads that column during the switch), and a reviewed one.
  writeFileSync(
    join(broken, 'migrations/bad/0003_drop_column.sql'),
    '-- drops a column the serving release reads\nALTER TABLE statements DROP COLUMN IF EXISTS memo;\n-- squawk-ignore ban-drop-table\nDROP TABLE IF EXISTS scratch_import;\n',
  )
})

test('a clean tree passes every gate; cargo audit without its database is "skipped", never "passed"', async () => {
  const { code, out } = await runGates(['--workspace', clean, '--migrations', 'migrations/v2'])
  assert.is(code, 0, out)
  const summary = JSON.parse(/gates-summary (\{.*\})/.exec(out)?.[1] ?? '{}') as Record<
    string,
    { status: string }
  >
  assert.equal(Object.fromEntries(Object.entries(summary).map(([g, r]) => [g, r.status])), {
    fmt: 'passed',
    clippy: 'passed',
    check: 'passed',
    test: 'passed',
    audit: 'skipped',
    'migrations-lint': 'passed',
    migrations: 'passed',
  })
  assert.match(out, /audit +skipped .*(cargo-audit is not installed|no advisory database)/)
  assert.match(out, '(not passed)')
})

test('a formatting error, a clippy warning, a failing test and a broken migration: each named, exit 4; Actions output', async () => {
  const summaryFile = join(mkdtempSync(join(tmpdir(), 'ce-gates-sum-')), 'summary.md')
  writeFileSync(summaryFile, '')
  const { code, out } = await runGates(['--workspace', broken, '--migrations', 'migrations/bad'], {
    GITHUB_ACTIONS: 'true',
    GITHUB_STEP_SUMMARY: summaryFile,
  })
  assert.is(code, 4, out)
  // In Actions an audit that could not run fails: a skipped audit would let an unaudited build through.
  assert.match(out, '6 gate(s) failed: fmt, clippy, test, audit, migrations-lint, migrations')
  // squawk: the destructive statement by file:line and rule; the reviewed DROP TABLE passes.
  assert.match(out, /- migrations\/bad\/0003_drop_column\.sql:2: ban-drop-column: /)
  assert.not.match(out, /0003_drop_column\.sql:\d+: ban-drop-table/)
  assert.match(out, /in CI the audit must run \(install cargo-audit and fetch its advisory database first\)/)
  assert.match(out, '- crates/common/src/lib.rs: not formatted (cargo fmt --all)')
  assert.match(out, /- crates\/common\/src\/lib\.rs:\d+: using `clone` on type `u32`/)
  assert.match(out, '- test gate_breakers::gate_must_fail failed')
  assert.match(out, /- migrations\/bad: .*0002_broken_reference\.sql.*"account_holders" does not exist/)
  // The same run speaks GitHub Actions: a group per gate, an annotation per failed gate, a summary.
  // The gates run on the step runner: a group per step, numbered, and the runner's annotation per failed step.
  for (const [n, g] of ['fmt', 'clippy', 'check', 'test', 'audit', 'migrations-lint', 'migrations'].entries())
    assert.match(out, `::group::gates [${n + 1}/8] ${g}\n`)
  assert.match(
    out,
    errorAnnotation('gates: step 4 "test" failed', 'test gate_breakers::gate_must_fail failed'),
  )
  const md = readFileSync(summaryFile, 'utf8')
  assert.match(md, '### ❌ gates: failed')
  assert.match(md, /\| 4 \| test \| failed \| \d+\.\d \|/)
})

test('GATES= runs only those gates (the fast job of CI); the others are skipped, never passed; an unknown one is exit 2', async () => {
  const { code, out } = await runGates([
    '--workspace',
    broken,
    '--migrations',
    'migrations/bad',
    '--gates',
    'fmt,migrations-lint',
  ])
  assert.is(code, 4, out)
  const summary = JSON.parse(/gates-summary (\{.*\})/.exec(out)?.[1] ?? '{}') as Record<
    string,
    { status: string }
  >
  assert.equal(Object.keys(summary), ['fmt', 'migrations-lint'])
  assert.match(out, '2 gate(s) failed: fmt, migrations-lint')
  assert.not.match(out, 'Compiling')
  const bad = await runGates(['--workspace', clean, '--migrations', 'migrations/v2', '--gates', 'fmt,lint'])
  assert.is(bad.code, 2, bad.out)
  assert.match(bad.out, 'GATES=fmt,lint: "lint" is not a gate')
})

test('a workspace without Cargo.toml is refused by name (exit 2)', async () => {
  const { code, out } = await runGates(['--workspace', tmpdir()])
  assert.is(code, 2, out)
  assert.match(out, `WORKSPACE=${tmpdir()} has no Cargo.toml`)
})

test.run()

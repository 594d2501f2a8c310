import * as assert from 'uvu/assert'
import {
  auditSkipReason,
  cargoGates,
  cvssSeverity,
  DESTRUCTIVE_DDL,
  GATE_NAMES,
  migrateCommand,
  parseAudit,
  parseDiagnostics,
  parseFailedTests,
  parseFmt,
  parseSquawk,
} from '../../lib/gates/commands.ts'
import {
  endGroup,
  errorAnnotation,
  escapeData,
  group,
  maskLines,
  summaryMarkdown,
} from '../../lib/run/github-actions.ts'
import { selectedGates } from '../../runbooks/gates.ts'
import { suite } from '../harness.ts'

const test = suite('gates: commands and output parsing; GitHub Actions workflow commands')

test('the cargo gates: fmt --check, clippy, check and test under ONE RUSTFLAGS (one build cache), test without fail-fast', () => {
  const byName = Object.fromEntries(cargoGates().map((g) => [g.name, g]))
  assert.equal(byName.fmt?.argv, ['cargo', 'fmt', '--all', '--', '--check'])
  assert.equal(byName.clippy?.argv.slice(-3), ['--', '-D', 'warnings'])
  for (const g of ['clippy', 'check', 'test']) assert.equal(byName[g]?.env, { RUSTFLAGS: '-D warnings' }, g)
  assert.ok(byName.test?.argv.includes('--no-fail-fast'))
  assert.is(
    migrateCommand('cargo run -p api -- migrate --dir {dir}', 'db/my migrations'),
    "cargo run -p api -- migrate --dir 'db/my migrations'",
  )
})

test('GATES= picks gates by name, in their order; an unknown name is bad input naming the choices', () => {
  assert.equal(selectedGates(undefined), [...GATE_NAMES])
  assert.equal(selectedGates('audit, fmt,migrations-lint'), ['fmt', 'audit', 'migrations-lint'])
  try {
    selectedGates('fmt,lint')
    assert.unreachable('an unknown gate was accepted')
  } catch (err) {
    assert.match((err as Error).message, 'GATES=fmt,lint: "lint" is not a gate')
  }
})

test('squawk: destructive DDL blocks with file:line (1-based) and the way to record a review; the rest are notes', () => {
  const report = JSON.stringify([
    {
      file: '/w/migrations/0003.sql',
      line: 4,
      rule_name: 'ban-drop-column',
      message: 'Dropping a column may break existing clients.',
    },
    {
      file: '/w/migrations/0003.sql',
      line: 4,
      rule_name: 'require-lock-timeout',
      message: 'Missing `set lock_timeout`',
    },
    {
      file: '/w/migrations/0004.sql',
      line: 0,
      rule_name: 'renaming-column',
      message: 'Renaming a column may break existing clients.',
    },
  ])
  const { blocking, other } = parseSquawk(report, '/w')
  assert.equal(
    blocking.map((f) => `${f.where} ${f.rule}`),
    ['migrations/0003.sql:5 ban-drop-column', 'migrations/0004.sql:1 renaming-column'],
  )
  assert.equal(
    other.map((f) => f.rule),
    ['require-lock-timeout'],
  )
  assert.ok(DESTRUCTIVE_DDL.includes('ban-drop-table'))
  assert.throws(() => parseSquawk('{"not":"a list"}', '/w'))
})

test('rustfmt, clippy/rustc and test output become names', () => {
  const fmt =
    'Diff in /w/crates/a/src/lib.rs:3:\n-x\n+y\nDiff in /w/crates/a/src/lib.rs at line 9:\nDiff in /w/b.rs:1:\n'
  assert.equal(parseFmt(fmt), ['/w/crates/a/src/lib.rs', '/w/b.rs'])
  const clippy = [
    'error: using `clone` on type `u32` which implements the `Copy` trait',
    '  --> crates/common/src/lib.rs:25:13',
    '   |',
    'error[E0308]: mismatched types',
    ' --> src/main.rs:4:5',
    'error: could not compile `common` (lib) due to 2 previous errors',
    'error: aborting due to 2 previous errors',
  ].join('\n')
  assert.equal(parseDiagnostics(clippy), [
    'crates/common/src/lib.rs:25: using `clone` on type `u32` which implements the `Copy` trait',
    'src/main.rs:4: mismatched types',
  ])
  const tests = 'test a::ok ... ok\ntest gate_breakers::gate_must_fail ... FAILED\ntest b::c ... FAILED\n'
  assert.equal(parseFailedTests(tests), ['gate_breakers::gate_must_fail', 'b::c'])
})

test('cargo audit: high and critical block, lower ones are notes; no database or no tool is a skip, never a pass', () => {
  const report = JSON.stringify({
    vulnerabilities: {
      list: [
        {
          advisory: { id: 'RUSTSEC-2024-0001', severity: 'critical' },
          package: { name: 'a', version: '1.0.0' },
        },
        {
          advisory: { id: 'RUSTSEC-2024-0002', cvss: 'CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N' },
          package: { name: 'b', version: '2.0.0' },
        },
        {
          advisory: { id: 'RUSTSEC-2024-0003', cvss: 'CVSS:3.1/AV:L/AC:H/PR:L/UI:R/S:U/C:L/I:N/A:N' },
          package: { name: 'c', version: '0.1.0' },
        },
      ],
    },
  })
  const parsed = parseAudit(report)
  assert.equal(
    parsed.blocking.map((f) => `${f.id} ${f.crate} ${f.severity}`),
    ['RUSTSEC-2024-0001 a 1.0.0 critical', 'RUSTSEC-2024-0002 b 2.0.0 high'],
  )
  assert.equal(
    parsed.other.map((f) => f.id),
    ['RUSTSEC-2024-0003'],
  )
  assert.equal(parseAudit('{"vulnerabilities":{"list":[]}}'), { blocking: [], other: [] })
  // CVSS v4 vectors (VC/VI/VA): a critical one used to read as medium; an unscored one blocks.
  const v4 = parseAudit(
    JSON.stringify({
      vulnerabilities: {
        list: [
          {
            advisory: {
              id: 'RUSTSEC-2025-0004',
              cvss: 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N',
            },
            package: { name: 'd', version: '1.0.0' },
          },
          {
            advisory: {
              id: 'RUSTSEC-2025-0005',
              cvss: 'CVSS:4.0/AV:L/AC:L/AT:P/PR:L/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N',
            },
            package: { name: 'e', version: '1.0.0' },
          },
          { advisory: { id: 'RUSTSEC-2025-0006' }, package: { name: 'f', version: '1.0.0' } },
        ],
      },
    }),
  )
  assert.equal(
    v4.blocking.map((f) => `${f.id} ${f.severity}`),
    [
      'RUSTSEC-2025-0004 critical',
      'RUSTSEC-2025-0006 unscored (review it; ignore it in audit.toml only once reviewed)',
    ],
  )
  assert.equal(
    v4.other.map((f) => `${f.id} ${f.severity}`),
    ['RUSTSEC-2025-0005 medium'],
  )
  assert.is(cvssSeverity('CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:N/VI:N/VA:N/SC:H/SI:N/SA:N'), 'high')
  assert.is(cvssSeverity('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:N'), 'critical')
  assert.is(auditSkipReason(101, 'error: no such command: `audit`\n'), 'cargo-audit is not installed')
  // cargo-audit's own messages (rustsec issues #313 and #1413)
  assert.is(
    auditSkipReason(
      1,
      "error: couldn't open advisory database: git operation failed: could not find repository",
    ),
    'no advisory database',
  )
  assert.is(
    auditSkipReason(1, "error: couldn't fetch advisory database: git operation failed"),
    'no advisory database',
  )
  assert.match(
    auditSkipReason(1, 'error: error loading advisory database: parse error: duplicate advisory ID') ?? '',
    'could not be loaded',
  )
  assert.is(auditSkipReason(1, 'error: 2 vulnerabilities found!'), null)
  assert.is(auditSkipReason(0, ''), null)
})

test('Actions: groups, escaped annotations, masks line by line, a markdown summary of the steps', () => {
  assert.is(group('gate fmt'), '::group::gate fmt')
  assert.is(endGroup(), '::endgroup::')
  assert.is(escapeData('50% done\r\nnext'), '50%25 done%0D%0Anext')
  assert.is(
    errorAnnotation('step 3: deploy, then gates', 'exit 1\nsee above'),
    '::error title=step 3%3A deploy%2C then gates::exit 1%0Asee above',
  )
  assert.equal(maskLines(['s3cr3t-value', '-----BEGIN KEY-----\nAAAAline2\n-----END KEY-----', 'ab']), [
    '::add-mask::s3cr3t-value',
    '::add-mask::-----BEGIN KEY-----',
    '::add-mask::AAAAline2',
    '::add-mask::-----END KEY-----',
  ])
  const md = summaryMarkdown(
    'deploy to staging',
    'failed',
    [
      { step: 'Preconditions', status: 'ok', seconds: 1.23 },
      { step: 'Gates | through nginx', status: 'failed', seconds: 20 },
      { step: 'Record', status: 'not run', seconds: 0 },
    ],
    { step: 'Gates', message: 'api p95 900 ms', next: 'look at the release' },
  )
  assert.is(
    md,
    [
      '### ❌ deploy to staging: failed',
      '',
      '| # | step | status | seconds |',
      '|---|---|---|---|',
      '| 1 | Preconditions | ok | 1.2 |',
      '| 2 | Gates \\| through nginx | failed | 20.0 |',
      '| 3 | Record | not run |  |',
      '',
      '**Failed:** Gates: api p95 900 ms',
      '**Next:** look at the release',
      '',
      '',
    ].join('\n'),
  )
})

test.run()

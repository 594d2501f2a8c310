import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import {
  AUDIT_HELPER_PATH,
  appendAuditRecord,
  auditHelperScript,
  auditLogApply,
  auditLogCheck,
  auditSudoers,
} from '../../lib/commands/audit-log.ts'
import { directories, directoriesCheck, LOGROTATE } from '../../lib/commands/host-config.ts'
import { suite } from '../harness.ts'

// The host audit log is root's; a login that is not root appends through one helper (sudo, no argument).
const test = suite('audit log: root-owned, appended through one helper')

const record = (extra = '') =>
  `{"ts":"2026-12-03T10:00:00.000Z","who":"ana","runbook":"deploy","outcome":"success"${extra}}`

/**
 * As root: directly when the tests run as root (the CI machine), else through `sudo -n` (a GitHub
 * runner's user has it). The helper only ever runs as root on a host (sudo), and its files are root's.
 */
function asRoot(argv: string[], input?: string) {
  const root = process.getuid?.() === 0
  return spawnSync(root ? (argv[0] as string) : 'sudo', root ? argv.slice(1) : ['-n', ...argv], {
    input,
    encoding: 'utf8',
    timeout: 20_000,
  })
}

/** The real helper (bash), its log in a temp dir, run as root; what it wrote and the modes it set. */
function helperRun(input: string, args: string[] = [], env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ce-audit-'))
  const log = join(dir, 'logs', 'audit.log')
  const script = join(dir, 'audit-append')
  writeFileSync(script, auditHelperScript(log), { mode: 0o755 })
  const vars = Object.entries({ PATH: process.env.PATH ?? '', ...env }).map(([k, v]) => `${k}=${v}`)
  const r = asRoot(['env', '-i', ...vars, 'bash', script, ...args], input)
  const read = asRoot(['cat', log])
  const lines = read.status === 0 ? read.stdout.split('\n').filter(Boolean) : []
  const mode = (path: string) => asRoot(['stat', '-c', '%a', path]).stdout.trim()
  // The helper makes a new log append-only (where the file system can): lifted, so tmp can be cleaned.
  asRoot(['chattr', '-a', log])
  return { code: r.status, err: `${r.stderr}${r.error ? r.error.message : ''}`, lines, log, dir, mode }
}

test('one record: tagged with the login sudo names, appended to a root:adm 0640 log in a 0750 directory', () => {
  const a = helperRun(`${record()}\n`, [], { SUDO_USER: 'deploy' })
  assert.is(a.code, 0, a.err)
  assert.equal(a.lines, [`{"login":"deploy",${record().slice(1)}`])
  assert.equal(JSON.parse(a.lines[0] ?? '').runbook, 'deploy')
  assert.is(a.mode(a.log), '640')
  assert.is(a.mode(join(a.dir, 'logs')), '750')
  // Run by root itself (no sudo): root is the login.
  const b = helperRun(record())
  assert.is(b.code, 0, b.err)
  assert.match(b.lines[0] ?? '', /^\{"login":"root","ts":/)
})

test('anything but one audit record is refused (64) and nothing is written', () => {
  const cases: [string, string[], string][] = [
    [record(), ['--log', '/etc/passwd'], 'takes no argument'],
    ['', [], 'no record on stdin'],
    ['not json\n', [], 'not one JSON record'],
    [`${record().slice(0, -1)},"x":"a\u001b[2J"}\n`, [], 'control characters'],
    [record(',"login":"root"'), [], 'a record may not name its login'],
  ]
  for (const [input, args, why] of cases) {
    const r = helperRun(input, args, { SUDO_USER: 'deploy' })
    assert.is(r.code, 64, `${why}: ${r.err}`)
    assert.match(r.err, `audit-append: ${why}`)
    assert.equal(r.lines, [], why)
  }
  // Only its first line: a second record on stdin is not appended.
  const two = helperRun(`${record()}\n${record(',"extra":1')}\n`, [], { SUDO_USER: 'deploy' })
  assert.is(two.code, 0, two.err)
  assert.is(two.lines.length, 1)
  // A login name sudo would never give is not written as such.
  const odd = helperRun(record(), [], { SUDO_USER: 'x"; rm -rf /' })
  assert.match(odd.lines[0] ?? '', /^\{"login":"unknown","ts":/)
})

// (visudo checks the rule on the host before it is put in place: integration setup-server.)
test('sudo lets the deploy login run the helper with no argument, and nothing else', () => {
  assert.is(
    auditSudoers('deploy'),
    `# Managed by setup-server: deploy appends its audit records, nothing else.\ndeploy ALL=(root) NOPASSWD: ${AUDIT_HELPER_PATH} ""\n`,
  )
})

test('runbooks append through the helper where setup-server put it, straight to the file before', () => {
  const cmd = appendAuditRecord()
  assert.is(
    cmd,
    `if [ -x ${AUDIT_HELPER_PATH} ]; then if [ "$(id -u)" = 0 ]; then ${AUDIT_HELPER_PATH}; else sudo -n ${AUDIT_HELPER_PATH}; fi; else set -e; mkdir -p /var/log/conciliaextrato; touch /var/log/conciliaextrato/audit.log; chmod 0640 /var/log/conciliaextrato/audit.log; cat >> /var/log/conciliaextrato/audit.log; fi`,
  )
})

test("setup-server's directories: the env's stay deploy's, the log and its directory become root's", () => {
  assert.match(directories('production', 'deploy'), auditLogApply)
  // Append-only: the flag is lifted first (an append-only file refuses chown and chmod), set last.
  assert.is(
    auditLogApply,
    '{ chattr -a /var/log/conciliaextrato/audit.log 2>/dev/null || true; } && install -d -m 0750 -o root -g adm /var/log/conciliaextrato && touch /var/log/conciliaextrato/audit.log && chown root:adm /var/log/conciliaextrato/audit.log && chmod 0640 /var/log/conciliaextrato/audit.log && chattr +a /var/log/conciliaextrato/audit.log',
  )
  assert.match(
    auditLogCheck,
    "lsattr /var/log/conciliaextrato/audit.log 2>/dev/null | cut -d' ' -f1 | grep -q a",
  )
  assert.not.match(directories('production', 'deploy'), '-o deploy -g adm /var/log')
  assert.match(directoriesCheck('production', 'deploy'), auditLogCheck)
  assert.match(
    auditLogCheck,
    `[ "$(stat -c '%U:%G %a' /var/log/conciliaextrato/audit.log 2>/dev/null)" = 'root:adm 640' ]`,
  )
  assert.match(
    LOGROTATE.content,
    '  create 0640 root adm\n  # The log is append-only (chattr +a): lifted for the rename, set again on the new file.\n  prerotate\n    chattr -a /var/log/conciliaextrato/audit.log\n  endscript\n  postrotate\n    chattr +a /var/log/conciliaextrato/audit.log\n  endscript\n}\n',
  )
})

test.run()

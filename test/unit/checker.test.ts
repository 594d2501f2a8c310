import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { parse as parseYaml } from 'yaml'
import {
  appendAuditCommand,
  checkerAuthorizedKeys,
  checkerHelperPath,
  checkerHelperScript,
  checkerSudoers,
  checkerUserApply,
  checkerUserCheck,
  parseCheckerProof,
  READ_NAMES,
  readCommand,
} from '../../lib/commands/checker.ts'
import { hostFactsScript } from '../../lib/commands/facts.ts'
import { appendLineFromStdin } from '../../lib/commands/files.ts'
import { containersProbe, servicesProbe } from '../../lib/commands/health.ts'
import { ARG_MINUTES, errorCountsScript, historyScript, readHistory } from '../../lib/commands/uptime.ts'
import { REMOTE_AUDIT_LOG } from '../../lib/env/host-paths.ts'
import { loadEnv, validateEnv } from '../../lib/env/load.ts'
import { readOnlyLogin, secretsFor } from '../../lib/env/needs.ts'
import { InputError } from '../../lib/report/errors.ts'
import { suite } from '../harness.ts'

// The checker account: the read-only runbooks' login. Its reads that need root go through one
// root-owned helper, which runs the same probe text a deploy login runs and takes one checked word.
const test = suite('checker account: reads through one helper, nothing else')
const staging = loadEnv('staging')
const HELPER = '/usr/local/lib/conciliaextrato/check-staging'

test('a deploy login runs the probe itself; the checker asks the helper by name', () => {
  assert.is(readCommand(staging, undefined, 'containers', 'compose'), containersProbe('staging'))
  assert.is(
    readCommand(staging, undefined, 'services', 'data'),
    servicesProbe('staging', { nginx: false, data: true }),
  )
  assert.is(readCommand(staging, undefined, 'facts'), hostFactsScript(staging))
  assert.is(readCommand(staging, undefined, 'history', '2026-11-01'), readHistory('staging', '2026-11-01'))
  assert.is(readCommand(staging, undefined, 'errors', '30'), errorCountsScript('staging', 30))
  assert.is(checkerHelperPath('staging'), HELPER)
  assert.is(readCommand(staging, HELPER, 'containers', 'compose'), `sudo -n ${HELPER} containers compose`)
  assert.is(readCommand(staging, HELPER, 'history', '2026-11-01'), `sudo -n ${HELPER} history 2026-11-01`)
  assert.is(readCommand(staging, HELPER, 'facts'), `sudo -n ${HELPER} facts`)
})

test('an argument a read does not take is refused before anything runs', () => {
  assert.throws(
    () => readCommand(staging, HELPER, 'containers', 'all; id'),
    /not one of compose, stack, data/,
  )
  assert.throws(() => readCommand(staging, HELPER, 'history', '2026-11-01; id'), /is not a day, YYYY-MM-DD/)
  assert.throws(() => readCommand(staging, undefined, 'errors', '$(id)'), /is not a number of minutes/)
  assert.throws(() => readCommand(staging, HELPER, 'facts', 'x'), /takes no argument/)
})

/** Runs the helper with bash (as the caller would through sudo), in an empty working directory. */
function runHelper(script: string, args: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'ce-checker-'))
  const path = join(dir, 'helper')
  writeFileSync(path, script, { mode: 0o755 })
  return spawnSync('bash', [path, ...args], { cwd: dir, encoding: 'buffer', timeout: 20_000 })
}

test('the helper is valid bash, knows every read, and refuses anything else with exit 64', () => {
  const script = checkerHelperScript(staging)
  const syntax = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' })
  assert.is(syntax.status, 0, syntax.stderr)
  for (const name of READ_NAMES) assert.match(script, `\n  ${name})\n`)
  assert.ok(script.startsWith('#!/bin/bash\n'))
  assert.match(script, 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
  // The probes, byte for byte as a deploy login runs them; the checked argument as "$arg".
  for (const probe of [
    containersProbe('staging'),
    hostFactsScript(staging),
    historyScript('staging', '"$arg"'),
    errorCountsScript('staging', ARG_MINUTES),
  ])
    assert.ok(script.includes(`\n${probe}\n`), probe.slice(0, 60))
  for (const args of [
    [],
    ['sh'],
    ['bash', '-c', 'id'],
    ['facts', 'extra'],
    ['containers'],
    ['containers', 'all; id'],
    ['services', '$(id)'],
    ['history', '2026-11-01; id'],
    ['history', '2026-11-01', 'x'],
    ['errors', '30 min'],
    ['errors', '-1'],
  ]) {
    const r = runHelper(script, args)
    assert.is(r.status, 64, `${args.join(' ')}: ${r.stderr}`)
    assert.is(r.stdout.length, 0, `${args.join(' ')} printed something`)
  }
})

test("the checker's one write: its audit record, tagged, one JSON line; anything else is refused before any write", () => {
  const script = checkerHelperScript(staging)
  assert.match(
    script,
    // Appended under flock, opened for appending only (the log is append-only: no touch, no chmod).
    `printf '%s\\n' "{\\"via\\":\\"ce-check\\",\${line#\\{}" | { flock -w 10 9 || { echo "the audit log stayed locked 10 s" >&2; exit 75; }; cat >&9; } 9>>${REMOTE_AUDIT_LOG}`,
  )
  assert.is(appendAuditCommand(HELPER), `sudo -n ${HELPER} audit`)
  assert.is(appendAuditCommand(undefined), appendLineFromStdin(REMOTE_AUDIT_LOG))
  for (const [input, args] of [
    ['rm -rf /\n', ['audit']],
    ['{"ts":"x"} trailing\n', ['audit']],
    ['{"ts":"x\u001b[2J"}\n', ['audit']],
    ['{"ts":"x"}\n', ['audit', 'extra']],
    ['', ['audit']],
  ] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'ce-checker-'))
    const path = join(dir, 'helper')
    writeFileSync(path, script, { mode: 0o755 })
    const r = spawnSync('bash', [path, ...args], { input, encoding: 'utf8', timeout: 20_000 })
    assert.is(r.status, 64, `${JSON.stringify(input)}: ${r.stderr}`)
  }
})

test('a read with a checked argument runs the same probe as the deploy login (history: an empty gzip here)', () => {
  const r = runHelper(checkerHelperScript(staging), ['history', '2026-11-01'])
  assert.is(r.status, 0, r.stderr.toString())
  // gzip's magic bytes: the history read streamed (no history files on this machine).
  assert.equal([...r.stdout.subarray(0, 2)], [0x1f, 0x8b])
})

test('sudoers: one rule, the helper, nothing else; keys carry restrict; the account is checked and mended', () => {
  assert.is(
    checkerSudoers('ce-check', 'staging'),
    `# Managed by setup-server (env file: ssh.checker): the checker's reads, and nothing else.\nce-check ALL=(root) NOPASSWD: ${HELPER}\n`,
  )
  assert.is(checkerAuthorizedKeys(['ssh-ed25519 AAAA c@s']), 'restrict ssh-ed25519 AAAA c@s\n')
  assert.match(checkerUserCheck('ce-check'), "grep -qxE 'sudo|docker|adm|root|wheel|disk|shadow'")
  assert.match(checkerUserCheck('ce-check'), `passwd -S ce-check | awk '{exit !($2 == "L")}'`)
  const apply = checkerUserApply('ce-check')
  assert.match(apply, 'useradd --create-home --user-group --shell /bin/bash ce-check')
  assert.match(apply, 'for g in sudo docker adm root wheel disk shadow; do gpasswd -d ce-check "$g"')
  assert.match(apply, 'passwd -l ce-check')
})

test("verify-server's proof: any power beyond the helper's reads is named", () => {
  const good =
    'groups=ce-check\nsudo_other=no\ndocker=no\nkeys_writable=no\nhelper_reads=yes\nhelper_unknown_read=no\n'
  assert.equal(parseCheckerProof(good), [])
  assert.equal(parseCheckerProof(good.replace('groups=ce-check', 'groups=ce-check docker')), [
    'in group(s) docker',
  ])
  assert.equal(parseCheckerProof(good.replace('sudo_other=no', 'sudo_other=yes')), [
    'sudo runs other commands',
  ])
  assert.equal(parseCheckerProof(good.replace('docker=no', 'docker=yes')), ["reaches Docker's socket"])
  assert.equal(parseCheckerProof(good.replace('keys_writable=no', 'keys_writable=yes')), [
    'can change its own keys',
  ])
  assert.equal(parseCheckerProof(good.replace('helper_reads=yes', 'helper_reads=no')), [
    'the helper does not read (facts)',
  ])
  assert.equal(parseCheckerProof(good.replace('helper_unknown_read=no', 'helper_unknown_read=yes')), [
    'the helper runs an unknown read',
  ])
  assert.ok(parseCheckerProof('').includes('no answer'))
})

test('env: the committed envs have a checker; its user and key are checked; the read-only runbooks need its key', () => {
  for (const env of [staging, loadEnv('production')]) {
    assert.equal(env.ssh.checker, { user: 'ce-check', key: { file: undefined, secret: 'CHECKER_SSH_KEY' } })
    assert.is(readOnlyLogin(env), 'checker-ssh')
    assert.equal(secretsFor(env, [readOnlyLogin(env)]), ['CHECKER_SSH_KEY'])
  }
  const raw = parseYaml(readFileSync(join(import.meta.dirname, '..', '..', 'env/staging.yaml'), 'utf8')) as {
    ssh: Record<string, unknown>
  }
  const bad = (ssh: Record<string, unknown>) => {
    const doc = { ...raw, ssh: { ...raw.ssh, ...ssh } }
    try {
      validateEnv(doc, 'staging', 'env/staging.yaml')
      return ''
    } catch (err) {
      assert.instance(err, InputError)
      return (err as InputError).problems.join('\n')
    }
  }
  assert.match(bad({ checker: { user: 'deploy', key: { secret: 'CHECKER_SSH_KEY' } } }), 'ssh.checker.user')
  assert.match(
    bad({ checker: { user: 'ce-check', key: { secret: 'NOT_LISTED' } } }),
    'NOT_LISTED must also be listed under secrets',
  )
  assert.match(bad({ checker: { user: 'ce-check' } }), 'ssh.checker.key')
  assert.match(
    bad({ checker: { key: { secret: 'CHECKER_SSH_KEY', file: 'x' } } }),
    'set exactly one of file: <path> or secret: <NAME>',
  )
  assert.is(bad({}), '')
  const noChecker = validateEnv(
    { ...raw, ssh: { ...raw.ssh, checker: undefined } },
    'staging',
    'env/staging.yaml',
  )
  assert.is(noChecker.ssh.checker, undefined)
  assert.is(readOnlyLogin(noChecker), 'ssh')
})

test.run()

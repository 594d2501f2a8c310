import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { fingerprintOfPublicKeyLine } from '../../lib/env/fingerprint.ts'
import { tail } from '../../lib/host/session.ts'
import { labelLine, labelled, print, setSinks } from '../../lib/report/output.ts'
import { clearSecrets, redact, redactDeep, registerSecret } from '../../lib/report/redact.ts'
import { type AuditRecord, appendLocalAudit, auditLine, ciRunUrl, whoAmI } from '../../lib/run/audit.ts'
import { suite } from '../harness.ts'

const test = suite('redaction, audit, fingerprints')

test.afterEach(() => clearSecrets())

test('a secret is redacted in plain, URL-encoded and base64 forms, longest first', () => {
  registerSecret('DB_PASSWORD', 'p@ss w/rd')
  registerSecret('DB_URL', 'postgres://app:p@ss w/rd@db/app')
  assert.is(redact('url=postgres://app:p@ss w/rd@db/app'), 'url=[secret:DB_URL]')
  assert.is(redact('pw=p@ss w/rd'), 'pw=[secret:DB_PASSWORD]')
  assert.is(redact(`enc=${encodeURIComponent('p@ss w/rd')}`), 'enc=[secret:DB_PASSWORD]')
  assert.is(redact(`b64=${Buffer.from('p@ss w/rd').toString('base64')}`), 'b64=[secret:DB_PASSWORD]')
  assert.equal(redactDeep({ a: ['x p@ss w/rd'] }), { a: ['x [secret:DB_PASSWORD]'] })
})

test('the forms a review found missed: JSON-escaped, inside base64 at any offset, base64url, hex, shell-quoted, +-encoded, one line of a key', () => {
  const pw = 'S3cr"et\\pa$$ w0rd+/?'
  registerSecret('PW', pw)
  const hidden = (text: string) => assert.not.match(redact(text).replace(/\[secret:PW\]/g, ''), /S3cr|w0rd/)
  const json = JSON.stringify({ pw })
  assert.match(redact(json), '[secret:PW]')
  hidden(redact(json))
  for (const user of ['a', 'ab', 'abc']) {
    const basic = Buffer.from(`${user}:${pw}`).toString('base64')
    assert.match(redact(`Authorization: Basic ${basic}`), '[secret:PW]', `offset of ${user}:`)
  }
  assert.match(redact(Buffer.from(pw).toString('base64url')), '[secret:PW]')
  assert.match(redact(Buffer.from(pw).toString('hex')), '[secret:PW]')
  assert.match(redact(`echo '${pw.replace(/'/g, `'\\''`)}'`), '[secret:PW]')
  assert.match(redact(new URLSearchParams({ pw }).toString()), '[secret:PW]')
  registerSecret(
    'KEY',
    '-----BEGIN KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQyNTUxOQAAACDmSecretLine2\n-----END KEY-----',
  )
  assert.is(redact('line: QyNTUxOQAAACDmSecretLine2'), 'line: [secret:KEY]')
  assert.is(redact('-----BEGIN KEY-----'), '-----BEGIN KEY-----', 'a PEM header is no secret')
})

test('redactDeep keeps a record whose secret ends in a backslash (it used to break JSON.parse)', () => {
  registerSecret('TOKEN', 'abc\\')
  const out = redactDeep({ args: { token: 'x abc\\' }, list: ['abc\\'], n: 3, ok: true, none: null })
  assert.equal(out, {
    args: { token: 'x [secret:TOKEN]' },
    list: ['[secret:TOKEN]'],
    n: 3,
    ok: true,
    none: null,
  })
})

test('stderr tails are redacted and cut to the last lines', () => {
  registerSecret('TOKEN', 'tok-123456')
  const text = Array.from({ length: 30 }, (_, i) => `line ${i} tok-123456`).join('\n')
  const out = tail(text, 3)
  assert.is(out, 'line 27 [secret:TOKEN]\nline 28 [secret:TOKEN]\nline 29 [secret:TOKEN]')
})

test('audit lines never carry a secret, and are appended locally', () => {
  registerSecret('BACKUP_KEY', 'super-secret-key-material')
  const record: AuditRecord = {
    ts: '2026-01-01T00:00:00.000Z',
    who: 'ana',
    runbook: 'deploy',
    env: 'staging',
    args: { env: 'staging', note: 'key=super-secret-key-material' },
    release: 'abc',
    started_at: '2026-01-01T00:00:00.000Z',
    ended_at: '2026-01-01T00:00:01.000Z',
    duration_s: 1,
    outcome: 'failed',
    failed_step: 'Upload',
    error: 'command echo super-secret-key-material failed',
    hosts: ['qa-1'],
    dry_run: false,
    ci_run_url: null,
  }
  const line = auditLine(record)
  assert.not.match(line, 'super-secret-key-material')
  assert.match(line, '[secret:BACKUP_KEY]')
  const dir = mkdtempSync(join(tmpdir(), 'ce-audit-'))
  const file = appendLocalAudit(line, dir)
  appendLocalAudit(line, dir)
  const lines = readFileSync(file, 'utf8').trim().split('\n')
  assert.is(lines.length, 2)
  assert.is(JSON.parse(lines[0] ?? '').failed_step, 'Upload')
})

test('who ran it: the CI actor first; a CI run URL only under Actions', () => {
  assert.is(whoAmI({ GITHUB_ACTOR: 'octocat' }), 'octocat (github actions)')
  assert.ok(whoAmI({ USER: 'ana' }).length > 0)
  assert.is(ciRunUrl({}), null)
  assert.is(
    ciRunUrl({ GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'o/r', GITHUB_RUN_ID: '42' }),
    'https://github.com/o/r/actions/runs/42',
  )
})

test('fingerprints match what ssh-keygen -lf prints', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ce-key-'))
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'k')])
  const expected = execFileSync('ssh-keygen', ['-lf', join(dir, 'k.pub')], { encoding: 'utf8' }).split(' ')[1]
  assert.is(fingerprintOfPublicKeyLine(readFileSync(join(dir, 'k.pub'), 'utf8')), expected)
})

test('work printing beside a step is labelled, its indentation kept; the step itself is not; secrets still redacted', async () => {
  assert.is(labelLine('      postgres: 1 MB', 'safety backup'), '      [safety backup] postgres: 1 MB')
  assert.is(labelLine('', 'safety backup'), '')
  assert.is(labelLine('x', undefined), 'x')
  registerSecret('PW', 'hunter2-hunter2')
  const lines: string[] = []
  setSinks((t) => lines.push(t))
  try {
    const tick = () => new Promise((r) => setTimeout(r, 5))
    const background = labelled('safety backup', async () => {
      await tick()
      print('      dumping with hunter2-hunter2')
      await tick()
      print('      complete')
    })
    print('      scratch: restoring')
    await tick()
    print('      scratch: done')
    await background
  } finally {
    setSinks(
      (t) => process.stdout.write(t),
      (t) => process.stderr.write(t),
    )
  }
  assert.equal(lines.sort(), [
    '      [safety backup] complete\n',
    '      [safety backup] dumping with [secret:PW]\n',
    '      scratch: done\n',
    '      scratch: restoring\n',
  ])
})

test.run()

import * as assert from 'uvu/assert'
import { parseAuthorizedKeys, readAuthorizedKeys, rewriteAuthorizedKeys } from '../../lib/commands/access.ts'
import { judge } from '../../lib/setup/login-keys.ts'
import { suite } from '../harness.ts'

const test = suite('access: who can log in where')

// Fingerprints as ssh-keygen -lf printed them for these two keys.
const ANA = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIamk+ioMIVi94HVnzSh4ThZnFLtPdXP2p+kCLeCd7eP ana@team'
const ANA_FP = 'SHA256:1EFi/HlsOjC+/3SjdBU5QAdibKMfX7LchHyrc0w/lV8'
const GONE = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqFt3IwlprSzQLewrzNvgcYlsWxIR4/EyRwxvtom5Tv gone@team'
const GONE_FP = 'SHA256:yV6NYNJxG8l+7UL0FdMK0u14DF9adk0kBrgfqEJjHYI'

const out = [
  `deploy ${ANA}`,
  'deploy # a comment',
  'deploy ',
  `deploy ${GONE}`,
  `root ${GONE}`,
  `ce-check restrict ${ANA}`,
  'root not a key line',
].join('\n')

test('authorized_keys lines are read per account, with options, comments and ssh-keygen fingerprints', () => {
  const keys = parseAuthorizedKeys(out)
  assert.equal(
    keys.map((k) => [k.user, k.fingerprint, k.comment, k.options]),
    [
      ['deploy', ANA_FP, 'ana@team', ''],
      ['deploy', GONE_FP, 'gone@team', ''],
      ['root', GONE_FP, 'gone@team', ''],
      ['ce-check', ANA_FP, 'ana@team', 'restrict'],
    ],
  )
  assert.is(keys[3]?.line, `restrict ${ANA}`, 'the line as it was, to keep it whole')
})

test('a key the env file does not list is a stray, except the one this run logs in with', () => {
  const listed = new Map([
    ['deploy', new Set([ANA_FP])],
    ['root', new Set<string>()],
    ['ce-check', new Set([ANA_FP])],
  ])
  const verdicts = (login: string | undefined) =>
    judge('web-1', parseAuthorizedKeys(out), listed, { user: 'deploy', fingerprint: login }).map(
      (k) => `${k.user} ${k.comment} ${k.verdict}`,
    )
  assert.equal(verdicts(undefined), [
    'deploy ana@team listed',
    'deploy gone@team stray',
    'root gone@team stray',
    'ce-check ana@team listed',
  ])
  // The run logs in as deploy with gone's key: never revoked there (root's copy still is).
  assert.equal(verdicts(GONE_FP).slice(1, 3), ['deploy gone@team in use', 'root gone@team stray'])
})

test('reading and rewriting go through sudo; a rewrite keeps owner and mode and is renamed into place', () => {
  const read = readAuthorizedKeys(['deploy', 'root'])
  assert.match(read, /^sudo -n sh -c '/)
  assert.match(read, 'for u in deploy root; do')
  const write = rewriteAuthorizedKeys('deploy')
  assert.match(write, 'chown --reference="$f" "$f.new"')
  assert.match(write, 'chmod --reference="$f" "$f.new"')
  assert.ok(write.indexOf('chmod --reference') < write.indexOf('mv -f "$f.new" "$f"'))
})

test.run()

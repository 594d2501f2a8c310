import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { generateX25519Identity, identityToRecipient } from 'age-encryption'
import * as assert from 'uvu/assert'
import { loadEnv } from '../../lib/env/load.ts'
import { loadSecrets } from '../../lib/env/secrets.ts'
import { decryptSecretsText, encryptSecretsText } from '../../lib/env/secrets-age.ts'
import { InputError } from '../../lib/report/errors.ts'
import { clearSecrets, redact } from '../../lib/report/redact.ts'
import { changedNames, checkEdited, editableText, quoteValue } from '../../lib/secrets/edit.ts'
import { suite } from '../harness.ts'

const test = suite('secrets encrypted with age (env/<env>.secrets.age, make secrets-edit)')
const ROOT = resolve(import.meta.dirname, '..', '..')
// Values as a password manager makes them, and an SSH key over several lines.
const PG = `pg-s3cret with spaces $HOME #1 'q'`
const REDIS = `redis-s3cret $USER #2 "d" 'q'`
const KEY =
  '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAABG5vbmUAAAAEbm9uZQ==\n-----END OPENSSH PRIVATE KEY-----\n'

async function identity(): Promise<{ key: string; recipient: string }> {
  const key = await generateX25519Identity()
  return { key, recipient: await identityToRecipient(key) }
}

/** A copy of the committed staging file, its secrets_recipients set to `recipients` (as the team will). */
function stagingDir(recipients: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'ce-age-'))
  const text = readFileSync(join(ROOT, 'env/staging.yaml'), 'utf8')
  assert.match(text, /^secrets_recipients: \[\]$/m)
  writeFileSync(
    join(dir, 'staging.yaml'),
    text.replace(/^secrets_recipients: \[\]$/m, `secrets_recipients: [${recipients.join(', ')}]`),
  )
  return dir
}

async function problem(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn()
  } catch (err) {
    assert.instance(err, InputError)
    return `${(err as InputError).message}\nnext: ${(err as InputError).next ?? ''}`
  }
  throw new Error('expected an InputError')
}

function runbook(args: string[], env: Record<string, string>, input?: string) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'runbooks/run.ts', 'secrets-edit', ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      VISUAL: '',
      EDITOR: '',
      AUDIT_DIR: mkdtempSync(join(tmpdir(), 'ce-audit-')),
      ...env,
    },
    input: input ?? '',
    encoding: 'utf8',
  })
  return { code: r.status, out: `${r.stdout}${r.stderr}`, audit: env.AUDIT_DIR }
}

test('encrypted to several recipients, each reads it; anyone else is told to ask for their key to be added', async () => {
  const [a, b, c] = [await identity(), await identity(), await identity()]
  const armored = await encryptSecretsText(`POSTGRES_PASSWORD=${quoteValue(PG)}\n`, [
    a.recipient,
    b.recipient,
  ])
  assert.match(armored, /^-----BEGIN AGE ENCRYPTED FILE-----\n/)
  assert.not.match(armored, 'pg-s3cret')
  for (const who of [a, b]) {
    const text = await decryptSecretsText(
      Buffer.from(armored),
      'x.age',
      { keys: [who.key], from: 'test' },
      'qa',
    )
    assert.is(text, `POSTGRES_PASSWORD=\`${PG}\`\n`)
  }
  const msg = await problem(() =>
    decryptSecretsText(Buffer.from(armored), 'x.age', { keys: [c.key], from: 'AGE_IDENTITY' }, 'qa'),
  )
  assert.match(msg, 'x.age: your age identity (AGE_IDENTITY) is not one of its recipients')
  assert.match(msg, `your public key: ${c.recipient}`)
  assert.match(msg, 'make secrets-edit ENV=qa')
  const none = await problem(() => decryptSecretsText(Buffer.from(armored), 'x.age', undefined, 'qa'))
  assert.match(none, 'no age identity is available')
  const damaged = armored.replace(/\n([A-Za-z0-9+/]{10})/, '\nAAAAAAAAAA')
  assert.match(
    await problem(() =>
      decryptSecretsText(Buffer.from(damaged), 'x.age', { keys: [a.key], from: 't' }, 'qa'),
    ),
    /x.age (could not be decrypted|is not an age file)/,
  )
})

test('the age tool (age -d) reads what we write, and we read what it writes', async () => {
  const me = await identity()
  const dir = mkdtempSync(join(tmpdir(), 'ce-age-cli-'))
  writeFileSync(join(dir, 'key'), `${me.key}\n`)
  writeFileSync(join(dir, 'ours.age'), await encryptSecretsText('A=1\n', [me.recipient]))
  assert.is(
    execFileSync('age', ['-d', '-i', join(dir, 'key'), join(dir, 'ours.age')], { encoding: 'utf8' }),
    'A=1\n',
  )
  const theirs = execFileSync('age', ['-e', '-a', '-r', me.recipient], { input: 'B=2\n' })
  const text = await decryptSecretsText(theirs, 'theirs.age', { keys: [me.key], from: 't' }, 'qa')
  assert.is(text, 'B=2\n')
})

test('a run decrypts the committed env file in memory: the environment first, every value redacted', async () => {
  clearSecrets()
  const me = await identity()
  const dir = stagingDir([me.recipient])
  const env = loadEnv('staging', dir)
  assert.equal(env.secretsRecipients, [me.recipient])
  writeFileSync(
    join(dir, 'staging.secrets.age'),
    await encryptSecretsText(`POSTGRES_PASSWORD=${quoteValue(PG)}\nREDIS_PASSWORD=${quoteValue(REDIS)}\n`, [
      me.recipient,
    ]),
  )
  const wanted = { runbook: 'psql', names: ['POSTGRES_PASSWORD', 'REDIS_PASSWORD'] }
  const secrets = await loadSecrets(env, { AGE_IDENTITY: me.key, REDIS_PASSWORD: 'from-ci' }, wanted)
  assert.is(secrets.POSTGRES_PASSWORD, PG)
  assert.is(secrets.REDIS_PASSWORD, 'from-ci')
  // The file's value that the environment overrode is redacted too, and so is the identity.
  assert.is(
    redact(`${PG} ${REDIS} ${me.key}`),
    '[secret:POSTGRES_PASSWORD] [secret:REDIS_PASSWORD] [secret:AGE_IDENTITY]',
  )
  // Everything from the environment (CI): the file is not even read (a damaged one does not matter).
  writeFileSync(join(dir, 'staging.secrets.age'), 'damaged')
  const fromCi = await loadSecrets(env, { POSTGRES_PASSWORD: 'a', REDIS_PASSWORD: 'b' }, wanted)
  assert.is(fromCi.POSTGRES_PASSWORD, 'a')
  assert.match(
    await problem(() => loadSecrets(env, { AGE_IDENTITY: me.key }, wanted)),
    /staging.secrets.age (is not an age file|could not be decrypted)/,
  )
  clearSecrets()
})

test('an env with secrets_recipients refuses a plaintext secrets file; one without (the sandbox) reads it', async () => {
  const dir = stagingDir([])
  writeFileSync(join(dir, 'staging.secrets.env'), 'POSTGRES_PASSWORD=plain\n')
  const msg = await problem(() =>
    loadSecrets(loadEnv('staging', dir), {}, { runbook: 'psql', names: ['POSTGRES_PASSWORD'] }),
  )
  assert.match(msg, `${join(dir, 'staging.secrets.env')} holds secrets in plaintext`)
  assert.match(msg, 'make secrets-edit ENV=staging IMPORT=1')
  // Missing secrets of such an env point at the encrypted file and make secrets-edit.
  const missing = await problem(() =>
    loadSecrets(loadEnv('staging', stagingDir([])), {}, { runbook: 'psql', names: ['POSTGRES_PASSWORD'] }),
  )
  assert.match(
    missing,
    `POSTGRES_PASSWORD: set it in the environment (CI) or in ${'staging.secrets.age'}`.slice(0, 40),
  )
  assert.match(missing, 'make secrets-edit ENV=staging adds them')
  // The same file without secrets_recipients: the sandbox's way, plaintext.
  const local = stagingDir([])
  const yaml = join(local, 'staging.yaml')
  writeFileSync(yaml, readFileSync(yaml, 'utf8').replace(/^secrets_recipients: \[\]$/m, ''))
  writeFileSync(join(local, 'staging.secrets.env'), 'POSTGRES_PASSWORD=plain\n')
  const env = loadEnv('staging', local)
  assert.is(env.secretsRecipients, undefined)
  const s = await loadSecrets(env, {}, { runbook: 'psql', names: ['POSTGRES_PASSWORD'] })
  assert.is(s.POSTGRES_PASSWORD, 'plain')
})

test('secrets_recipients: each must be an age public key, named in the error', () => {
  const dir = stagingDir(['ssh-ed25519-not-age'])
  try {
    loadEnv('staging', dir)
    assert.unreachable('a bad recipient must not load')
  } catch (err) {
    assert.instance(err, InputError)
    assert.match((err as Error).message, 'secrets_recipients[0]')
    assert.match((err as Error).message, 'an age public key')
  }
})

test('the edited text: values round-trip whatever they hold; undeclared names refused; changes named, never valued', () => {
  const env = {
    name: 'qa',
    file: 'env/qa.yaml',
    secrets: ['POSTGRES_PASSWORD', 'REDIS_PASSWORD', 'SSH_PRIVATE_KEY', 'GHCR_TOKEN'],
  }
  const values = { POSTGRES_PASSWORD: PG, REDIS_PASSWORD: REDIS, SSH_PRIVATE_KEY: KEY }
  const text = editableText(env, values)
  assert.match(text, /^GHCR_TOKEN=$/m)
  const back = checkEdited(env, text)
  assert.equal(back.values, values)
  assert.equal(back.unset, ['GHCR_TOKEN'])
  assert.equal(back.problems, [])
  const bad = checkEdited(env, `${text}TYPO_TOKEN=x\n`)
  assert.match(bad.problems.join('\n'), 'TYPO_TOKEN is not a secret env/qa.yaml declares')
  assert.equal(changedNames(values, { ...values, REDIS_PASSWORD: 'new', GHCR_TOKEN: 't' }), {
    added: ['GHCR_TOKEN'],
    changed: ['REDIS_PASSWORD'],
    removed: [],
  })
  assert.throws(() => quoteValue(`a'b"c\`d`), /cannot quote it/)
})

test('make secrets-edit on the committed staging file: IMPORT=1, SET= from stdin, an editor; audited by name', async () => {
  const me = await identity()
  const empty = stagingDir([])
  const refused = runbook(['ENV=staging', 'IMPORT=1'], { CE_ENV_DIR: empty, AGE_IDENTITY: me.key })
  assert.is(refused.code, 2)
  assert.match(refused.out, 'secrets_recipients is empty: no one could read')

  const dir = stagingDir([me.recipient])
  const file = join(dir, 'staging.secrets.age')
  const envs = { CE_ENV_DIR: dir, AGE_IDENTITY: me.key, AUDIT_DIR: mkdtempSync(join(tmpdir(), 'ce-audit-')) }
  writeFileSync(join(dir, 'staging.secrets.env'), `POSTGRES_PASSWORD=${quoteValue(PG)}\n`)
  const imported = runbook(['ENV=staging', 'IMPORT=1'], envs)
  assert.is(imported.code, 0, imported.out)
  assert.ok(!existsSync(join(dir, 'staging.secrets.env')), 'the plaintext file is deleted')
  assert.match(imported.out, 'added POSTGRES_PASSWORD')

  const set = runbook(['ENV=staging', 'SET=REDIS_PASSWORD'], envs, `${REDIS}\n`)
  assert.is(set.code, 0, set.out)
  const unknown = runbook(['ENV=staging', 'SET=NOT_DECLARED'], envs, 'x')
  assert.is(unknown.code, 2)
  assert.match(unknown.out, 'SET=NOT_DECLARED: ')

  // An editor (a script here) changes one value: only that one changes.
  const editor = join(dir, 'editor.sh')
  writeFileSync(editor, `#!/bin/sh\nsed -i 's/^GHCR_TOKEN=.*/GHCR_TOKEN=ghp_new/' "$1"\n`)
  chmodSync(editor, 0o755)
  const before = readFileSync(file, 'utf8')
  const edited = runbook(['ENV=staging'], { ...envs, EDITOR: editor })
  assert.is(edited.code, 0, edited.out)
  assert.match(edited.out, 'added GHCR_TOKEN')
  assert.is.not(readFileSync(file, 'utf8'), before)
  const text = await decryptSecretsText(readFileSync(file), file, { keys: [me.key], from: 't' }, 'staging')
  assert.equal(checkEdited(loadEnv('staging', dir), text).values, {
    POSTGRES_PASSWORD: PG,
    REDIS_PASSWORD: REDIS,
    GHCR_TOKEN: 'ghp_new',
  })

  // An editor that adds an undeclared name, or exits non-zero: nothing is written.
  writeFileSync(editor, `#!/bin/sh\necho TYPO=1 >> "$1"\n`)
  const after = readFileSync(file, 'utf8')
  const typo = runbook(['ENV=staging'], { ...envs, EDITOR: editor })
  assert.is(typo.code, 2)
  assert.match(typo.out, 'TYPO is not a secret')
  writeFileSync(editor, `#!/bin/sh\nsed -i 's/^GHCR_TOKEN=.*/GHCR_TOKEN=other/' "$1"; exit 1\n`)
  assert.is(runbook(['ENV=staging'], { ...envs, EDITOR: editor }).code, 2)
  assert.is(readFileSync(file, 'utf8'), after)

  // Nothing changed: the file is left as it was (no noise in git), unless REKEY=1.
  writeFileSync(editor, '#!/bin/sh\ntrue\n')
  assert.is(runbook(['ENV=staging'], { ...envs, EDITOR: editor }).code, 0)
  assert.is(readFileSync(file, 'utf8'), after)
  assert.is(runbook(['ENV=staging', 'REKEY=1'], envs).code, 0)
  assert.is.not(readFileSync(file, 'utf8'), after)

  const audit = readFileSync(join(envs.AUDIT_DIR, 'audit.jsonl'), 'utf8')
  assert.match(audit, 'secrets: added GHCR_TOKEN; encrypted to 1 recipient(s)')
  for (const secret of [PG, REDIS, 'ghp_new', me.key]) {
    assert.not.ok(audit.includes(secret), 'no secret in the audit record')
    for (const r of [imported, set, edited, typo])
      assert.not.ok(r.out.includes(secret), 'no secret in the output')
  }
})

test.run()

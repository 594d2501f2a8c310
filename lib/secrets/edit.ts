import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse as parseDotenv } from 'dotenv'
import type { Env } from '../env/load.ts'
import { secretsFile } from '../env/secrets.ts'
import { ageFile, encryptSecretsText, readAgeSecrets, readIdentities } from '../env/secrets-age.ts'
import { InputError } from '../report/errors.ts'
import { registerSecret } from '../report/redact.ts'

// make secrets-edit's pieces: the plaintext a person edits (in memory, or in a private temporary file
// for the editor), its checks against the env file, and what changed, by name only.

export type SecretValues = Record<string, string>

/** The text a person edits: each declared secret, set or not, with a header saying what it is. */
export function editableText(env: Pick<Env, 'name' | 'file' | 'secrets'>, values: SecretValues): string {
  const head = [
    `# The secrets of env ${env.name} (${env.file} lists them). NAME=value, one per line.`,
    '# Saved encrypted to every secrets_recipients key when you close the editor; an empty value is',
    '# left unset (CI may set it). Quote a value with spaces or # in it: NAME="a value".',
  ]
  const names = [...new Set([...env.secrets, ...Object.keys(values)])]
  return `${[...head, ...names.map((n) => `${n}=${quoteValue(values[n] ?? '')}`)].join('\n')}\n`
}

/** A dotenv value as written back: bare when safe, else quoted (dotenv reads both back exactly). */
export function quoteValue(v: string): string {
  if (/^[A-Za-z0-9_./:@+=,-]*$/.test(v)) return v
  // Single quotes and backticks keep everything as written, line breaks too; double quotes expand \n.
  if (!v.includes("'")) return `'${v}'`
  if (!v.includes('`')) return `\`${v}\``
  if (!v.includes('"') && !v.includes('\\')) return `"${v}"`
  throw new InputError(
    'a secret value holds a single quote, a backtick and a double quote or backslash: the secrets file cannot quote it',
    [],
    'Choose a value without one of them.',
  )
}

/** The edited text, parsed and checked: only declared names; empty values dropped (unset). */
export function checkEdited(
  env: Pick<Env, 'file' | 'secrets'>,
  text: string,
): { values: SecretValues; problems: string[]; unset: string[] } {
  const parsed = parseDotenv(text)
  for (const [name, v] of Object.entries(parsed)) registerSecret(name, v)
  const problems: string[] = []
  const values: SecretValues = {}
  for (const [name, v] of Object.entries(parsed)) {
    if (!env.secrets.includes(name))
      problems.push(
        `${name} is not a secret ${env.file} declares (add it under secrets: first, or remove it)`,
      )
    else if (v !== '') values[name] = v
  }
  const unset = env.secrets.filter((n) => !(n in values))
  return { values, problems: [...new Set(problems)], unset }
}

/** Which names were added, changed or removed: what the output and the audit record say (never a value). */
export function changedNames(
  before: SecretValues,
  after: SecretValues,
): { added: string[]; changed: string[]; removed: string[] } {
  const added = Object.keys(after).filter((n) => !(n in before))
  const changed = Object.keys(after).filter((n) => n in before && before[n] !== after[n])
  const removed = Object.keys(before).filter((n) => !(n in after))
  return { added, changed, removed }
}

export function describeChanges(c: ReturnType<typeof changedNames>): string {
  const parts = [
    c.added.length ? `added ${c.added.join(', ')}` : '',
    c.changed.length ? `changed ${c.changed.join(', ')}` : '',
    c.removed.length ? `removed ${c.removed.join(', ')}` : '',
  ].filter(Boolean)
  return parts.join('; ') || 'no secret changed'
}

/** The dotenv text written encrypted: the declared names in the env file's order, then any others. */
export function secretsText(env: Pick<Env, 'secrets'>, values: SecretValues): string {
  const names = [
    ...env.secrets.filter((n) => n in values),
    ...Object.keys(values).filter((n) => !env.secrets.includes(n)),
  ]
  return `${names.map((n) => `${n}=${quoteValue(values[n] ?? '')}`).join('\n')}\n`
}

/**
 * A private place for the editor's plaintext: a 0700 directory in /dev/shm (memory, never on disk)
 * when there is one, else the system's temporary directory. `remove` overwrites the file, then deletes it.
 */
export function privateFile(name: string): { path: string; remove: () => void } {
  const base = existsSync('/dev/shm') && statSync('/dev/shm').isDirectory() ? '/dev/shm' : tmpdir()
  const dir = mkdtempSync(join(base, 'ce-secrets-'))
  const path = join(dir, name)
  return {
    path,
    remove: () => {
      shred(path)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Overwrites a plaintext file with zeros, then deletes it (absent: nothing to do). */
export function shred(path: string): void {
  if (!existsSync(path)) return
  writeFileSync(path, Buffer.alloc(statSync(path).size))
  rmSync(path)
}

/** Opens $VISUAL / $EDITOR (vi) on the file, on this terminal; its exit status. */
export function runEditor(path: string, source: NodeJS.ProcessEnv = process.env): number {
  const editor = source.VISUAL || source.EDITOR || 'vi'
  // Through sh: EDITOR="code --wait" is a command with arguments.
  const r = spawnSync('sh', ['-c', `${editor} "$1"`, 'sh', path], { stdio: 'inherit' })
  return r.status ?? 1
}

/** Writes a file whole or not at all: a temporary file beside it, then a rename. */
export function writeAtomically(path: string, content: string, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}`
  writeFileSync(tmp, content, { mode })
  renameSync(tmp, path)
}

export function readIfExists(path: string): Buffer | undefined {
  return existsSync(path) ? readFileSync(path) : undefined
}

export function noRecipients(env: Pick<Env, 'file' | 'name'>): InputError {
  return new InputError(
    `${env.file}: secrets_recipients is empty: no one could read ${ageFile(env)}`,
    [],
    "Add your age public key (age-keygen -y ~/.config/conciliaextrato/age.key) and CI's, then run this again. Nothing was changed.",
  )
}

/** Encrypts the values to secrets_recipients and replaces env/<name>.secrets.age whole; its path. */
export async function writeAgeSecrets(env: Env, values: SecretValues): Promise<string> {
  const to = env.secretsRecipients ?? []
  if (to.length === 0) throw noRecipients(env)
  const file = ageFile(env)
  writeAtomically(file, await encryptSecretsText(secretsText(env, values), to))
  return file
}

/** Where one secret of the env is kept on this machine: what make rotate-secret writes the new value to. */
export type SecretHome =
  | { kind: 'environment' }
  | { kind: 'age'; file: string }
  | { kind: 'plain'; file: string }

export function secretHome(env: Env, name: string, source: NodeJS.ProcessEnv = process.env): SecretHome {
  if (source[name]) return { kind: 'environment' }
  if (env.secretsRecipients || existsSync(ageFile(env))) return { kind: 'age', file: ageFile(env) }
  return { kind: 'plain', file: secretsFile(env) }
}

/**
 * Writes one secret's new value where it is kept: the age file (decrypted with the operator's
 * identity, encrypted again to secrets_recipients, replaced whole) or, in the sandbox, its line of the
 * plaintext file (the other lines kept as they are). Never the environment: the caller refuses that.
 */
export async function saveSecret(
  env: Env,
  name: string,
  value: string,
  source = process.env,
): Promise<string> {
  const home = secretHome(env, name, source)
  if (home.kind === 'environment') throw new Error(`internal: ${name} comes from the environment`)
  if (home.kind === 'age') {
    const values = (await readAgeSecrets(env, readIdentities(source))) ?? {}
    return writeAgeSecrets(env, { ...values, [name]: value })
  }
  const text = readIfExists(home.file)?.toString('utf8') ?? ''
  const line = `${name}=${quoteValue(value)}`
  const pattern = new RegExp(`^\\s*(export\\s+)?${name}\\s*=.*$`, 'm')
  writeAtomically(
    home.file,
    pattern.test(text)
      ? text.replace(pattern, line)
      : `${text}${text && !text.endsWith('\n') ? '\n' : ''}${line}\n`,
    0o600,
  )
  return home.file
}

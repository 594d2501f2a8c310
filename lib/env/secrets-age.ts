import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { armor, Decrypter, Encrypter, identityToRecipient } from 'age-encryption'
import { parse as parseDotenv } from 'dotenv'
import { InputError } from '../report/errors.ts'
import { registerSecret } from '../report/redact.ts'

/**
 * The env's secrets, encrypted in the repository with age (age-encryption.org/v1, ASCII-armored):
 * env/<name>.secrets.age, readable by the age identities of the people and CI runs that
 * `secrets_recipients` in the env file lists. Decrypted in memory only, with the identity in
 * AGE_IDENTITY (CI: a secret of the GitHub environment), the file AGE_IDENTITY_FILE names, or
 * ~/.config/conciliaextrato/age.key (a person's, made by `age-keygen` or `make secrets-edit`).
 */

/** An age X25519 recipient (`age-keygen -y`) or a post-quantum hybrid one (`age1pq1...`). */
export const AGE_RECIPIENT = /^age1(pq1)?[02-9ac-hj-np-z]{58,}$/

export const IDENTITY_VAR = 'AGE_IDENTITY'
export const IDENTITY_FILE_VAR = 'AGE_IDENTITY_FILE'

export function ageFile(env: { file: string; name: string }): string {
  return join(dirname(env.file), `${env.name}.secrets.age`)
}

export function defaultIdentityFile(home = homedir()): string {
  return join(home, '.config', 'conciliaextrato', 'age.key')
}

export interface Identities {
  keys: string[]
  /** Where they came from, for messages: `AGE_IDENTITY`, or a file's path. */
  from: string
}

/**
 * The operator's age identities: AGE_IDENTITY, else AGE_IDENTITY_FILE, else the default file. The
 * keys are registered for redaction before anything can print them. Undefined when there is none.
 */
export function readIdentities(source: NodeJS.ProcessEnv = process.env): Identities | undefined {
  const inline = source[IDENTITY_VAR]
  if (inline) return { keys: identityLines(inline, IDENTITY_VAR), from: IDENTITY_VAR }
  const named = source[IDENTITY_FILE_VAR]
  const file = named || defaultIdentityFile(source.HOME || homedir())
  if (!existsSync(file)) {
    if (named)
      throw new InputError(
        `${IDENTITY_FILE_VAR}=${named}: no such file`,
        [],
        'Point it at your age identity file (age-keygen -o <file>), or unset it.',
      )
    return undefined
  }
  return { keys: identityLines(readFileSync(file, 'utf8'), file), from: file }
}

function identityLines(text: string, from: string): string[] {
  const keys = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
  for (const k of keys) registerSecret(IDENTITY_VAR, k)
  const bad = keys.filter((k) => !/^AGE-SECRET-KEY-(PQ-)?1[0-9A-Z]+$/.test(k))
  if (keys.length === 0 || bad.length)
    throw new InputError(
      `${from} holds no usable age identity`,
      bad.length ? [`${bad.length} line(s) are not AGE-SECRET-KEY-1... keys`] : ['it is empty'],
      'Put your age identity in it (one AGE-SECRET-KEY-1... line; `age-keygen` makes one), comments with #.',
    )
  return keys
}

/** The public recipients of identities (what a person adds to secrets_recipients). */
export async function recipientsOf(ids: Identities): Promise<string[]> {
  return Promise.all(ids.keys.map((k) => identityToRecipient(k)))
}

/** Decrypts an armored (or binary) age file's text. Errors name the file and what to do. */
export async function decryptSecretsText(
  bytes: Uint8Array,
  file: string,
  ids: Identities | undefined,
  envName: string,
): Promise<string> {
  if (!ids)
    throw new InputError(
      `${file} is encrypted and no age identity is available to read it`,
      [
        `${IDENTITY_VAR} is not set (CI: the GitHub environment's secret)`,
        `${IDENTITY_FILE_VAR} is not set and ${defaultIdentityFile()} does not exist`,
      ],
      `Put your age identity in ${defaultIdentityFile()} (age-keygen -o it), ask someone who can read ${file} to add your public key to secrets_recipients and run make secrets-edit ENV=${envName}. Or set the secrets in the environment.`,
    )
  const decrypter = new Decrypter()
  for (const k of ids.keys) decrypter.addIdentity(k)
  const text = new TextDecoder().decode(bytes)
  let data: Uint8Array
  try {
    data = text.startsWith('-----BEGIN AGE ENCRYPTED FILE-----') ? armor.decode(text) : bytes
  } catch (e) {
    throw new InputError(
      `${file} is not an age file: ${(e as Error).message}`,
      [],
      'Restore it from git (git checkout -- <file>); it is written only by make secrets-edit.',
    )
  }
  try {
    return await decrypter.decrypt(data, 'text')
  } catch (e) {
    const msg = (e as Error).message
    const mine = await recipientsOf(ids).catch(() => [])
    if (/no identity matched/.test(msg))
      throw new InputError(
        `${file}: your age identity (${ids.from}) is not one of its recipients`,
        mine.map((r) => `your public key: ${r}`),
        `Ask someone who can read it to add your public key to secrets_recipients in env/${envName}.yaml and run make secrets-edit ENV=${envName}.`,
      )
    throw new InputError(
      `${file} could not be decrypted: ${msg}`,
      [],
      'It is damaged or was changed by hand: restore it from git (git log -- <file>), then run make secrets-edit.',
    )
  }
}

/** env/<name>.secrets.age decrypted and parsed (NAME=value), or undefined when there is none. */
export async function readAgeSecrets(
  env: { file: string; name: string },
  ids: Identities | undefined,
): Promise<Record<string, string> | undefined> {
  const file = ageFile(env)
  if (!existsSync(file)) return undefined
  return parseDotenv(await decryptSecretsText(readFileSync(file), file, ids, env.name))
}

/** Encrypts to every recipient, ASCII-armored (a readable diff in git: the whole file changes). */
export async function encryptSecretsText(text: string, recipients: readonly string[]): Promise<string> {
  if (recipients.length === 0) throw new Error('internal: encrypting to no recipient')
  const e = new Encrypter()
  for (const r of recipients) e.addRecipient(r)
  return armor.encode(await e.encrypt(text))
}

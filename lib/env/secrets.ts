import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parse as parseDotenv } from 'dotenv'
import ssh2 from 'ssh2'
import { InputError } from '../report/errors.ts'
import { registerSecret } from '../report/redact.ts'
import type { Env, SshKeySource } from './load.ts'
import { ageFile, readAgeSecrets, readIdentities } from './secrets-age.ts'

export type Secrets = Readonly<Record<string, string>>

/** Which secrets a run loads: a runbook's, from its needs (lib/env/needs.ts); absent: every one the env lists. */
export interface SecretsWanted {
  runbook: string
  names: string[]
}

/**
 * Reads the secrets a run needs, from the process environment (CI) first, then from the env's
 * secrets file: env/<name>.secrets.age (age-encrypted, in the repository; decrypted in memory, and
 * only when a needed secret is not in the environment) or, for an env without secrets_recipients
 * (the sandbox), the git-ignored plaintext env/<name>.secrets.env. An env that lists recipients
 * refuses a plaintext file. Missing ones are all listed by name. Every value of a secret the env
 * declares is registered for redaction before anything else can print it, needed or not. Reading a
 * declared secret the runbook did not ask for throws: a runbook that forgot a need fails loudly in
 * the tests instead of writing an empty password.
 */
export async function loadSecrets(
  env: Env,
  source: NodeJS.ProcessEnv = process.env,
  wanted?: SecretsWanted,
): Promise<Secrets> {
  const names = wanted?.names ?? env.secrets
  for (const name of env.secrets) registerSecret(name, source[name] ?? '')
  const fromFile = names.every((n) => source[n]) ? {} : await readSecretsFile(env, source)
  // Both, when the environment overrides the file: the file's value must never leak either.
  for (const name of env.secrets) registerSecret(name, fromFile[name] ?? '')
  const values: Record<string, string> = {}
  const missing: string[] = []
  for (const name of names) {
    const value = source[name] || fromFile[name]
    if (!value) missing.push(name)
    else values[name] = value
  }
  const who = wanted ? `${wanted.runbook} needs for env ${env.name}` : `${env.file} declares`
  if (missing.length) {
    const where = env.secretsRecipients ? ageFile(env) : secretsFile(env)
    const how = env.secretsRecipients
      ? `make secrets-edit ENV=${env.name} adds them to ${where}`
      : `see env/secrets.example.env`
    throw new InputError(
      `${missing.length} secret(s) that ${who} are not set:`,
      missing.map((n) => `${n}: set it in the environment (CI) or in ${where}`),
      `Add them (${how}), then run again. Nothing was changed.`,
    )
  }
  Object.freeze(values)
  if (!wanted) return values
  return new Proxy(values, {
    get(target, name) {
      if (typeof name === 'string' && !(name in target) && env.secrets.includes(name))
        throw new Error(
          `internal: ${wanted.runbook} read the secret ${name}, which it does not declare it needs (add the need to its spec)`,
        )
      return Reflect.get(target, name)
    },
  })
}

/**
 * The env's secrets file, parsed: the age file if there is one, else the plaintext file, which only
 * an env without secrets_recipients may use. Neither: none.
 */
export async function readSecretsFile(
  env: Env,
  source: NodeJS.ProcessEnv = process.env,
): Promise<Record<string, string>> {
  const encrypted = ageFile(env)
  const plain = secretsFile(env)
  if (env.secretsRecipients && existsSync(plain))
    throw new InputError(
      `${plain} holds secrets in plaintext, and ${env.file} keeps them encrypted (secrets_recipients)`,
      [],
      `Encrypt it: make secrets-edit ENV=${env.name} IMPORT=1 moves it into ${encrypted} and deletes it. Nothing was changed.`,
    )
  const fromAge = await readAgeSecrets(env, readIdentities(source))
  if (fromAge) return fromAge
  return existsSync(plain) ? parseDotenv(readFileSync(plain)) : {}
}

export function secretsFile(env: Env): string {
  return join(dirname(env.file), `${env.name}.secrets.env`)
}

/** The SSH private key the env's ssh.key points at, as a string (node-ssh wants a string). */
export function readPrivateKey(env: Env, secrets: Secrets): string | undefined {
  return readKeyFrom(env, secrets, env.ssh.key, 'ssh.key')
}

/** The checker account's private key (ssh.checker.key); undefined when the env has no checker. */
export function readCheckerKey(env: Env, secrets: Secrets): string | undefined {
  const checker = env.ssh.checker
  return checker ? readKeyFrom(env, secrets, checker.key, 'ssh.checker.key') : undefined
}

/** The administrator's private key (ssh.admin.key); undefined when the env has no ssh.admin. */
export function readAdminKey(env: Env, secrets: Secrets): string | undefined {
  const admin = env.ssh.admin
  return admin ? readKeyFrom(env, secrets, admin.key, 'ssh.admin.key') : undefined
}

/** The checker key of the env this one promotes from (promote_from.checker_key). */
export function readPromoteKey(env: Env, secrets: Secrets): string | undefined {
  const p = env.promoteFrom
  return p ? readKeyFrom(env, secrets, p.checkerKey, 'promote_from.checker_key') : undefined
}

export function readOutsideViewKey(env: Env, secrets: Secrets): string | undefined {
  const p = env.outsideView
  return p ? readKeyFrom(env, secrets, p.checkerKey, 'outside_view.checker_key') : undefined
}

function readKeyFrom(env: Env, secrets: Secrets, source: SshKeySource, field: string): string | undefined {
  const { file, secret } = source
  if (secret) {
    const key = secrets[secret]
    return key === undefined ? undefined : checkPrivateKey(key, `secret ${secret}`, env, field)
  }
  if (!file) return undefined
  const path = file.startsWith('~/') ? join(homedir(), file.slice(2)) : resolve(dirname(env.file), '..', file)
  if (!existsSync(path)) {
    throw new InputError(
      `${env.file}: ${field}.file: ${path} does not exist`,
      [],
      `Point ${field}.file at your private key.`,
    )
  }
  return checkPrivateKey(readFileSync(path, 'utf8'), `${field}.file ${path}`, env, field)
}

/**
 * A key ssh cannot use is bad input, said before any connection (else it surfaces as "cannot reach
 * the host"). The parser's reason never quotes the key; it is redacted all the same.
 */
function checkPrivateKey(key: string, source: string, env: Env, field: string): string {
  const parsed = ssh2.utils.parseKey(key)
  if (parsed instanceof Error)
    throw new InputError(
      `${source} (${field} of ${env.file}) is not a private key ssh can use: ${parsed.message}`,
      [],
      'Put the whole private key in it, from -----BEGIN to -----END with its line breaks (an OpenSSH or PEM key, without a passphrase; a key with one goes through ssh-agent: ssh.key.agent: true).',
    )
  return key
}

import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parse as parseDotenv } from 'dotenv'
import ssh2 from 'ssh2'
import { InputError } from '../report/errors.ts'
import { registerSecret } from '../report/redact.ts'
import type { Env, SshKeySource } from './load.ts'

export type Secrets = Readonly<Record<string, string>>

/** Which secrets a run loads: a runbook's, from its needs (lib/env/needs.ts); absent: every one the env lists. */
export interface SecretsWanted {
  runbook: string
  names: string[]
}

/**
 * Reads the secrets a run needs, from the process environment (CI) first, then from the
 * git-ignored env/<name>.secrets.env. Missing ones are all listed by name. Every value of a secret
 * the env declares is registered for redaction before anything else can print it, needed or not.
 * Reading a declared secret the runbook did not ask for throws: a runbook that forgot a need fails
 * loudly in the tests instead of writing an empty password.
 */
export function loadSecrets(
  env: Env,
  source: NodeJS.ProcessEnv = process.env,
  wanted?: SecretsWanted,
): Secrets {
  const file = secretsFile(env)
  const fromFile = existsSync(file) ? parseDotenv(readFileSync(file)) : {}
  for (const name of env.secrets) {
    // Both, when the environment overrides the file: the file's value must never leak either.
    registerSecret(name, fromFile[name] ?? '')
    registerSecret(name, source[name] ?? '')
  }
  const names = wanted?.names ?? env.secrets
  const values: Record<string, string> = {}
  const missing: string[] = []
  for (const name of names) {
    const value = source[name] || fromFile[name]
    if (!value) missing.push(name)
    else values[name] = value
  }
  const who = wanted ? `${wanted.runbook} needs for env ${env.name}` : `${env.file} declares`
  if (missing.length) {
    throw new InputError(
      `${missing.length} secret(s) that ${who} are not set:`,
      missing.map((n) => `${n}: set it in the environment (CI) or in ${file}`),
      `Add them (see env/secrets.example.env), then run again. Nothing was changed.`,
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

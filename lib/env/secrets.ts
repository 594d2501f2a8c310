import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parse as parseDotenv } from 'dotenv'
import ssh2 from 'ssh2'
import { InputError } from '../report/errors.ts'
import { registerSecret } from '../report/redact.ts'
import type { Env } from './load.ts'

export type Secrets = Readonly<Record<string, string>>

/**
 * Reads every secret the env declares, from the process environment (CI) first, then from the
 * git-ignored env/<name>.secrets.env. Missing ones are all listed by name. Each value is registered
 * for redaction before anything else can print it.
 */
export function loadSecrets(env: Env, source: NodeJS.ProcessEnv = process.env): Secrets {
  const file = secretsFile(env)
  const fromFile = existsSync(file) ? parseDotenv(readFileSync(file)) : {}
  for (const [name, value] of Object.entries(fromFile))
    if (env.secrets.includes(name)) registerSecret(name, value)
  const values: Record<string, string> = {}
  const missing: string[] = []
  for (const name of env.secrets) {
    const value = source[name] ?? fromFile[name]
    if (value === undefined || value === '') missing.push(name)
    else {
      registerSecret(name, value)
      values[name] = value
    }
  }
  if (missing.length) {
    throw new InputError(
      `${missing.length} secret(s) that ${env.file} declares are not set:`,
      missing.map((n) => `${n}: set it in the environment (CI) or in ${file}`),
      `Add them (see env/secrets.example.env), then run again. Nothing was changed.`,
    )
  }
  return Object.freeze(values)
}

export function secretsFile(env: Env): string {
  return join(dirname(env.file), `${env.name}.secrets.env`)
}

/** The SSH private key the env's ssh.key points at, as a string (node-ssh wants a string). */
export function readPrivateKey(env: Env, secrets: Secrets): string | undefined {
  const { file, secret } = env.ssh.key
  if (secret) {
    const key = secrets[secret]
    return key === undefined ? undefined : checkPrivateKey(key, `secret ${secret}`, env)
  }
  if (!file) return undefined
  const path = file.startsWith('~/') ? join(homedir(), file.slice(2)) : resolve(dirname(env.file), '..', file)
  if (!existsSync(path)) {
    throw new InputError(
      `${env.file}: ssh.key.file: ${path} does not exist`,
      [],
      'Point ssh.key.file at your private key.',
    )
  }
  return checkPrivateKey(readFileSync(path, 'utf8'), `ssh.key.file ${path}`, env)
}

/**
 * A key ssh cannot use is bad input, said before any connection (else it surfaces as "cannot reach
 * the host"). The parser's reason never quotes the key; it is redacted all the same.
 */
function checkPrivateKey(key: string, source: string, env: Env): string {
  const parsed = ssh2.utils.parseKey(key)
  if (parsed instanceof Error)
    throw new InputError(
      `${source} (ssh.key of ${env.file}) is not a private key ssh can use: ${parsed.message}`,
      [],
      'Put the whole private key in it, from -----BEGIN to -----END with its line breaks (an OpenSSH or PEM key, without a passphrase; a key with one goes through ssh-agent: ssh.key.agent: true).',
    )
  return key
}

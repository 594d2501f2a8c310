import ssh2 from 'ssh2'
import { fingerprintOfPublicKeyLine } from '../env/fingerprint.ts'
import type { DeployKey } from '../env/setup.ts'
import { InputError } from '../report/errors.ts'
import type { Context } from '../run/runbook.ts'

/**
 * Who may log in as the deploy user: the env's public keys, and the public half of each private key
 * named by `{ of_secret: NAME }` (CI's deploy key stays authorized when it is rotated in the secret).
 */
export function deployKeys(ctx: Context): DeployKey[] {
  const derived = ctx.env.setup.deployKeySecrets.map((name) => {
    const line = publicKeyLine(
      ctx.secrets[name] ?? '',
      `${name.toLowerCase()}@secret`,
      `setup.deploy_keys of ${ctx.env.file}: the secret ${name} (of_secret)`,
    )
    return { line, fingerprint: fingerprintOfPublicKeyLine(line) }
  })
  return [...ctx.env.setup.deployKeys, ...derived]
}

/** The authorized_keys line (`<type> <base64> <comment>`) of a private key; `what` names it in the error. */
export function publicKeyLine(privateKey: string, comment: string, what: string): string {
  const parsed = ssh2.utils.parseKey(privateKey)
  if (parsed instanceof Error)
    throw new InputError(`${what} is not a private key ssh can use: ${parsed.message}`)
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  return `${key?.type} ${key?.getPublicSSH().toString('base64')} ${comment}`
}

import type { SshKeySource } from './terms.ts'
import type { Validator } from './validate.ts'

// An SSH key's source in an env file (`ssh.key`, `ssh.checker.key`): a file, a secret, or (for the
// deploy key only) the ssh-agent. Exactly one; a secret must also be listed under `secrets`.
export const SECRET_NAME = /^[A-Z][A-Z0-9_]{1,63}$/

export function readKeySource(
  v: Validator,
  raw: unknown,
  path: string,
  opts: { agent: boolean; secrets: string[]; hint?: string },
): SshKeySource {
  const key = v.object(raw, path, opts.agent ? ['file', 'secret', 'agent'] : ['file', 'secret'])
  const source: SshKeySource = {
    file: v.string(key, 'file', path, { optional: true, form: 'a path to a private key file' }),
    secret: v.string(key, 'secret', path, { optional: true, pattern: SECRET_NAME, form: 'a secret NAME' }),
    ...(opts.agent ? { agent: v.boolean(key, 'agent', path, false) } : {}),
  }
  const given = [source.file, source.secret, source.agent || undefined].filter(Boolean).length
  if (key && given !== 1) {
    const choices = opts.agent
      ? 'file: <path>, secret: <NAME> or agent: true'
      : 'file: <path> or secret: <NAME>'
    v.problem(path, `set exactly one of ${choices}${opts.hint ? ` (${opts.hint})` : ''}`)
  }
  if (source.secret && !opts.secrets.includes(source.secret))
    v.problem(`${path}.secret`, `${source.secret} must also be listed under secrets`)
  return source
}

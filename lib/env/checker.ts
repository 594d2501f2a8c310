import { readKeySource } from './key-source.ts'
import type { SshKeySource } from './terms.ts'
import type { Validator } from './validate.ts'

// `ssh.checker:` of an env file: the low-privilege account the read-only runbooks (health, status,
// uptime, releases) log in as. No sudo but one root-owned helper, no docker group: its key cannot
// change a host, so the 5-minute health job does not carry the deploy key.
export interface CheckerConfig {
  user: string
  key: SshKeySource
}

const USER = /^[a-z_][a-z0-9_-]{0,31}$/

export function readChecker(
  v: Validator,
  raw: unknown,
  secrets: string[],
  taken: { user: string; bootstrapUser: string },
): CheckerConfig | undefined {
  if (raw === undefined) return undefined
  const c = v.object(raw, 'ssh.checker', ['user', 'key'])
  const user =
    v.string(c, 'user', 'ssh.checker', { default: 'ce-check', pattern: USER, form: 'a unix user name' }) ??
    'ce-check'
  if (user === taken.user || user === taken.bootstrapUser || user === 'root')
    v.problem(
      'ssh.checker.user',
      `"${user}" is already the deploy or bootstrap user; the checker needs its own`,
    )
  const source = readKeySource(v, c?.key, 'ssh.checker.key', {
    agent: false,
    secrets,
    hint: 'its own key, not the deploy key',
  })
  return { user, key: source }
}

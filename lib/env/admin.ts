import { readKeySource } from './key-source.ts'
import type { SshKeySource } from './terms.ts'
import type { Validator } from './validate.ts'

// `ssh.admin:` of an env file: the administrator's login that setup-server (and verify-server, and
// emergency's new droplet) uses on a set-up host, where root login is off. Its own account and its
// own key, with full sudo; the deploy user then needs only the few root commands the runbooks run
// (setup.deploy_sudo: runbooks), so CI's deploy key cannot become root through sudo.
export interface AdminConfig {
  user: string
  key: SshKeySource
}

const USER = /^[a-z_][a-z0-9_-]{0,31}$/

export function readAdmin(
  v: Validator,
  raw: unknown,
  secrets: string[],
  taken: { user: string; bootstrapUser: string; checker?: { user: string } },
): AdminConfig | undefined {
  if (raw === undefined) return undefined
  const a = v.object(raw, 'ssh.admin', ['user', 'key'])
  const user =
    v.string(a, 'user', 'ssh.admin', { default: 'ce-admin', pattern: USER, form: 'a unix user name' }) ??
    'ce-admin'
  if ([taken.user, taken.bootstrapUser, taken.checker?.user, 'root'].includes(user))
    v.problem(
      'ssh.admin.user',
      `"${user}" is already the deploy, bootstrap or checker user; the administrator needs its own account`,
    )
  const key = readKeySource(v, a?.key, 'ssh.admin.key', {
    agent: false,
    secrets,
    hint: "the administrator's own key, not the deploy key",
  })
  return { user, key }
}

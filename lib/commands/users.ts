import { quote } from './shell.ts'

// The deploy user: login by key only, in the docker group, sudo only as the env file allows.

/** The user's home directory, as the host's passwd says (one line, nothing when there is no such user). */
export function homeOf(user: string): string {
  return `getent passwd ${quote(user)} | cut -d: -f6`
}

export function userCheck(user: string, groups: string[]): string {
  const want = groups.map((g) => `id -nG ${quote(user)} | tr ' ' '\\n' | grep -x ${quote(g)} >/dev/null`)
  return [`id -u ${quote(user)} >/dev/null 2>&1`, ...want].join(' && ')
}

export function createUser(user: string, groups: string[]): string {
  const list = groups.join(',')
  return [
    `(id -u ${quote(user)} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash ${quote(user)})`,
    `usermod -aG ${quote(list)} ${quote(user)}`,
    // Key-only: no password can ever be used to log in.
    `passwd -l ${quote(user)} >/dev/null`,
  ].join(' && ')
}

export function authorizedKeys(keys: string[]): string {
  return `${keys.join('\n')}\n`
}

export function sudoersContent(user: string, sudo: 'all' | 'none' | string[]): string | undefined {
  if (sudo === 'none') return undefined
  const commands = sudo === 'all' ? 'ALL' : sudo.join(', ')
  return `# Managed by setup-server (env file: setup.deploy_sudo)\n${user} ALL=(root) NOPASSWD: ${commands}\n`
}

/** Installs a sudoers drop-in only if visudo accepts it: a broken sudoers file can lock sudo out. */
export function installSudoers(path: string): string {
  return `set -e; tmp=$(mktemp); cat > "$tmp"; visudo -cqf "$tmp"; chmod 0440 "$tmp"; chown root:root "$tmp"; mv -f "$tmp" ${quote(path)}`
}

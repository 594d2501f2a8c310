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
    ...(groups.length ? [`usermod -aG ${quote(list)} ${quote(user)}`] : []),
    // Key-only: no password can ever be used to log in.
    `passwd -l ${quote(user)} >/dev/null`,
  ].join(' && ')
}

export function authorizedKeys(keys: string[]): string {
  return `${keys.join('\n')}\n`
}

/**
 * The root commands the runbooks run as the deploy user, exactly (sudo matches the arguments too):
 * nginx's check and reload after deploy, rollback, maintenance and the edge files change. Everything
 * else a runbook does on a host is the deploy user's own (its files, docker); the audit record goes
 * through the audit helper's own rule (audit-log.ts). setup-server logs in as ssh.admin instead.
 */
export const RUNBOOK_SUDO = ['/usr/sbin/nginx -t -q', '/usr/sbin/nginx -s reload'] as const

export function sudoersContent(
  user: string,
  sudo: 'all' | 'none' | 'runbooks' | string[],
): string | undefined {
  if (sudo === 'none') return undefined
  const commands = sudo === 'all' ? 'ALL' : (sudo === 'runbooks' ? [...RUNBOOK_SUDO] : sudo).join(', ')
  return `# Managed by setup-server (env file: setup.deploy_sudo)\n${user} ALL=(root) NOPASSWD: ${commands}\n`
}

/** The administrator (ssh.admin): key-only login, every command as root without a password (it has none). */
export function adminSudoers(user: string): string {
  return `# Managed by setup-server (env file: ssh.admin): the administrator's login, for setup-server.\n${user} ALL=(ALL:ALL) NOPASSWD: ALL\n`
}

/**
 * What the deploy user may do with sudo, as a new login of it sees: `other=yes` when it can run any
 * command as root, and for each runbook command whether it may (`allowed=<n>` of them).
 */
export function deploySudoProbe(commands: readonly string[]): string {
  const each = commands.map((c) => `sudo -n -l ${c} >/dev/null 2>&1 && n=$((n+1))`).join('; ')
  return `if sudo -n -l /bin/sh -c true >/dev/null 2>&1; then echo other=yes; else echo other=no; fi; n=0; ${each || 'true'}; echo allowed=$n`
}

/** Installs a sudoers drop-in only if visudo accepts it: a broken sudoers file can lock sudo out. */
export function installSudoers(path: string): string {
  return `set -e; tmp=$(mktemp); cat > "$tmp"; visudo -cqf "$tmp"; chmod 0440 "$tmp"; chown root:root "$tmp"; mv -f "$tmp" ${quote(path)}`
}

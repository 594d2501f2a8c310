import { auditLogApply, auditLogCheck } from './audit-log.ts'
import { ownerModeIs } from './files.ts'
import { quote } from './shell.ts'

// Configuration files setup-server owns, with the command that makes each take effect.

export const FAIL2BAN_JAIL = {
  path: '/etc/fail2ban/jail.d/00-conciliaextrato.local',
  activate: 'systemctl enable fail2ban >/dev/null 2>&1; systemctl restart fail2ban',
}

/** journald, not auth.log: minimal hosts have no rsyslog, and the journal has sshd's VERBOSE lines. */
export function fail2banJail(ignore: string[]): string {
  const ignoreip = ['127.0.0.1/8', '::1', ...ignore].join(' ')
  return `[sshd]\nenabled = true\nbackend = systemd\nmode = aggressive\nmaxretry = 5\nfindtime = 10m\nbantime = 1h\nignoreip = ${ignoreip}\n`
}

/**
 * This runbook's own probes (is root login refused?) look like an attack to fail2ban: the address
 * it connects from is ignored for the run (runtime only, removed at the end).
 */
export function fail2banIgnore(ip: string): string {
  const q = quote(ip)
  // Prints 'kept' when the jail's own ignoreip already has it (then it must not be removed later), 'added' otherwise.
  return [
    'if fail2ban-client status sshd >/dev/null 2>&1; then',
    `if fail2ban-client get sshd ignoreip | grep -E -e ${quote(`[ \`|]- ${ip}(/32)?$`)} >/dev/null; then echo kept;`,
    `else fail2ban-client set sshd addignoreip ${q} >/dev/null && echo added; fi;`,
    `fail2ban-client set sshd unbanip ${q} >/dev/null 2>&1;`,
    'fi; true',
  ].join(' ')
}

/** (Re)starts fail2ban and waits for the sshd jail (follow it with fail2banIgnore: a restart forgets it). */
export function fail2banRestart(): string {
  const wait =
    'for i in $(seq 1 20); do fail2ban-client status sshd >/dev/null 2>&1 && break; sleep 0.5; done'
  return [FAIL2BAN_JAIL.activate, wait, 'fail2ban-client status sshd >/dev/null'].join('; ')
}

export function fail2banUnignore(ip: string): string {
  return `if fail2ban-client status sshd >/dev/null 2>&1; then fail2ban-client set sshd delignoreip ${quote(ip)} >/dev/null; fi`
}

/** The address this SSH session comes from, as the host sees it. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
export const sessionSourceProbe = 'echo "${SSH_CLIENT%% *}"'

export const AUTO_UPGRADES = {
  path: '/etc/apt/apt.conf.d/20auto-upgrades',
  content:
    'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\nAPT::Periodic::AutocleanInterval "7";\n',
  activate: 'systemctl enable --now apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true',
}

export const JOURNALD_LIMITS = {
  path: '/etc/systemd/journald.conf.d/00-conciliaextrato.conf',
  // LGPD: logs are kept for a bounded time; disk: bounded size.
  // The containers' logs come through dockerd: one service for journald's rate limit, raised to match.
  content:
    '[Journal]\nSystemMaxUse=500M\nMaxRetentionSec=30day\nRateLimitIntervalSec=30s\nRateLimitBurst=100000\n',
  activate: 'systemctl restart systemd-journald',
}

export const TIME_SYNC = {
  // systemd-timesyncd skips itself in a container (the host keeps the clock): enabling is still right.
  check: 'systemctl is-enabled --quiet systemd-timesyncd',
  apply: 'systemctl enable --now systemd-timesyncd >/dev/null 2>&1 || systemctl enable systemd-timesyncd',
}

export const DOCKER_DAEMON_JSON = '/etc/docker/daemon.json'

/** Our log limits merged into whatever daemon.json the host already has (registry mirrors, ...). */
export function dockerDaemonConfig(existing: string, insecureRegistries: string[] = []): string {
  let current: Record<string, unknown> = {}
  try {
    current = existing.trim() ? (JSON.parse(existing) as Record<string, unknown>) : {}
  } catch {
    throw new Error(`${DOCKER_DAEMON_JSON} on the host is not valid JSON: fix or remove it, then run again`)
  }
  const merged: Record<string, unknown> = {
    ...current,
    // For containers that name no driver. Ours name journald (compose files): bounded in age too.
    'log-driver': 'json-file',
    'log-opts': { 'max-size': '10m', 'max-file': '5' },
  }
  // Sandbox registries speak plain HTTP; the host keeps any it already trusted.
  if (insecureRegistries.length) {
    const had = Array.isArray(current['insecure-registries'])
      ? (current['insecure-registries'] as string[])
      : []
    merged['insecure-registries'] = [...new Set([...had, ...insecureRegistries])]
  }
  return `${JSON.stringify(merged, null, 2)}\n`
}

export const dockerActivate = 'systemctl enable docker >/dev/null 2>&1; systemctl restart docker'

export const LOGROTATE = {
  path: '/etc/logrotate.d/conciliaextrato',
  content: [
    '# Managed by setup-server. The audit log is kept a year (LGPD: bounded retention); containers log to journald (30 days).',
    '/var/log/conciliaextrato/audit.log {',
    '  weekly',
    '  rotate 52',
    '  compress',
    '  delaycompress',
    '  missingok',
    '  notifempty',
    '  create 0640 root adm',
    '  # The log is append-only (chattr +a): lifted for the rename, set again on the new file.',
    '  prerotate',
    '    chattr -a /var/log/conciliaextrato/audit.log',
    '  endscript',
    '  postrotate',
    '    chattr +a /var/log/conciliaextrato/audit.log',
    '  endscript',
    '}',
    '',
  ].join('\n'),
}

/**
 * nginx's own logrotate rule (the package's file, taken over when the env has an edge: section): its logs,
 * the envs' access logs among them, rotated daily and kept `days` days (LGPD: bounded retention). Daily
 * even when empty, so `rotate` counts days; `maxage` bounds them too. Otherwise as Debian and Ubuntu ship it.
 */
export const NGINX_LOGROTATE_PATH = '/etc/logrotate.d/nginx'

export function nginxLogrotate(days: number): string {
  return [
    `# Managed by setup-server: nginx's logs are kept ${days} days (edge.log.retention_days; LGPD).`,
    '/var/log/nginx/*.log {',
    '\tdaily',
    '\tmissingok',
    `\trotate ${days}`,
    `\tmaxage ${days}`,
    '\tcompress',
    '\tdelaycompress',
    '\tcreate 0640 www-data adm',
    '\tsharedscripts',
    '\tprerotate',
    '\t\tif [ -d /etc/logrotate.d/httpd-prerotate ]; then \\',
    '\t\t\trun-parts /etc/logrotate.d/httpd-prerotate; \\',
    '\t\tfi \\',
    '\tendscript',
    '\tpostrotate',
    '\t\tinvoke-rc.d nginx rotate >/dev/null 2>&1',
    '\tendscript',
    '}',
    '',
  ].join('\n')
}

export const NGINX_BASE = {
  path: '/etc/nginx/conf.d/00-conciliaextrato-base.conf',
  // Requests for names we do not serve are closed without an answer; the sites come with deploy.
  content: [
    '# Managed by setup-server.',
    'server_tokens off;',
    "# Each env's sites and upstreams, written by deploy (the directory belongs to the deploy user).",
    'include /etc/nginx/conciliaextrato/*.conf;',
    'server {',
    '    listen 80 default_server;',
    '    server_name _;',
    '    return 444;',
    '}',
    '',
  ].join('\n'),
  activate:
    'rm -f /etc/nginx/sites-enabled/default && nginx -t -q && systemctl enable nginx >/dev/null 2>&1 && systemctl reload-or-restart nginx',
}

export function swapProbe(path = '/swapfile'): string {
  return `swapon --show=NAME,SIZE --bytes --noheadings | awk -v p=${quote(path)} '$1 == p {print $2}'`
}

export function swapCreate(sizeMb: number, path = '/swapfile'): string {
  const p = quote(path)
  return [
    `swapoff ${p} 2>/dev/null || true`,
    `fallocate -l ${sizeMb}M ${p}`,
    `chmod 600 ${p}`,
    `mkswap ${p} >/dev/null`,
    `swapon ${p}`,
    `(grep -q '^${path} ' /etc/fstab || echo '${path} none swap sw 0 0' >> /etc/fstab)`,
  ].join(' && ')
}

export function directories(env: string, user: string): string {
  return [
    `install -d -m 0750 -o ${quote(user)} -g ${quote(user)} /srv/conciliaextrato ${quote(`/srv/conciliaextrato/${env}`)}`,
    `install -d -m 0755 -o ${quote(user)} -g ${quote(user)} /etc/nginx/conciliaextrato`,
    auditLogApply,
  ].join(' && ')
}

export function directoriesCheck(env: string, user: string): string {
  const owned = (path: string, owner: string, mode: string) => ownerModeIs(path, `${owner} ${mode}`)
  return [
    owned(`/srv/conciliaextrato/${env}`, `${user}:${user}`, '750'),
    owned('/etc/nginx/conciliaextrato', `${user}:${user}`, '755'),
    auditLogCheck,
  ].join(' && ')
}

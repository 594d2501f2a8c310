import { quote } from './shell.ts'

// The host's hardening beyond SSH and the firewall: what lynis's audit asks for that a droplet running
// Docker, nginx and Postgres can take (docs/runbooks/security-scan.md lists each item and what is left,
// with why). Pure: strings only; setup-server's hostHardening step applies them (lib/setup/hardening.ts).

/**
 * The auditing tools: package integrity (debsums), patch listing (apt-show-versions), password strength
 * for any password a person sets (libpam-pwquality), resource and process accounting (sysstat, acct),
 * file integrity (aide, its database limited to the system's files), a rootkit check (chkrootkit, not
 * rkhunter: that pulls in binutils, a compiler on the host), a private TMPDIR per login session
 * (libpam-tmpdir). auditd only outside a container (the
 * kernel's audit interface is the host's: in the sandbox it cannot start).
 */
export function hardeningPackages(inContainer: boolean): string[] {
  return [
    'debsums',
    'apt-show-versions',
    'libpam-pwquality',
    'sysstat',
    'acct',
    'aide',
    'aide-common',
    'chkrootkit',
    // Each login session its own TMPDIR (/tmp/user/<uid>, 0700): no guessable shared temporary files.
    'libpam-tmpdir',
    ...(inContainer ? [] : ['auditd']),
  ]
}

const BANNER =
  'Authorised access only. This system is private to ConciliaExtrato and monitored: every session and command is logged and recorded as evidence. Unauthorised use is prohibited and subject to criminal law (Lei 12.737/2012).\n'

/** Files setup-server owns outright (root:root), with the mode each has. */
export const HARDENING_FILES: { path: string; content: string; mode: string }[] = [
  // A legal notice before login (console and network).
  { path: '/etc/issue', content: BANNER, mode: '0644' },
  { path: '/etc/issue.net', content: BANNER, mode: '0644' },
  // No core dumps: a crashed process's memory (connection strings, customers' data) never lands on disk.
  {
    path: '/etc/security/limits.d/90-conciliaextrato-no-core.conf',
    content: '# Managed by setup-server: no core dumps.\n* hard core 0\n* soft core 0\n',
    mode: '0644',
  },
  {
    path: '/etc/systemd/coredump.conf.d/90-conciliaextrato.conf',
    content: '# Managed by setup-server: no core dumps.\n[Coredump]\nStorage=none\nProcessSizeMax=0\n',
    mode: '0644',
  },
  // Kernel modules a droplet never needs: USB and FireWire storage, rarely used network protocols.
  {
    path: '/etc/modprobe.d/conciliaextrato-unused.conf',
    content: `# Managed by setup-server: modules a droplet never needs, never loaded.\n${[
      'usb-storage',
      'firewire-core',
      'firewire-ohci',
      'dccp',
      'sctp',
      'rds',
      'tipc',
    ]
      .map((m) => `install ${m} /bin/true`)
      .join('\n')}\n`,
    mode: '0644',
  },
  // Login shells: an idle interactive one ends after 15 minutes (make exec, make psql, a person's login),
  // and none leaves a core dump.
  {
    path: '/etc/profile.d/conciliaextrato-shell.sh',
    content: [
      '# Managed by setup-server: idle interactive shells end after 15 minutes; no core dumps.',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: shell syntax, not a template
      'if [ -z "${TMOUT:-}" ]; then',
      '  TMOUT=900',
      '  readonly TMOUT',
      '  export TMOUT',
      'fi',
      'ulimit -c 0',
      '',
    ].join('\n'),
    mode: '0644',
  },
  // aide's database covers the system's own files, not the data that changes every minute: Docker's
  // images and volumes (Postgres's data), the deploy's releases, our state. A check takes seconds then.
  {
    path: '/etc/aide/aide.conf.d/70_aide_conciliaextrato',
    content: `# Managed by setup-server: data that changes by design, outside the integrity database.\n${[
      '/var/lib/docker',
      '/var/lib/containerd',
      '/srv/conciliaextrato',
      '/var/lib/conciliaextrato',
    ]
      .map((p) => `!${p}(/|$)`)
      .join('\n')}\n`,
    mode: '0644',
  },
]

/** /etc/login.defs values for accounts that have passwords (ours log in with keys only: see keyOnlyAccounts). */
export const LOGIN_DEFS: Record<string, string> = {
  PASS_MAX_DAYS: '365',
  PASS_MIN_DAYS: '1',
  SHA_CRYPT_MIN_ROUNDS: '5000',
  SHA_CRYPT_MAX_ROUNDS: '500000',
}

/** Exit 0 when login.defs holds every value. */
export function loginDefsCheck(): string {
  return Object.entries(LOGIN_DEFS)
    .map(([k, v]) => `grep -qE ${quote(`^${k}[[:space:]]+${v}[[:space:]]*$`)} /etc/login.defs`)
    .join(' && ')
}

/** Sets each value: the existing line replaced (commented or not), or one appended. */
export function loginDefsApply(): string {
  return Object.entries(LOGIN_DEFS)
    .map(
      ([k, v]) =>
        `if grep -qE '^#?[[:space:]]*${k}[[:space:]]' /etc/login.defs; then sed -i -E 's/^#?[[:space:]]*${k}[[:space:]].*/${k}\\t${v}/' /etc/login.defs; else printf '%s\\t%s\\n' ${k} ${v} >> /etc/login.defs; fi`,
    )
    .join(' && ')
}

/**
 * Key-only accounts never see their password expire: with PASS_MAX_DAYS set, an account made after it
 * would be refused a year later (pam_unix's account check runs for key logins too). Exit 0 when none
 * of them has a maximum age.
 */
export function keyOnlyAccountsCheck(users: string[]): string {
  return users
    .map(
      (u) =>
        `{ ! id -u ${quote(u)} >/dev/null 2>&1 || [ "$(getent shadow ${quote(u)} | cut -d: -f5)" = "" ]; }`,
    )
    .join(' && ')
}

export function keyOnlyAccountsApply(users: string[]): string {
  return users
    .map((u) => `{ ! id -u ${quote(u)} >/dev/null 2>&1 || chage -M -1 -m 0 ${quote(u)}; }`)
    .join(' && ')
}

const CRON_DIRS = [
  '/etc/cron.d',
  '/etc/cron.daily',
  '/etc/cron.hourly',
  '/etc/cron.weekly',
  '/etc/cron.monthly',
]

/** Modes: only root reads sshd's and cron's configuration; the accounts' homes are their own. */
export function modesWanted(homes: string[]): [string, string][] {
  return [
    ['/etc/ssh/sshd_config', '600'],
    ['/etc/crontab', '600'],
    ...CRON_DIRS.map((d): [string, string] => [d, '700']),
    ...homes.map((h): [string, string] => [h, '750']),
  ]
}

export function modesCheck(homes: string[]): string {
  return modesWanted(homes)
    .map(([p, m]) => `{ [ ! -e ${quote(p)} ] || [ "$(stat -c %a ${quote(p)})" = ${m} ]; }`)
    .join(' && ')
}

export function modesApply(homes: string[]): string {
  return modesWanted(homes)
    .map(([p, m]) => `{ [ ! -e ${quote(p)} ] || chmod ${m} ${quote(p)}; }`)
    .join(' && ')
}

/** sysstat collects (Debian installs it disabled). */
export const SYSSTAT = {
  check: `grep -qx 'ENABLED="true"' /etc/default/sysstat && systemctl is-enabled --quiet sysstat`,
  apply: `sed -i -E 's/^ENABLED=.*/ENABLED="true"/' /etc/default/sysstat && systemctl enable --now sysstat >/dev/null 2>&1`,
}

/**
 * aide: SHA-512 checksums, and a database of the system's files made once (seconds: the data paths are
 * outside it). Debian's daily check (dailyaidecheck.timer) compares against it from then on.
 */
export const AIDE = {
  check: `grep -qx 'Checksums = sha512' /etc/aide/aide.conf && test -s /var/lib/aide/aide.db`,
  apply: [
    `sed -i -E 's/^Checksums = .*/Checksums = sha512/' /etc/aide/aide.conf`,
    'grep -qx "Checksums = sha512" /etc/aide/aide.conf',
    'test -s /var/lib/aide/aide.db || nice -n 10 aideinit -y -f >/dev/null',
    'test -s /var/lib/aide/aide.db',
  ].join(' && '),
}

import { quote } from './shell.ts'

// OS detection and package installation with apt (Debian 12 in the sandbox, Ubuntu 24.04 in production).

export type HostOs = 'debian-12' | 'ubuntu-24.04'

export const osReleaseProbe = `. /etc/os-release && echo "$ID-$VERSION_ID"`

export function parseOs(output: string): HostOs | undefined {
  const id = output.trim()
  return id === 'debian-12' || id === 'ubuntu-24.04' ? id : undefined
}

/** What setup-server installs; Docker and Compose only when the host has none (docker-ce counts). */
export function basePackages(os: HostOs): string[] {
  return [
    'sudo',
    'ufw',
    'fail2ban',
    'python3-systemd',
    'unattended-upgrades',
    'systemd-timesyncd',
    'logrotate',
    'nginx',
    'ca-certificates',
    'curl',
    'iproute2',
    // The health watchdog runs on the distribution's Node (18 on both): installed here, in the one apt
    // transaction, as later steps start apt-daily, which would hold apt's lock for a separate install.
    'nodejs',
    // make security-scan runs it on the host (through the checker's helper): its hardening index.
    'lynis',
    ...(os === 'ubuntu-24.04' ? [] : ['apt-listchanges']),
  ]
}

export function dockerPackages(os: HostOs): string[] {
  return os === 'ubuntu-24.04' ? ['docker.io', 'docker-compose-v2'] : ['docker.io', 'docker-compose']
}

/** Prints the packages of the list that are not installed, one per line. */
export function missingPackagesProbe(packages: string[]): string {
  return `for p in ${packages.map(quote).join(' ')}; do dpkg-query -W -f='\${Status}\\n' "$p" 2>/dev/null | grep '^install ok installed$' >/dev/null || echo "$p"; done`
}

/** Prints 'yes' when Docker and a Compose (v2 plugin or v1) are already there. */
export const dockerPresentProbe =
  'if command -v dockerd >/dev/null 2>&1 && (docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1); then echo yes; else echo no; fi'

/** Installs packages non-interactively; finishes an interrupted dpkg run first, waits for apt's lock. */
export function aptInstall(packages: string[]): string {
  const apt =
    'DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confold'
  return [
    // Finishes a run that was killed mid-install; waits while another apt/dpkg (maybe that run's) holds the lock.
    'for i in $(seq 1 180); do DEBIAN_FRONTEND=noninteractive dpkg --configure -a >/dev/null 2>&1 && break; sleep 1; done',
    // apt-get update does not wait for the lists lock (DPkg::Lock::Timeout is dpkg's): a killed run's
    // update may still hold it. Retried for up to 2 minutes, then apt's own error and status.
    `n=0 && until ${apt} update -qq; do n=$((n+1)); if [ $n -ge 60 ]; then exit 100; fi; sleep 2; done`,
    `${apt} install -y -qq --no-install-recommends ${packages.map(quote).join(' ')}`,
  ].join(' && ')
}

const APT =
  'DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confold'

/**
 * Prints the packages with a pending security update, one per line: from a simulated upgrade, the
 * `Inst` lines whose source is a -security suite (Debian-Security:12/oldstable-security,
 * Ubuntu:24.04/noble-security). `refresh`: first refresh apt's lists unless they are under an hour
 * old (apt-get update retried for up to 2 minutes while a killed run's update holds the lock); a dry
 * run reads the lists as they are.
 */
export function pendingSecurityUpdatesProbe(refresh: boolean): string {
  const simulate = `LC_ALL=C apt-get -s -o Debug::NoLocking=1 dist-upgrade | awk '/^Inst / && /-security[ ,]/ {print $2}' | sort -u`
  if (!refresh) return simulate
  return [
    `if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 2>/dev/null | head -1)" ]; then n=0; until ${APT} update -qq >/dev/null; do n=$((n+1)); if [ $n -ge 60 ]; then exit 100; fi; sleep 2; done; fi`,
    simulate,
  ].join(' && ')
}

/** Upgrades just these packages (and what they newly depend on), non-interactively, keeping config files. */
export function upgradePackages(packages: string[]): string {
  return [
    'for i in $(seq 1 180); do DEBIAN_FRONTEND=noninteractive dpkg --configure -a >/dev/null 2>&1 && break; sleep 1; done',
    `${APT} install -y -qq --only-upgrade --no-install-recommends ${packages.map(quote).join(' ')}`,
  ].join(' && ')
}

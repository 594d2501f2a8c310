import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hardeningPackages } from '../../lib/commands/hardening.ts'
import { aptInstall, basePackages, dockerPackages } from '../../lib/commands/packages.ts'
import { LABEL, RUN_FLAGS } from './droplets.ts'
import { debianMirror, ensureDockerEngine, sh } from './engine.ts'

// Base images built from Debian's packages with debootstrap, cached by a hash of their recipe.
const DROPLET_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'openssh-server',
  'ca-certificates',
  'curl',
  'iproute2',
  'procps',
  'sudo',
  'iptables',
  'kmod',
  'cron',
  'logrotate',
  'gnupg',
  'less',
]

// Each droplet gets its own SSH host keys at first boot, like a real new droplet.
const HOSTKEY_UNIT = `[Unit]
Description=Generate this droplet's SSH host keys at first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
`

const DROPLET_SCRIPT = [
  'set -e',
  'rm -f /etc/ssh/ssh_host_*',
  'systemctl enable ssh sandbox-ssh-hostkeys.service',
  // No consoles in a container; these only slow the boot down or fail.
  'systemctl mask getty@tty1.service console-getty.service systemd-udevd.service systemd-remount-fs.service sys-kernel-debug.mount',
  'echo sandbox-droplet > /etc/hostname',
  'apt-get clean',
  'rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*',
].join('\n')

export function recipeHash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 12)
}

export async function imageExists(tag: string): Promise<boolean> {
  return (await sh`docker image inspect ${tag}`.nothrow()).exitCode === 0
}

/** Debian 12 + systemd + sshd: the droplet. */
export async function buildDropletImage(log = defaultLog): Promise<string> {
  const tag = `conciliaextrato-sandbox/droplet:${recipeHash('droplet-v2', DROPLET_PACKAGES.join(','), HOSTKEY_UNIT, DROPLET_SCRIPT)}`
  if (await imageExists(tag)) return tag
  await debootstrapImage(
    tag,
    DROPLET_PACKAGES,
    log,
    async (root) => {
      writeFileSync(join(root, 'etc/systemd/system/sandbox-ssh-hostkeys.service'), HOSTKEY_UNIT)
      copyAptSources(root)
      await sh`chroot ${root} bash -c ${DROPLET_SCRIPT}`
    },
    ['CMD ["/sbin/init"]', 'ENV container=docker'],
  )
  return tag
}

/** A minimal Debian 12 root (no systemd, no sshd): the base of the data service images. */
export async function buildMinbaseImage(log = defaultLog): Promise<string> {
  await ensureDockerEngine()
  const tag = `conciliaextrato-sandbox/minbase:${recipeHash('minbase-v2')}`
  if (await imageExists(tag)) return tag
  await debootstrapImage(
    tag,
    ['ca-certificates'],
    log,
    async (root) => {
      copyAptSources(root)
      await sh`chroot ${root} bash -c ${'apt-get clean; rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*'}`
    },
    ['CMD ["/bin/bash"]'],
  )
  return tag
}

async function debootstrapImage(
  tag: string,
  packages: string[],
  log: (msg: string) => void,
  customize: (root: string) => Promise<void>,
  changes: string[],
): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'ce-debootstrap-'))
  try {
    log(`building ${tag} with debootstrap (about a minute, once; cached afterwards)`)
    await sh`debootstrap --variant=minbase --include=${packages.join(',')} bookworm ${root} ${debianMirror()}`
    await customize(root)
    // mkdtemp made the root 0700: under vfs (a droplet's inner Docker) that would lock every non-root user out of /.
    await sh`chmod 0755 ${root}`
    const changeArgs = changes.flatMap((c) => ['-c', c])
    await sh`tar -C ${root} -c . | docker import ${changeArgs} - ${tag}`
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}

/** The droplet's apt uses the same Debian sources as this machine (or just the mirror found). */
function copyAptSources(root: string): void {
  const hostSources = '/etc/apt/sources.list.d/debian.sources'
  if (existsSync(hostSources) && readFileSync(hostSources, 'utf8').includes('bookworm')) {
    copyFileSync(hostSources, join(root, 'etc/apt/sources.list.d/debian.sources'))
    writeFileSync(join(root, 'etc/apt/sources.list'), '')
    return
  }
  writeFileSync(join(root, 'etc/apt/sources.list'), `deb ${debianMirror()} bookworm main\n`)
}

export function defaultLog(msg: string): void {
  process.stdout.write(`sandbox: ${msg}\n`)
}

// What a golden image (a DigitalOcean snapshot built by the team) holds: setup-server's packages
// installed and Debian's pending updates applied, nothing configured. No host keys, no root key,
// no Docker state, no logs: each droplet made from it still gets its own at first boot.
const PROVISION_CLEANUP = [
  'systemctl stop docker.socket docker containerd nginx fail2ban apt-daily.timer apt-daily-upgrade.timer 2>/dev/null || true',
  'rm -rf /var/lib/docker /var/lib/containerd /etc/ssh/ssh_host_* /root/.ssh /var/lib/fail2ban/*',
  'apt-get clean',
  'rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /var/log/journal/*',
  'find /var/log -type f -exec truncate -s 0 {} +',
].join('\n')

/**
 * The droplet image with what setup-server installs already there (a golden image): the suites that
 * need a set-up droplet start from it and setup-server's package step finds nothing missing. The
 * setup-server suite, the emergency's new droplet and the full rehearsals start from the bare one.
 */
export async function buildProvisionedImage(log = defaultLog): Promise<string> {
  const base = await buildDropletImage(log)
  const packages = [...basePackages('debian-12'), ...hardeningPackages(true), ...dockerPackages('debian-12')]
  const install = `${aptInstall(packages)} && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confold upgrade -y -qq`
  const tag = `conciliaextrato-sandbox/droplet-provisioned:${recipeHash('provisioned-v1', base, install, PROVISION_CLEANUP)}`
  if (await imageExists(tag)) return tag
  log(`building ${tag}: setup-server's packages and Debian's updates on the droplet image (once; cached)`)
  const name = `ce-provision-${process.pid}`
  await sh`docker rm -f ${name}`.nothrow()
  await sh`docker run -d --name ${name} --label ${`${LABEL}=provision`} ${RUN_FLAGS.filter((f) => !f.startsWith('127.0.0.1:') && f !== '-p')} ${base}`
  try {
    // systemd must be up: the packages' scripts start their services.
    await sh`docker exec ${name} sh -c ${'for i in $(seq 1 120); do systemctl is-system-running 2>/dev/null | grep -qE "running|degraded" && exit 0; sleep 0.5; done; exit 1'}`
    await sh`docker exec ${name} bash -c ${install}`
    await sh`docker exec ${name} bash -c ${PROVISION_CLEANUP}`
    await sh`docker commit -c ${'CMD ["/sbin/init"]'} -c ${'ENV container=docker'} ${name} ${tag}`
  } finally {
    await sh`docker rm -f -v ${name}`.nothrow()
  }
  return tag
}

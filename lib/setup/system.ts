import ssh2 from 'ssh2'
import {
  AUDIT_HELPER_PATH,
  AUDIT_SUDOERS_PATH,
  auditHelperScript,
  auditSudoers,
} from '../commands/audit-log.ts'
import { detachedUnit } from '../commands/detached.ts'
import { catFile } from '../commands/firewall.ts'
import { hardeningPackages } from '../commands/hardening.ts'
import {
  AUTO_UPGRADES,
  DOCKER_DAEMON_JSON,
  directories,
  directoriesCheck,
  dockerActivate,
  dockerDaemonConfig,
  JOURNALD_LIMITS,
  LOGROTATE,
  NGINX_BASE,
  NGINX_LOGROTATE_PATH,
  nginxLogrotate,
  swapCreate,
  swapProbe,
  TIME_SYNC,
} from '../commands/host-config.ts'
import {
  aptInstall,
  basePackages,
  dockerPackages,
  dockerPresentProbe,
  missingPackagesProbe,
  pendingSecurityUpdatesProbe,
  upgradePackages,
} from '../commands/packages.ts'
import { sshFingerprint } from '../env/fingerprint.ts'
import { readPrivateKey } from '../env/secrets.ts'
import { ensure, ensureFile } from '../host/converge.ts'
import { runDetached } from '../host/detached.ts'
import type { HostSession } from '../host/session.ts'
import { InputError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import type { Context, Step } from '../run/runbook.ts'
import { ensureSudoers } from './access.ts'
import { eachHost, hostOs } from './common.ts'
import { watchedEnvs } from './watchdog.ts'

/** Prints the container technology (docker, lxc...) or none (a VM, a droplet). */
export const containerProbe = 'systemd-detect-virt --container 2>/dev/null || true'

/** The container technology the host runs in (docker, lxc...), or undefined on a VM (a droplet). */
async function containerTech(host: HostSession): Promise<string | undefined> {
  const out = (await host.exec(containerProbe, { probe: true, allowFail: true, echo: false })).stdout.trim()
  return out && out !== 'none' ? out : undefined
}

import { deployKeys } from './keys.ts'

// Packages, updates, time, swap, log limits, nginx's base, the directory layout.

/** The key this runbook logs in with must be one the deploy user will accept, or hardening locks us out. */
function verifyKeyWillStillWork(ctx: Context): void {
  const privateKey = readPrivateKey(ctx.env, ctx.secrets)
  if (!privateKey) return // ssh-agent: the login proof before hardening catches a missing key
  const parsed = ssh2.utils.parseKey(privateKey)
  if (parsed instanceof Error)
    throw new InputError(`The SSH key in ssh.key cannot be read: ${parsed.message}`)
  const fingerprint = sshFingerprint((Array.isArray(parsed) ? parsed[0] : parsed).getPublicSSH())
  if (!deployKeys(ctx).some((k) => k.fingerprint === fingerprint)) {
    throw new InputError(
      `The key this runbook logs in with (${fingerprint}) is not in setup.deploy_keys of ${ctx.env.file}: after root login is turned off, nobody with this key could log in.`,
      [],
      'Add its public key to setup.deploy_keys (ssh-keygen -y -f <key>), then run again. Nothing was changed.',
    )
  }
}

export const checkHost: Step = {
  title: 'Check the host: supported OS, root or sudo, apt',
  next: 'Nothing was changed. Use an Ubuntu 24.04 (or Debian 12) droplet, and a login that is root or has sudo.',
  async run(ctx) {
    for (const host of ctx.hosts) {
      const os = await hostOs(host)
      const who = await host.exec('id -u; command -v apt-get', { probe: true, echo: false })
      if (!who.stdout.startsWith('0\n'))
        throw new Error(`${host.name}: commands do not run as root (id -u: ${who.stdout.split('\n')[0]})`)
      print(`      ${host.name}: ${os}, root`)
    }
    verifyKeyWillStillWork(ctx)
    // The envs the watchdog watches from outside: their files must load before anything is changed.
    watchedEnvs(ctx.env)
    return 'ok'
  },
}

export const installPackages: Step = {
  title:
    'Install packages: Docker and Compose (unless present), nginx, ufw, fail2ban, unattended-upgrades, lynis and the auditing tools',
  next: 'Look at the apt error above (mirror unreachable? disk full? dpkg lock?); then run setup-server again: it resumes.',
  run: (ctx) =>
    eachHost(ctx, async (host) => {
      const os = await hostOs(host)
      const dockerThere =
        (await host.exec(dockerPresentProbe, { probe: true, echo: false })).stdout.trim() === 'yes'
      const wanted = [
        ...basePackages(os),
        ...hardeningPackages((await containerTech(host)) !== undefined),
        ...(dockerThere ? [] : dockerPackages(os)),
      ]
      const missing = (await host.exec(missingPackagesProbe(wanted), { probe: true, echo: false })).stdout
        .split('\n')
        .filter(Boolean)
      if (missing.length === 0) return false
      print(`      ${host.name}: installing ${missing.join(' ')}`)
      await host.exec(aptInstall(missing), { timeoutS: 900, echo: false })
      return true
    }),
}

/** Pending security updates applied once, before anything is configured: a new droplet's image is old. */
export const securityUpdates: Step = {
  title: 'Security updates: apply what is pending now (later ones: unattended-upgrades)',
  next: 'Look at the apt error above (mirror unreachable? disk full? dpkg lock?); then run setup-server again: it resumes.',
  run: (ctx) =>
    eachHost(ctx, async (host) => {
      const pending = async (refresh: boolean) =>
        (
          await host.exec(pendingSecurityUpdatesProbe(refresh), { probe: true, echo: false, timeoutS: 300 })
        ).stdout
          .split('\n')
          .filter(Boolean)
      const due = await pending(!ctx.dryRun)
      if (due.length === 0) return false
      print(`      ${host.name}: ${due.length} security update(s): ${due.join(' ')}`)
      if (ctx.dryRun) {
        await host.exec(upgradePackages(due), { timeoutS: 900, echo: false })
        return true
      }
      // In a unit of its own: an upgrade of libssl or libpam restarts sshd, which may drop this session
      // (seen in CI); the upgrade goes on, and this run logs in again and waits for it.
      await runDetached(
        host,
        detachedUnit('security-updates'),
        'the security updates',
        upgradePackages(due),
        {
          timeoutS: 900,
          next: 'Look at the apt error above (mirror unreachable? disk full? dpkg lock?); then run setup-server again: it resumes.',
        },
      )
      const left = await pending(false)
      if (left.length)
        throw new Error(`${host.name}: security updates still pending after the upgrade: ${left.join(' ')}`)
      return true
    }),
}

export const automaticUpdates: Step = {
  title: 'Automatic security updates (unattended-upgrades) and time sync',
  run: (ctx) =>
    eachHost(ctx, async (host) => {
      const upgrades = await ensureFile(host, { ...AUTO_UPGRADES, mode: '0644', owner: 'root:root' })
      if (upgrades) await host.exec(AUTO_UPGRADES.activate)
      const time = await ensure(host, TIME_SYNC.check, TIME_SYNC.apply)
      return upgrades || time
    }),
}

export const swapFile: Step = {
  title: 'Swap file (size from setup.swap_mb)',
  async run(ctx) {
    const mb = ctx.env.setup.swapMb
    if (mb === 0) return 'skipped'
    return eachHost(ctx, async (host) => {
      // A container's swap is its host kernel's: swapon there fails, or worse, changes the host's.
      const container = await containerTech(host)
      if (container) {
        print(
          `      ${host.name}: runs in a container (${container}): swap is the host's to give; no swap file`,
        )
        return false
      }
      const size = Number((await host.exec(swapProbe(), { probe: true, echo: false })).stdout.trim() || 0)
      if (size === mb * 1024 * 1024) return false
      await host.exec(swapCreate(mb))
      return true
    })
  },
}

export const logLimits: Step = {
  title: 'Log limits: journald (containers log there: 30 days), logrotate for the audit and nginx logs',
  run: (ctx) =>
    eachHost(ctx, async (host) => {
      const journald = await ensureFile(host, { ...JOURNALD_LIMITS, mode: '0644', owner: 'root:root' })
      if (journald) await host.exec(JOURNALD_LIMITS.activate)
      const existing = (await host.exec(catFile(DOCKER_DAEMON_JSON), { probe: true, echo: false })).stdout
      const docker = await ensureFile(host, {
        path: DOCKER_DAEMON_JSON,
        content: dockerDaemonConfig(
          existing,
          ctx.env.images.registry?.insecure ? [ctx.env.images.registry.server] : [],
        ),
        mode: '0644',
        owner: 'root:root',
      })
      const running =
        (await host.exec('systemctl is-active --quiet docker', { probe: true, allowFail: true, echo: false }))
          .code === 0
      if (docker || !running) await host.exec(dockerActivate)
      const rotate = await ensureFile(host, { ...LOGROTATE, mode: '0644', owner: 'root:root' })
      // nginx's logs hold visitors' (truncated) addresses: kept as long as the env's edge: section says.
      const edge = ctx.env.edge
      const rotateNginx = edge
        ? await ensureFile(host, {
            path: NGINX_LOGROTATE_PATH,
            content: nginxLogrotate(edge.log.retentionDays),
            mode: '0644',
            owner: 'root:root',
          })
        : false
      return journald || docker || !running || rotate || rotateNginx
    }),
}

export const nginxBase: Step = {
  title: 'nginx: installed, no default site, unknown names refused',
  next: 'Run `nginx -t` on the host to see the configuration error.',
  run: (ctx) =>
    eachHost(ctx, async (host) => {
      const file = await ensureFile(host, { ...NGINX_BASE, mode: '0644', owner: 'root:root' })
      const state =
        'test ! -e /etc/nginx/sites-enabled/default && systemctl is-active --quiet nginx && systemctl is-enabled --quiet nginx'
      const running = (await host.exec(state, { probe: true, allowFail: true, echo: false })).code === 0
      if (file || !running) await host.exec(NGINX_BASE.activate)
      return file || !running
    }),
}

export const directoryLayout: Step = {
  title:
    "Directories: /srv/conciliaextrato/<env> (deploy's); the audit log root's, appended through one helper",
  run: (ctx) =>
    eachHost(ctx, async (host) => {
      const dirs = await ensure(
        host,
        directoriesCheck(ctx.env.name, ctx.env.ssh.user),
        directories(ctx.env.name, ctx.env.ssh.user),
      )
      const helper = await ensureFile(host, {
        path: AUDIT_HELPER_PATH,
        content: auditHelperScript(),
        mode: '0755',
        owner: 'root:root',
      })
      // The helper first, then the rule that lets the deploy login run it (root needs none).
      const sudo = await ensureSudoers(
        host,
        AUDIT_SUDOERS_PATH,
        ctx.env.ssh.user === 'root' ? undefined : auditSudoers(ctx.env.ssh.user),
      )
      return dirs || helper || sudo
    }),
}

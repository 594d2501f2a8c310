import { AUDIT_HELPER_PATH, auditLogNotWritable, auditLogVerify } from '../commands/audit-log.ts'
import { checkerProof, parseCheckerProof } from '../commands/checker.ts'
import { METADATA_BLOCK, parseUfwAdded, ufwDefaultsOk, ufwIsActive } from '../commands/firewall.ts'
import { AIDE, HARDENING_FILES, loginDefsCheck, SYSSTAT } from '../commands/hardening.ts'
import { NGINX_LOGROTATE_PATH } from '../commands/host-config.ts'
import { pendingSecurityUpdatesProbe } from '../commands/packages.ts'
import { sshdEffective } from '../commands/sshd.ts'
import { deploySudoProbe } from '../commands/users.ts'
import { REMOTE_AUDIT_LOG } from '../env/host-paths.ts'
import { readAdminKey, readCheckerKey } from '../env/secrets.ts'
import { fileMatches, fileStateProbe } from '../host/converge.ts'
import { HostSession } from '../host/session.ts'
import { offeredAuthMethods } from '../host/ssh-probe.ts'
import { LoginRefusedError } from '../report/errors.ts'
import { print, table } from '../report/output.ts'
import type { Context, Step } from '../run/runbook.ts'
import { newLogin, parseDeploySudo, runbookSudoCommands } from './access.ts'
import { spareOperator } from './common.ts'
import { hostSshPorts, hostUfwRules, peerAddresses, peerOnlyPorts } from './firewall.ts'

// Every promise setup-server makes, checked on the host as it is now: a pass/fail table.

export interface CheckResult {
  check: string
  ok: boolean
  detail: string
}

type Check = (ctx: Context, host: HostSession) => Promise<[boolean, string]>

async function sh(host: HostSession, command: string): Promise<{ code: number; out: string }> {
  const r = await host.exec(command, { probe: true, allowFail: true, echo: false, timeoutS: 30 })
  return { code: r.code, out: r.stdout }
}

const SSHD_PROMISES = {
  permitrootlogin: 'no',
  passwordauthentication: 'no',
  kbdinteractiveauthentication: 'no',
  authenticationmethods: 'publickey',
  allowtcpforwarding: 'no',
  x11forwarding: 'no',
  loglevel: 'VERBOSE',
}

const CHECKS: Record<string, Check> = {
  'root login refused': async (ctx, host) => {
    await spareOperator(host)
    const session = newLogin(ctx, host, ctx.env.ssh.bootstrapUser)
    try {
      await session.connect()
      return [false, `${ctx.env.ssh.bootstrapUser} logged in`]
    } catch (err) {
      return [err instanceof LoginRefusedError, (err as Error).message.split('\n')[0] ?? '']
    } finally {
      session.close()
    }
  },
  'password login refused': async (ctx, host) => {
    const methods = await offeredAuthMethods(host.host, ctx.env.ssh.user)
    return [
      !methods.includes('password') && !methods.includes('keyboard-interactive'),
      `offered: ${methods.join(', ')}`,
    ]
  },
  'deploy login with key works, sudo as deploy_sudo says': async (ctx, host) => {
    const session = newLogin(ctx, host, ctx.env.ssh.user)
    const commands = runbookSudoCommands(ctx.env)
    try {
      await session.connect()
      const out = (
        await session.exec(`id -nG; ${deploySudoProbe(commands)}`, { probe: true, echo: false, timeoutS: 30 })
      ).stdout
      const groups = out.split('\n')[0]?.trim() ?? ''
      const sudo = parseDeploySudo(out)
      const all = ctx.env.setup.deploySudo === 'all'
      const ok =
        groups.split(' ').includes('docker') && sudo.other === all && sudo.allowed === commands.length
      return [
        ok,
        `groups: ${groups}; sudo: ${sudo.other ? 'any command' : `${sudo.allowed} of ${commands.length} runbook command(s), nothing else`}`,
      ]
    } finally {
      session.close()
    }
  },
  "administrator's login with its own key gets root": async (ctx, host) => {
    const admin = ctx.env.ssh.admin
    if (!admin) return [true, 'n/a: no ssh.admin (setup-server logs in as the deploy user with sudo)']
    const session = newLogin(ctx, host, admin.user, readAdminKey(ctx.env, ctx.secrets))
    try {
      await session.connect()
      const r = await session.exec('sudo -n id -u; id -nG', {
        probe: true,
        allowFail: true,
        echo: false,
        timeoutS: 30,
      })
      const [uid, groups] = r.stdout.trim().split('\n')
      return [
        r.code === 0 && uid === '0',
        `${admin.user}: sudo ${uid === '0' ? 'works' : 'refused'}; groups: ${groups ?? ''}`,
      ]
    } catch (err) {
      return [false, (err as Error).message.split('\n')[0] ?? '']
    } finally {
      session.close()
    }
  },
  'audit log root-owned, appended through the helper': async (ctx, host) => {
    if ((await sh(host, auditLogVerify)).code !== 0)
      return [false, `${REMOTE_AUDIT_LOG}, its directory or ${AUDIT_HELPER_PATH} is not root's as set up`]
    if (ctx.env.ssh.user === 'root') return [true, 'root:adm 0640; the runbooks log in as root']
    const session = newLogin(ctx, host, ctx.env.ssh.user)
    try {
      await session.connect()
      const r = await session.exec(`${auditLogNotWritable} && sudo -n -l ${AUDIT_HELPER_PATH} >/dev/null`, {
        probe: true,
        allowFail: true,
        echo: false,
      })
      return [
        r.code === 0,
        r.code === 0
          ? `root:adm 0640; ${ctx.env.ssh.user} cannot write it, appends through the helper`
          : `${ctx.env.ssh.user} can write the log or its directory, or cannot see or may not run the helper`,
      ]
    } finally {
      session.close()
    }
  },
  'checker account reads, cannot change': async (ctx, host) => {
    const checker = ctx.env.ssh.checker
    if (!checker) return [true, 'n/a: no ssh.checker (read-only runbooks log in as the deploy user)']
    const session = new HostSession(host.host, {
      ...host.options,
      user: checker.user,
      sudo: false,
      echo: false,
      dryRun: false,
      privateKey: readCheckerKey(ctx.env, ctx.secrets),
    })
    try {
      await session.connect()
      const { stdout } = await session.exec(checkerProof(ctx.env.name), {
        probe: true,
        allowFail: true,
        timeoutS: 30,
      })
      const problems = parseCheckerProof(stdout)
      return [
        problems.length === 0,
        problems.length
          ? problems.join('; ')
          : `${checker.user}: no sudo but its helper, no docker, keys root's`,
      ]
    } finally {
      session.close()
    }
  },
  'sshd settings in effect': async (_ctx, host) => {
    const { out } = await sh(host, sshdEffective)
    const wrong = Object.entries(SSHD_PROMISES).filter(([k, v]) => !new RegExp(`^${k} ${v}$`, 'm').test(out))
    return [
      wrong.length === 0,
      wrong.length ? `not set: ${wrong.map(([k, v]) => `${k} ${v}`).join(', ')}` : 'sshd -T as promised',
    ]
  },
  'host hardening in place (lynis, banner, no core dumps, modules, login.defs, sysstat, aide)': async (
    _ctx,
    host,
  ) => {
    const files = await Promise.all(
      HARDENING_FILES.map(async (f) => ({
        f,
        ok: fileMatches((await sh(host, fileStateProbe(f.path))).out, { ...f, owner: 'root:root' }),
      })),
    )
    const items: [string, string][] = [
      ['lynis', 'command -v lynis >/dev/null'],
      ['login.defs', loginDefsCheck()],
      ['sysstat', SYSSTAT.check],
      ['aide database', AIDE.check],
    ]
    const wrong = files.filter((x) => !x.ok).map((x) => x.f.path)
    for (const [name, check] of items) if ((await sh(host, check)).code !== 0) wrong.push(name)
    return [
      wrong.length === 0,
      wrong.length ? `not in place: ${wrong.join(', ')}` : `${files.length} files, ${items.length} settings`,
    ]
  },
  'ufw active with the expected rules': async (ctx, host) => {
    const status = (await sh(host, 'ufw status verbose')).out
    const live = parseUfwAdded((await sh(host, 'ufw show added')).out)
    const desired = hostUfwRules(ctx.env, host.host, await hostSshPorts(host))
    const missing = desired.filter((r) => !live.includes(r))
    const extra = live.filter((r) => !desired.includes(r))
    const ok = ufwIsActive(status) && ufwDefaultsOk(status) && missing.length === 0 && extra.length === 0
    return [
      ok,
      ok
        ? `${live.length} rules, default deny incoming`
        : `active=${ufwIsActive(status)} missing=${missing.length} extra=${extra.length}`,
    ]
  },
  'docker ports cannot get around ufw': async (ctx, host) => {
    const { out } = await sh(host, 'iptables -S DOCKER-USER')
    const peers = peerAddresses(ctx.env, host.host)
    const missing = peers.filter(
      (p) => !new RegExp(`-s ${p.replace(/\./g, '\\.')}(/32)? .*-j RETURN`).test(out),
    )
    const drops = /-A DOCKER-USER -i \S+ -j DROP/.test(out)
    const metadata = out.includes(METADATA_BLOCK)
    return [
      drops && metadata && missing.length === 0,
      !drops
        ? 'no DROP rule in DOCKER-USER'
        : !metadata
          ? 'containers can reach the metadata service (169.254.169.254)'
          : missing.length
            ? `DOCKER-USER does not let the env's hosts in: ${missing.join(' ')}`
            : `DOCKER-USER drops the public interface${peers.length ? ` except the env's ${peers.length} other host(s)` : ''}, and the metadata service`,
    ]
  },
  'data ports closed from outside': async (ctx, host) => {
    const peerOnly = peerOnlyPorts(ctx.env, host.host)
    // SSH on the ports sshd listens on (ssh_port may be 2222), and the web: nothing else listens publicly.
    const publicPorts = [...(await hostSshPorts(host)), 80, 443]
    const listening = (await sh(host, `ss -Hltn | awk '{print $4}'`)).out.split('\n').filter(Boolean)
    const port = (a: string) => Number(a.slice(a.lastIndexOf(':') + 1))
    const exposed = listening.filter(
      (a) =>
        !/^(127\.0\.0\.\d+|\[::1\]|::1):\d+$/.test(a) &&
        !publicPorts.includes(port(a)) &&
        !peerOnly.includes(port(a)),
    )
    const published = (await sh(host, `docker ps --format '{{.Ports}}'`)).out
      .split(/[\n,]/)
      .map((p) => p.trim())
      .filter((p) => p.includes('->'))
    const open = published.filter(
      (p) => !p.startsWith('127.0.0.1:') && !peerOnly.includes(Number(p.split('->')[0]?.split(':').pop())),
    )
    const bad = [...exposed, ...open]
    const also = peerOnly.length ? ` (and ${peerOnly.join(', ')} for the env's own hosts)` : ''
    return [
      bad.length === 0,
      bad.length ? `reachable: ${bad.join(' ')}` : `only ${publicPorts.join(', ')} listen publicly${also}`,
    ]
  },
  'fail2ban running (sshd jail)': async (_ctx, host) => {
    const { code, out } = await sh(host, 'fail2ban-client status sshd')
    return [
      code === 0,
      code === 0 ? (out.match(/Currently banned:\s*\d+/)?.[0] ?? 'jail up') : 'sshd jail not running',
    ]
  },
  'docker and compose running': async (_ctx, host) => {
    const { code, out } = await sh(
      host,
      `docker info --format '{{.ServerVersion}} {{.Driver}}' && (docker compose version --short 2>/dev/null || docker-compose version --short)`,
    )
    return [code === 0, out.trim().replace(/\n/g, ', compose ')]
  },
  'unattended-upgrades enabled': async (_ctx, host) => {
    const { code } = await sh(
      host,
      `dpkg-query -W unattended-upgrades >/dev/null && apt-config dump | grep -x 'APT::Periodic::Unattended-Upgrade "1";' >/dev/null`,
    )
    return [code === 0, code === 0 ? 'security updates install daily' : 'not enabled']
  },
  'no security update pending': async (_ctx, host) => {
    // apt's lists as setup-server's update step left them (under an hour old): no refresh here.
    const { code, out } = await sh(host, pendingSecurityUpdatesProbe(false))
    const due = out.split('\n').filter(Boolean)
    if (code !== 0) return [false, `apt-get -s failed (exit ${code})`]
    return [due.length === 0, due.length ? `${due.length} pending: ${due.join(' ')}` : 'none pending']
  },
  'time sync': async (_ctx, host) => {
    if ((await sh(host, 'systemd-detect-virt --container')).code === 0)
      return [true, 'container: the host keeps the clock']
    const { out } = await sh(host, 'timedatectl show -p NTP --value')
    return [out.trim() === 'yes', `NTP=${out.trim()}`]
  },
  'nginx -t ok': async (_ctx, host) => {
    const { code } = await sh(host, 'nginx -t -q && systemctl is-active --quiet nginx')
    return [code === 0, code === 0 ? 'valid and running' : 'invalid or stopped']
  },
  'log limits': async (ctx, host) => {
    const days = ctx.env.edge?.log.retentionDays
    const nginx = days ? ` && grep -Eq '^\\s*maxage ${days}$' ${NGINX_LOGROTATE_PATH}` : ''
    const { code } = await sh(
      host,
      `grep -q max-size /etc/docker/daemon.json && grep -q '^MaxRetentionSec=' /etc/systemd/journald.conf.d/00-conciliaextrato.conf && test -f /etc/logrotate.d/conciliaextrato${nginx}`,
    )
    const what = days
      ? `journald (30 days: our containers log there), docker, logrotate (nginx: ${days} days)`
      : 'journald (30 days: our containers log there), docker, logrotate'
    return [code === 0, code === 0 ? what : 'a limit is missing']
  },
}

export async function verifyHost(ctx: Context, host: HostSession): Promise<CheckResult[]> {
  const results: CheckResult[] = []
  for (const [check, run] of Object.entries(CHECKS)) {
    try {
      const [ok, detail] = await run(ctx, host)
      results.push({ check, ok, detail })
    } catch (err) {
      results.push({ check, ok: false, detail: (err as Error).message.split('\n')[0] ?? 'error' })
    }
  }
  return results
}

export const verifyServer: Step = {
  title: 'Verify every promise on the host (pass/fail table)',
  next: "Run setup-server again to fix what failed; if it keeps failing, the check's detail says what to look at.",
  async run(ctx) {
    if (ctx.dryRun) return 'skipped'
    const failed: string[] = []
    for (const host of ctx.hosts) {
      const results = await verifyHost(ctx, host)
      print(
        table([
          ['host', 'check', 'result', 'detail'],
          ...results.map((r) => [host.name, r.check, r.ok ? 'pass' : 'FAIL', r.detail]),
        ]),
      )
      failed.push(...results.filter((r) => !r.ok).map((r) => `${host.name}: ${r.check} (${r.detail})`))
    }
    if (failed.length) throw new Error(`${failed.length} check(s) failed:\n${failed.join('\n')}`)
    return 'ok'
  },
}

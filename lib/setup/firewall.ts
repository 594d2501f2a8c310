import {
  catFile,
  desiredUfwRules,
  parseUfwAdded,
  publicInterfaceProbe,
  UFW_AFTER_RULES,
  ufwApply,
  ufwConverge,
  ufwDefaults,
  ufwDefaultsOk,
  ufwIsActive,
  ufwShowAdded,
  ufwStatusProbe,
  withDockerUserBlock,
} from '../commands/firewall.ts'
import { FAIL2BAN_JAIL, fail2banJail, fail2banRestart, sessionSourceProbe } from '../commands/host-config.ts'
import { ensureFile } from '../converge.ts'
import type { Context, Step } from '../runbook.ts'
import { eachHost, operatorAddress, spareOperator, unspareOperator } from './common.ts'

export const firewall: Step = {
  title: 'Firewall (ufw): deny incoming; SSH; 80/443 only from Cloudflare; Docker ports cannot get around it',
  next: 'SSH is always allowed before ufw is enabled. If you are locked out anyway: DigitalOcean console -> `ufw disable`.',
  run: (ctx) =>
    eachHost(ctx, async (host) => {
      const iface =
        (await host.exec(publicInterfaceProbe, { probe: true, echo: false })).stdout.trim() || 'eth0'
      const afterRules = (await host.exec(catFile(UFW_AFTER_RULES), { probe: true, echo: false })).stdout
      const blockChanged = await ensureFile(host, {
        path: UFW_AFTER_RULES,
        content: withDockerUserBlock(afterRules, iface),
        mode: '0640',
        owner: 'root:root',
      })
      const status = (await host.exec(ufwStatusProbe, { probe: true, allowFail: true, echo: false })).stdout
      const live = parseUfwAdded(
        (await host.exec(ufwShowAdded, { probe: true, allowFail: true, echo: false })).stdout,
      )
      const commands = [
        ...(ufwDefaultsOk(status) ? [] : ufwDefaults),
        ...ufwConverge(live, desiredUfwRules(ctx.env.setup.firewall)),
      ]
      const active = ufwIsActive(status)
      if (commands.length === 0 && active && !blockChanged) return false
      await host.exec(ufwApply(commands, !active))
      return true
    }),
}

export const fail2ban: Step = {
  title: 'fail2ban for sshd (journal backend)',
  next: 'Run `fail2ban-client -d` on the host to see why the jail does not load.',
  run: (ctx) =>
    eachHost(ctx, async (host) => {
      const jail = await ensureFile(host, {
        path: FAIL2BAN_JAIL.path,
        content: fail2banJail(ctx.env.setup.fail2banIgnore),
        mode: '0644',
        owner: 'root:root',
      })
      const running =
        (await host.exec('fail2ban-client status sshd', { probe: true, allowFail: true, echo: false }))
          .code === 0
      if (!jail && running) return false
      // One command: a ban of our own address (from old journal lines) is lifted before our connection notices.
      await spareOperator(host, fail2banRestart())
      return true
    }),
}

/** fail2ban must not ban this run for its own checks (a refused root login counts as an attack). */
export const spareOperatorFromFail2ban: Step = {
  title: "Keep fail2ban from banning this run's own address while it runs",
  async run(ctx: Context) {
    for (const host of ctx.hosts) {
      const ip = (
        await host.exec(sessionSourceProbe, { probe: true, noSudo: true, echo: false })
      ).stdout.trim()
      if (!ip) continue
      operatorAddress.set(host, ip)
      await spareOperator(host)
      ctx.onCleanup(() => unspareOperator(host))
    }
    return 'ok'
  },
}

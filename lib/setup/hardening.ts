import {
  AIDE,
  HARDENING_FILES,
  keyOnlyAccountsApply,
  keyOnlyAccountsCheck,
  loginDefsApply,
  loginDefsCheck,
  modesApply,
  modesCheck,
  SYSSTAT,
} from '../commands/hardening.ts'
import { homeOf } from '../commands/users.ts'
import { ensure, ensureFile } from '../host/converge.ts'
import type { Context, Step } from '../run/runbook.ts'
import { eachHost } from './common.ts'

// What lynis asks of a host beyond SSH and the firewall, that a droplet running Docker, nginx and
// Postgres can take: a login banner, no core dumps, unused kernel modules never loaded, login.defs's
// password ageing and hashing rounds (the key-only accounts exempt), idle shells closed, strict modes,
// sysstat on, aide's database of the system's files. Each item: check first, change only what differs.

/** The accounts this env makes, which log in with keys only. */
function accounts(ctx: Context): string[] {
  const s = ctx.env.ssh
  return [s.user, s.checker?.user, s.admin?.user].filter((u): u is string => !!u && u !== 'root')
}

export const hostHardening: Step = {
  title:
    'Host hardening: banner, no core dumps, unused modules off, login.defs, idle shells, modes, sysstat, aide',
  next: 'Read the error above; the items before it are in place. Run setup-server again: it resumes.',
  run: (ctx) =>
    eachHost(ctx, async (host) => {
      let changed = false
      for (const f of HARDENING_FILES)
        changed = (await ensureFile(host, { ...f, owner: 'root:root' })) || changed
      changed = (await ensure(host, loginDefsCheck(), loginDefsApply())) || changed
      const users = accounts(ctx)
      changed = (await ensure(host, keyOnlyAccountsCheck(users), keyOnlyAccountsApply(users))) || changed
      // The homes of the accounts that exist (a dry run on a fresh droplet: none yet).
      const homes = await Promise.all(
        users.map(async (u) =>
          (await host.exec(homeOf(u), { probe: true, allowFail: true, echo: false })).stdout.trim(),
        ),
      )
      const real = homes.filter((h) => h.startsWith('/home/'))
      changed = (await ensure(host, modesCheck(real), modesApply(real))) || changed
      changed = (await ensure(host, SYSSTAT.check, SYSSTAT.apply)) || changed
      changed = (await ensure(host, AIDE.check, AIDE.apply)) || changed
      return changed
    }),
}

/**
 * access — who can log in where: every key of the deploy user, root, the checker and the administrator
 * on each host, against what the env file lists; APPLY=1 revokes the strays. Logs in as ssh.admin.
 *
 * When: after someone leaves the team, after a key leaked, as a monthly review (LGPD: access control),
 *   or before rotating CI's deploy key (docs/runbooks/access.md has that procedure).
 * Changes: nothing, unless APPLY=1: then each stray line is removed from its authorized_keys (every
 *   other line kept as it was, owner and mode too). The key this run logs in with is never revoked,
 *   listed or not; with an ssh-agent (key unknown here) the deploy user's file is left alone.
 * Abort: Ctrl-C; a file is replaced whole (renamed into place), never half written.
 * On-call page: docs/runbooks/access.md
 */
import { print } from '../lib/report/output.ts'
import { perRun } from '../lib/run/per-run.ts'
import { confirmMidRun, isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { type HostKeys, keyInUse, keysOn, revokeStrays } from '../lib/setup/login-keys.ts'

const seen = perRun<Map<string, HostKeys>>('keys found')

export const access: RunbookSpec = {
  name: 'access',
  // Listing changes nothing; APPLY=1 asks for the typed env name in production before it revokes.
  mutates: false,
  // Reading and rewriting every account's keys is root's work: it logs in as the administrator.
  admin: true,
  needs: () => ['ssh', 'admin-ssh', 'deploy-keys', 'checker-ssh'],
  options: [{ name: 'apply', makeVar: 'APPLY=1', help: 'revoke the keys the env file does not list' }],
  steps: [
    {
      title: 'Every key that can log in, per host and account, against the env file',
      next: 'Nothing was changed.',
      async run(ctx) {
        const found = new Map<string, HostKeys>()
        for (const host of ctx.hosts) {
          const keys = await keysOn(ctx, host)
          found.set(host.name, keys)
          if (keys.keys.length === 0) print(`      ${host.name}: no authorized key found`)
          for (const k of keys.keys)
            print(
              `      ${host.name}  ${k.user.padEnd(10)} ${k.verdict.padEnd(7)} ${k.type} ${k.fingerprint} ${k.comment || '(no comment)'}${k.options ? ` [${k.options}]` : ''}`,
            )
        }
        seen.set(ctx, found)
        const strays = [...found.values()].flatMap((h) => h.keys.filter((k) => k.verdict === 'stray'))
        print(
          strays.length
            ? `      ${strays.length} stray key(s): make access ENV=${ctx.env.name} APPLY=1 revokes them`
            : '      every key is listed in the env file',
        )
        if (ctx.hosts.some((h) => keyInUse(ctx, h) === undefined))
          print("      the key in use is an ssh-agent's: APPLY=1 leaves the login account's keys alone")
        return 'ok'
      },
    },
    {
      title: 'Revoke the stray keys (APPLY=1)',
      skip: (ctx) => ctx.args.apply !== true && 'only shown: APPLY=1 revokes',
      next: 'Run it again: it lists what is left. A file is replaced whole, never half written.',
      async run(ctx) {
        const found = seen.get(ctx)
        const any = [...found.values()].some((h) => h.keys.some((k) => k.verdict === 'stray'))
        if (!any) return 'ok'
        if (ctx.env.confirm) await confirmMidRun(ctx, `Revoke the stray keys on ${ctx.env.name}`)
        let changed = false
        for (const host of ctx.hosts) {
          const keys = found.get(host.name)
          if (!keys) continue
          const revoked = await revokeStrays(ctx, host, keys)
          for (const r of revoked) {
            print(`      ${host.name}: revoked ${r}`)
            ctx.auditEvent(`access: revoked on ${host.name}: ${r}`)
          }
          changed = changed || revoked.length > 0
        }
        return changed ? 'changed' : 'ok'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(access)

import {
  type FoundKey,
  parseAuthorizedKeys,
  readAuthorizedKeys,
  rewriteAuthorizedKeys,
} from '../commands/access.ts'
import { fingerprintOfPublicKeyLine } from '../env/fingerprint.ts'
import { readAdminKey, readCheckerKey, readPrivateKey } from '../env/secrets.ts'
import type { HostSession } from '../host/session.ts'
import type { Context } from '../run/runbook.ts'
import { deployKeys, publicKeyLine } from './keys.ts'

// Who can log in where: each account's keys on a host against the env file's. A key the env file
// does not list is a stray; the key this run logged in with is never revoked, listed or not.

export type Verdict = 'listed' | 'stray' | 'in use'

export interface KeyReport extends FoundKey {
  host: string
  verdict: Verdict
}

/** The accounts looked at: the deploy user, root, and the checker and administrator when the env has them. */
export function accounts(ctx: Context): string[] {
  const { user, checker, admin } = ctx.env.ssh
  return [user, 'root', ...(checker ? [checker.user] : []), ...(admin ? [admin.user] : [])]
}

/** Per account, the fingerprints the env file lets in (root: none; it logs in only to bootstrap). */
export function listedKeys(ctx: Context): Map<string, Set<string>> {
  const listed = new Map<string, Set<string>>([['root', new Set()]])
  listed.set(ctx.env.ssh.user, new Set(deployKeys(ctx).map((k) => k.fingerprint)))
  // The checker's and the administrator's own keys: the public half of each private key the env names.
  const own = [
    [ctx.env.ssh.checker?.user, readCheckerKey(ctx.env, ctx.secrets), 'ssh.checker.key'],
    [ctx.env.ssh.admin?.user, readAdminKey(ctx.env, ctx.secrets), 'ssh.admin.key'],
  ] as const
  for (const [user, key, field] of own)
    if (user && key) listed.set(user, new Set([fingerprintOfPublicKeyLine(publicKeyLine(key, user, field))]))
  return listed
}

/**
 * The fingerprint of the key this run logs in with (the session's: the administrator's when it came in
 * as ssh.admin); undefined with an ssh-agent (not known here).
 */
export function keyInUse(ctx: Context, host?: HostSession): string | undefined {
  const key = host ? host.options.privateKey : readPrivateKey(ctx.env, ctx.secrets)
  return key ? fingerprintOfPublicKeyLine(publicKeyLine(key, 'in-use', 'the login key')) : undefined
}

export function judge(
  host: string,
  found: FoundKey[],
  listed: Map<string, Set<string>>,
  login: { user: string; fingerprint: string | undefined },
): KeyReport[] {
  return found.map((k) => {
    const inUse = k.user === login.user && k.fingerprint === login.fingerprint
    const verdict: Verdict = listed.get(k.user)?.has(k.fingerprint) ? 'listed' : inUse ? 'in use' : 'stray'
    return { ...k, host, verdict }
  })
}

export interface HostKeys {
  keys: KeyReport[]
  /** Every line of every account's file, `<user> <line>`: comments too, so a rewrite loses nothing else. */
  raw: string[]
}

export async function keysOn(ctx: Context, host: HostSession): Promise<HostKeys> {
  const out = await host.exec(readAuthorizedKeys(accounts(ctx)), { probe: true, echo: false })
  const keys = judge(host.name, parseAuthorizedKeys(out.stdout), listedKeys(ctx), {
    user: host.options.user,
    fingerprint: keyInUse(ctx, host),
  })
  return { keys, raw: out.stdout.split('\n').filter((l) => l.length > 0) }
}

/**
 * Rewrites the files that hold strays with every other line kept as it was. The login account's file
 * is left alone when the key in use is not known (an ssh-agent): a stray could be the key in use.
 */
export async function revokeStrays(ctx: Context, host: HostSession, found: HostKeys): Promise<string[]> {
  const revoked: string[] = []
  const strays = found.keys.filter((k) => k.verdict === 'stray')
  for (const user of [...new Set(strays.map((k) => k.user))]) {
    if (user === host.options.user && keyInUse(ctx, host) === undefined) continue
    const gone = new Set(strays.filter((k) => k.user === user).map((k) => k.line))
    const kept = found.raw
      .filter((l) => l.startsWith(`${user} `))
      .map((l) => l.slice(user.length + 1))
      .filter((l) => !gone.has(l))
    await host.exec(rewriteAuthorizedKeys(user), { stdin: kept.map((l) => `${l}\n`).join(''), echo: false })
    revoked.push(
      ...strays.filter((k) => k.user === user).map((k) => `${user} ${k.fingerprint} ${k.comment}`.trim()),
    )
  }
  return revoked
}

import { createInterface } from 'node:readline/promises'
import { checkerHelperPath } from '../commands/checker.ts'
import type { Env, Host } from '../env/load.ts'
import { readAdminKey, readCheckerKey, readPrivateKey } from '../env/secrets.ts'
import { HostSession } from '../host/session.ts'
import { InputError, LoginRefusedError, PreconditionError, UnreachableError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import type { ParsedArgs } from './cli.ts'
import type { Context, RunbookSpec, Step } from './step.ts'

// Before a runbook's own steps: which hosts, a person's confirmation, one pinned SSH session per host.

/** HOST=<name>: run on that host only. */
export function onlyHost(env: Env, name: string | undefined): Env {
  if (!name) return env
  const hosts = env.hosts.filter((h) => h.name === name)
  if (hosts.length === 0) {
    throw new InputError(`HOST=${name} is not a host of ${env.file}`, [
      `hosts: ${env.hosts.map((h) => h.name).join(', ')}`,
    ])
  }
  return { ...env, hosts, allHosts: env.hosts }
}

export function connectStep(spec: RunbookSpec): Step {
  return {
    title: 'Connect to hosts (pinned host keys)',
    next: 'Nothing was changed. Fix the connection problem above, then run the same command again.',
    async run(ctx) {
      const asChecker = spec.checker === true && ctx.env.ssh.checker !== undefined
      const privateKey = asChecker
        ? readCheckerKey(ctx.env, ctx.secrets)
        : readPrivateKey(ctx.env, ctx.secrets)
      for (const host of ctx.env.hosts) {
        let session: HostSession
        try {
          session = asChecker
            ? await connectChecker(ctx, host, privateKey)
            : await connectHost(
                ctx,
                host,
                privateKey,
                spec.bootstrap ? 'bootstrap' : spec.admin ? 'admin' : 'user',
              )
        } catch (err) {
          if (!(spec.unreachableOk && err instanceof UnreachableError)) throw err
          ctx.unreachable = [...(ctx.unreachable ?? []), { host: host.name, reason: err.message }]
          print(`      ${host.name}: did not answer (${err.message}): the run goes on without it`)
          continue
        }
        ctx.hosts.push(session)
        const { user, sudo, readHelper } = session.options
        print(
          `      ${host.name}: ${user}@${host.address}:${host.sshPort}${sudo ? ' (sudo)' : ''}${readHelper ? ' (read-only checker)' : ''} key ${host.hostKey}`,
        )
      }
      return 'ok'
    },
  }
}

/**
 * A session (not yet connected) as `env`'s read-only checker on one of its hosts, its reads through the
 * checker's helper: the read-only runbooks' own login, and another env's history read from here
 * (promote_from, outside_view) with that env's checker key.
 */
export function checkerSession(
  env: Env,
  host: Host,
  privateKey: string | undefined,
  opts: { commandTimeoutS: number; echo: boolean; dryRun?: boolean },
): HostSession {
  const checker = env.ssh.checker
  if (!checker) throw new Error(`checkerSession: ${env.file} has no ssh.checker`)
  return new HostSession(host, {
    user: checker.user,
    privateKey,
    connectTimeoutS: env.ssh.connectTimeoutS,
    readHelper: checkerHelperPath(env.name),
    ...opts,
  })
}

/**
 * The read-only runbooks on an env with ssh.checker: the checker's login, its reads through the
 * helper. Refused: setup-server has not made the account on this host yet (or the key is not its).
 */
async function connectChecker(
  ctx: Context,
  host: Host,
  privateKey: string | undefined,
): Promise<HostSession> {
  const checker = ctx.env.ssh.checker
  if (!checker) throw new Error('connectChecker: the env has no ssh.checker')
  const session = checkerSession(ctx.env, host, privateKey, {
    commandTimeoutS: ctx.env.ssh.commandTimeoutS,
    dryRun: ctx.dryRun,
    echo: true,
  })
  try {
    await session.connect()
  } catch (err) {
    if (!(err instanceof LoginRefusedError)) throw err
    throw new PreconditionError(
      `${host.name} refused the checker account ${checker.user} (ssh.checker of ${ctx.env.file}).`,
      `setup-server makes that account and authorizes the key in ssh.checker.key: run make setup-server ENV=${ctx.env.name}${ctx.env.hosts.length > 1 ? ` HOST=${host.name}` : ''}, then this again. Check that ${checker.key.secret ?? checker.key.file} is the checker's key.`,
    )
  }
  return session
}

/**
 * Connects as ssh.user ('user'). Root's work ('admin', 'bootstrap': setup-server, make access): on a
 * set-up host (root login off) as ssh.admin with sudo, or, on an env without ssh.admin (or a host set
 * up before it), as ssh.user with sudo; 'bootstrap' then falls back to ssh.bootstrap_user (a fresh
 * droplet). In that order, re-runs never make refused root logins that fail2ban would count against us.
 */
export async function connectHost(
  ctx: Context,
  host: Host,
  privateKey: string | undefined,
  login: 'user' | 'admin' | 'bootstrap',
) {
  const open = async (user: string, sudo: boolean, key = privateKey) => {
    const session = new HostSession(host, {
      user,
      sudo,
      privateKey: key,
      agent: ctx.env.ssh.key.agent ? process.env.SSH_AUTH_SOCK : undefined,
      connectTimeoutS: ctx.env.ssh.connectTimeoutS,
      commandTimeoutS: ctx.env.ssh.commandTimeoutS,
      dryRun: ctx.dryRun,
      echo: true,
    })
    await session.connect()
    return session
  }
  const { user, bootstrapUser, admin } = ctx.env.ssh
  if (login === 'user' || (login === 'bootstrap' && bootstrapUser === user)) return open(user, false)
  const refused = (err: unknown) => {
    if (!(err instanceof LoginRefusedError)) throw err
  }
  if (admin) {
    try {
      return await open(admin.user, true, readAdminKey(ctx.env, ctx.secrets))
    } catch (err) {
      refused(err)
    }
  }
  try {
    const session = await open(user, true)
    // A host set up before ssh.admin: the deploy user still has sudo for everything. One whose
    // deploy user's sudo is narrowed needs the administrator's login.
    const probe = await session.exec('sudo -n true', {
      probe: true,
      allowFail: true,
      echo: false,
      noSudo: true,
    })
    if (probe.code === 0) return session
    session.close()
    throw new PreconditionError(
      `${host.name}: ${admin ? `${admin.user} was refused and ` : ''}${user} has no sudo for setup-server (its sudo is narrowed to the runbooks' commands)`,
      admin
        ? `Check that ${admin.key.secret ?? admin.key.file} (ssh.admin.key of ${ctx.env.file}) is the administrator's key the host was set up with, then run again.`
        : `This host was set up with a narrowed deploy_sudo and an administrator's login: add ssh.admin (its user and key) to ${ctx.env.file}, then run again.`,
    )
  } catch (err) {
    refused(err)
    if (login === 'admin')
      throw new PreconditionError(
        `${host.name}: ${admin ? `${admin.user} and ` : ''}${user} were refused`,
        `Has setup-server run on ${host.name}? Check ${admin ? `${admin.key.secret ?? admin.key.file} (ssh.admin.key)` : `${ctx.env.ssh.key.secret ?? ctx.env.ssh.key.file} (ssh.key)`} of ${ctx.env.file}, then run again.`,
      )
  }
  print(
    `      ${host.name}: no ${admin ? `${admin.user} or ` : ''}${user} login yet (a fresh host); using ${bootstrapUser}`,
  )
  return open(bootstrapUser, false)
}

export async function confirm(spec: RunbookSpec, env: Env, args: ParsedArgs, dryRun: boolean): Promise<void> {
  if (!spec.mutates || !env.confirm || dryRun || args.yes === true) return
  if (!process.stdin.isTTY) {
    if (process.env.CI === 'true') return
    throw new InputError(
      `${spec.name} on ${env.name} needs confirmation and there is no terminal to ask.`,
      [],
      'Pass YES=1 (--yes) if you mean it.',
    )
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  const answer = await rl.question(
    `This changes ${env.name.toUpperCase()}. Type the environment name to continue: `,
  )
  rl.close()
  if (answer.trim() !== env.name) throw new InputError('Not confirmed: nothing was changed.')
}

/**
 * A confirmation in the middle of a run, before the point of no return (restore's swap): a person
 * types the env name; without a terminal only --yes (YES=1) goes on, in CI too.
 */
export async function confirmMidRun(ctx: Context, what: string): Promise<void> {
  if (ctx.dryRun || ctx.args.yes === true) return
  if (!process.stdin.isTTY)
    throw new InputError(
      `${what}: needs confirmation and there is no terminal to ask.`,
      [],
      'Pass YES=1 (--yes) if you mean it.',
    )
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  const answer = await rl.question(`${what}. Type the environment name (${ctx.env.name}) to continue: `)
  rl.close()
  if (answer.trim() !== ctx.env.name)
    throw new InputError('Not confirmed: stopped before changing anything live.')
}

import pRetry from 'p-retry'
import { SSHD_DROP_IN, sshdHardening, sshdReload, sshdRevert, sshdTest } from '../commands/sshd.ts'
import {
  authorizedKeys,
  createUser,
  deploySudoProbe,
  installSudoers,
  RUNBOOK_SUDO,
  sudoersContent,
  userCheck,
} from '../commands/users.ts'
import type { Env } from '../env/load.ts'
import { readPrivateKey } from '../env/secrets.ts'
import { ensure, ensureFile, fileMatches, fileStateProbe } from '../host/converge.ts'
import { HostSession } from '../host/session.ts'
import { LoginRefusedError, PreconditionError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import type { Context, Step } from '../run/runbook.ts'
import { eachHost, spareOperator, userHome } from './common.ts'
import { deployKeys } from './keys.ts'

// Access: the deploy user, proof that it can log in, then SSH hardening that never locks us out.

const SUDOERS = '/etc/sudoers.d/conciliaextrato-deploy'

export const deployUser: Step = {
  title: 'Deploy user: team keys from the env file, docker group, sudo as setup.deploy_sudo allows',
  run: (ctx) =>
    eachHost(ctx, async (host) => {
      const { user } = ctx.env.ssh
      const groups = ['docker', 'adm']
      const created = await ensure(host, userCheck(user, groups), createUser(user, groups))
      const home = await userHome(host, user, created)
      await ensure(host, `test -d ${home}/.ssh`, `install -d -m 0700 -o ${user} -g ${user} ${home}/.ssh`)
      const keys = await ensureFile(host, {
        path: `${home}/.ssh/authorized_keys`,
        content: authorizedKeys(deployKeys(ctx).map((k) => k.line)),
        mode: '0600',
        owner: `${user}:${user}`,
      })
      const sudo = await ensureSudo(host, ctx.env)
      return created || keys || sudo
    }),
}

function ensureSudo(host: HostSession, env: Env): Promise<boolean> {
  return ensureSudoers(host, SUDOERS, sudoersContent(env.ssh.user, env.setup.deploySudo))
}

/** A sudoers drop-in holds `content` (checked by visudo before it is put in place), or is absent. */
export async function ensureSudoers(
  host: HostSession,
  path: string,
  content: string | undefined,
): Promise<boolean> {
  const probe = await host.exec(fileStateProbe(path), { probe: true, echo: false })
  if (!content) {
    if (probe.stdout.trim() === 'absent') return false
    await host.exec(`rm -f ${path}`)
    return true
  }
  if (fileMatches(probe.stdout, { path, content, mode: '0440', owner: 'root:root' })) return false
  await host.exec(installSudoers(path), { stdin: content })
  return true
}

/**
 * Opens a NEW connection as `user` (pinned key), runs a command, closes it. Right after an sshd
 * reload the port can reset a connection for a moment: those are retried, a refused login is not.
 */
export function loginAs(
  ctx: Context,
  host: HostSession,
  user: string,
  command: string,
  privateKey = readPrivateKey(ctx.env, ctx.secrets),
): Promise<string> {
  return pRetry(() => loginOnce(ctx, host, user, command, privateKey), {
    retries: 5,
    minTimeout: 200,
    shouldRetry: ({ error }) => !(error instanceof LoginRefusedError),
  })
}

/**
 * A second, separate login to the same host as `user` (same pinned host key, no sudo; the deploy key
 * unless another is given): to prove who can get in.
 */
export function newLogin(
  ctx: Context,
  host: HostSession,
  user: string,
  privateKey = readPrivateKey(ctx.env, ctx.secrets),
): HostSession {
  return new HostSession(host.host, {
    ...host.options,
    user,
    sudo: false,
    echo: false,
    dryRun: false,
    privateKey,
  })
}

async function loginOnce(
  ctx: Context,
  host: HostSession,
  user: string,
  command: string,
  privateKey: string | undefined,
): Promise<string> {
  const session = newLogin(ctx, host, user, privateKey)
  try {
    await session.connect()
    return (await session.exec(command, { probe: true, timeoutS: 20 })).stdout
  } finally {
    session.close()
  }
}

/** A new login as the deploy user (pinned key) runs a command: SSH lets the runbooks in. */
export async function proveFreshLogin(ctx: Context, host: HostSession): Promise<void> {
  await loginAs(ctx, host, ctx.env.ssh.user, 'true')
}

async function proveDeployLogin(ctx: Context, host: HostSession): Promise<string> {
  const { user } = ctx.env.ssh
  const commands = runbookSudoCommands(ctx.env)
  const out = await loginAs(ctx, host, user, `id -un; id -nG; ${deploySudoProbe(commands)}`)
  if (!out.split('\n')[1]?.split(' ').includes('docker'))
    throw new PreconditionError(`${user} on ${host.name} is not in the docker group`)
  const sudo = parseDeploySudo(out)
  const want = ctx.env.setup.deploySudo
  if (want === 'all' && !sudo.other) throw new PreconditionError(`${user} on ${host.name} cannot use sudo`)
  if (want !== 'all' && sudo.other)
    throw new PreconditionError(`${user} on ${host.name} can still run any command as root through sudo`)
  if (sudo.allowed !== commands.length)
    throw new PreconditionError(
      `${user} on ${host.name} may run ${sudo.allowed} of the ${commands.length} root commands the runbooks need (${commands.join(', ')})`,
    )
  return want === 'all'
    ? 'sudo for everything'
    : want === 'none'
      ? 'no sudo'
      : `sudo for ${commands.length} command(s) only`
}

/** The commands the deploy user must be able to run with sudo, as setup.deploy_sudo says. */
export function runbookSudoCommands(env: Env): string[] {
  const want = env.setup.deploySudo
  return want === 'runbooks' || want === 'all' ? [...RUNBOOK_SUDO] : want === 'none' ? [] : want
}

export function parseDeploySudo(out: string): { other: boolean; allowed: number } {
  return {
    other: /^other=yes$/m.test(out),
    allowed: Number(/^allowed=(\d+)$/m.exec(out)?.[1] ?? '0'),
  }
}

async function rootLoginRefused(ctx: Context, host: HostSession): Promise<boolean> {
  await spareOperator(host)
  try {
    await loginAs(ctx, host, ctx.env.ssh.bootstrapUser, 'true')
    return false
  } catch (err) {
    if (err instanceof LoginRefusedError) return true
    throw err
  }
}

export const proveDeployAccess: Step = {
  title: 'Prove a new SSH login as the deploy user works (before root login is turned off)',
  next: 'Root login is still on, nothing is locked. Check setup.deploy_keys holds the key in ssh.key, then run again.',
  async run(ctx) {
    for (const host of ctx.hosts) {
      try {
        const sudo = await proveDeployLogin(ctx, host)
        print(`      ${host.name}: ${ctx.env.ssh.user} logs in with the runbook's key; ${sudo}`)
      } catch (err) {
        if (!ctx.dryRun) throw err
        print(
          `      ${host.name}: not possible yet (dry run: the user is not set up): ${(err as Error).message.split('\n')[0]}`,
        )
        return 'skipped'
      }
    }
    return 'ok'
  },
}

export const hardenSsh: Step = {
  title: 'Harden sshd: keys only, no root, no forwarding, modern crypto (drop-in that sorts first)',
  next: 'The previous sshd configuration was put back and reloaded; your session is intact. Read the error, fix, run again.',
  run: (ctx) =>
    eachHost(ctx, async (host) => {
      const file = { path: SSHD_DROP_IN, content: sshdHardening(), mode: '0644', owner: 'root:root' }
      const probe = await host.exec(fileStateProbe(SSHD_DROP_IN), { probe: true, echo: false })
      if (fileMatches(probe.stdout, file)) {
        // The file is right; a run killed before the reload leaves sshd on the old one: make sure.
        if (ctx.dryRun || (await rootLoginRefused(ctx, host))) return false
        await host.exec(sshdReload)
        return true
      }
      const backup = `${SSHD_DROP_IN}.previous`
      await host.exec(
        `if [ -f ${SSHD_DROP_IN} ]; then cp -p ${SSHD_DROP_IN} ${backup}; else rm -f ${backup}; fi`,
      )
      await host.upload(file.path, file.content, file.mode, file.owner)
      if (ctx.dryRun) return true
      try {
        await host.exec(sshdTest)
        await host.exec(sshdReload)
        await proveDeployLogin(ctx, host)
        if (!(await rootLoginRefused(ctx, host)))
          throw new Error(`${ctx.env.ssh.bootstrapUser} can still log in after the reload`)
      } catch (err) {
        await host.exec(sshdRevert(backup))
        throw new PreconditionError(
          `${(err as Error).message.split('\n')[0]}\nThe previous sshd configuration was put back and reloaded; root login is as it was.`,
          'Your session is intact. Read the error above, fix the cause, and run setup-server again.',
        )
      }
      await host.exec(`rm -f ${backup}`)
      return true
    }),
}

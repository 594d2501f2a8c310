import { adminSudoers, authorizedKeys, createUser, userCheck } from '../commands/users.ts'
import { readAdminKey } from '../env/secrets.ts'
import { ensure, ensureFile } from '../host/converge.ts'
import type { HostSession } from '../host/session.ts'
import { InputError, PreconditionError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import type { Context, Step } from '../run/runbook.ts'
import { ensureSudoers, loginAs } from './access.ts'
import { eachHost, userHome } from './common.ts'
import { publicKeyLine } from './keys.ts'

// The administrator's account (ssh.admin): setup-server's own login on a set-up host, with its own
// key and sudo for everything, so the deploy user (CI's key) needs only the runbooks' root commands.

export const ADMIN_SUDOERS = '/etc/sudoers.d/conciliaextrato-admin'

function adminKey(ctx: Context): { user: string; key: string; line: string } {
  const admin = ctx.env.ssh.admin
  const key = readAdminKey(ctx.env, ctx.secrets)
  if (!admin || key === undefined)
    throw new InputError(
      `ssh.admin.key of ${ctx.env.file}: ${admin?.key.secret ?? admin?.key.file} has no value`,
      [],
      "Set it (the administrator's own private key), then run again.",
    )
  const line = publicKeyLine(key, `${admin.user}@${ctx.env.name}`, `ssh.admin.key of ${ctx.env.file}`)
  return { user: admin.user, key, line }
}

export const adminAccount: Step = {
  title: "Administrator's login (ssh.admin): its own key, sudo; proven on a new connection",
  next: 'Nothing else was changed. Read the error above, fix it (ssh.admin of the env file), run setup-server again.',
  skip: (ctx) =>
    ctx.env.ssh.admin
      ? false
      : 'the env file has no ssh.admin (setup-server logs in as the deploy user with sudo)',
  run: (ctx) => {
    const admin = adminKey(ctx)
    return eachHost(ctx, async (host) => {
      const created = await ensure(host, userCheck(admin.user, []), createUser(admin.user, []))
      const home = await userHome(host, admin.user, created)
      const dir = await ensure(
        host,
        `test -d ${home}/.ssh`,
        `install -d -m 0700 -o ${admin.user} -g ${admin.user} ${home}/.ssh`,
      )
      const keys = await ensureFile(host, {
        path: `${home}/.ssh/authorized_keys`,
        content: authorizedKeys([admin.line]),
        mode: '0600',
        owner: `${admin.user}:${admin.user}`,
      })
      const sudo = await ensureSudoers(host, ADMIN_SUDOERS, adminSudoers(admin.user))
      await proveAdminLogin(ctx, host, admin)
      return created || dir || keys || sudo
    })
  },
}

/**
 * A new login with the administrator's key gets root through sudo. Then, if this run came in as the
 * deploy user (a host set up before ssh.admin), it goes on as the administrator: the deploy user's
 * sudo is about to be narrowed.
 */
async function proveAdminLogin(
  ctx: Context,
  host: HostSession,
  admin: { user: string; key: string },
): Promise<void> {
  if (ctx.dryRun) {
    print(`      ${host.name}: would prove a new ${admin.user} login gets root through sudo`)
    return
  }
  const out = await loginAs(ctx, host, admin.user, 'sudo -n id -u', admin.key)
  if (out.trim() !== '0')
    throw new PreconditionError(
      `${admin.user} on ${host.name} logged in but sudo did not make it root: ${out}`,
    )
  if (host.options.user === ctx.env.ssh.user) {
    await host.relogin(admin.user, admin.key)
    print(`      ${host.name}: this run goes on as ${admin.user} (the deploy user's sudo is narrowed next)`)
  }
}

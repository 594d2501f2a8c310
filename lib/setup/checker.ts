import {
  checkerAuthorizedKeys,
  checkerHelperPath,
  checkerHelperScript,
  checkerSshDir,
  checkerSudoers,
  checkerSudoersPath,
  checkerUserApply,
  checkerUserCheck,
} from '../commands/checker.ts'
import { readCheckerKey } from '../env/secrets.ts'
import { ensure, ensureFile } from '../host/converge.ts'
import { InputError } from '../report/errors.ts'
import type { Context, Step } from '../run/runbook.ts'
import { ensureSudoers } from './access.ts'
import { eachHost, userHome } from './common.ts'
import { publicKeyLine } from './keys.ts'

// The checker account (ssh.checker): health, status, uptime and releases log in as it. It is in no
// group that gives more than reads (sudo, docker, adm...), its keys are root's to change, and sudo
// lets it run one root-owned helper that knows a fixed list of reads (lib/commands/checker.ts).

function checkerKeyLine(ctx: Context): string {
  const checker = ctx.env.ssh.checker
  const key = readCheckerKey(ctx.env, ctx.secrets)
  if (!checker || key === undefined)
    throw new InputError(
      `ssh.checker.key of ${ctx.env.file}: ${checker?.key.secret ?? checker?.key.file} has no value`,
      [],
      "Set it (the checker's own private key), then run again.",
    )
  return publicKeyLine(key, `${checker.user}@${ctx.env.name}`, `ssh.checker.key of ${ctx.env.file}`)
}

export const checkerAccount: Step = {
  title: 'Checker account: a read-only login (no sudo, no docker group) and its one root-owned helper',
  next: 'The deploy login is untouched. Read the error above, fix it, run setup-server again.',
  skip: (ctx) =>
    ctx.env.ssh.checker
      ? false
      : 'the env file has no ssh.checker (the read-only runbooks log in as the deploy user)',
  run: (ctx) => {
    const line = checkerKeyLine(ctx)
    return eachHost(ctx, async (host) => {
      const user = ctx.env.ssh.checker?.user ?? ''
      const created = await ensure(host, checkerUserCheck(user), checkerUserApply(user))
      const dir = checkerSshDir(user)
      const sshDir = await ensure(host, dir.check, dir.apply)
      const home = await userHome(host, user, created)
      const keys = await ensureFile(host, {
        path: `${home}/.ssh/authorized_keys`,
        content: checkerAuthorizedKeys([line]),
        mode: '0640',
        owner: `root:${user}`,
      })
      const helper = await ensureFile(host, {
        path: checkerHelperPath(ctx.env.name),
        content: checkerHelperScript(ctx.env),
        mode: '0755',
        owner: 'root:root',
      })
      // The helper first, then the rule that lets the checker run it.
      const sudo = await ensureSudoers(
        host,
        checkerSudoersPath(ctx.env.name),
        checkerSudoers(user, ctx.env.name),
      )
      return created || sshDir || keys || helper || sudo
    })
  },
}

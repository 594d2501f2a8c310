/**
 * rotate-secret — change Postgres's or Redis's password with no failed request.
 *
 * When: someone who knew it left; it may have leaked; on schedule (LGPD: credentials rotated).
 * Options: NAME=POSTGRES_PASSWORD or NAME=REDIS_PASSWORD. The new value is made here (32 random
 *   bytes) and never printed; it is saved where the secret is kept: env/<env>.secrets.age (commit it)
 *   or, in the sandbox, env/<env>.secrets.env. A secret set in this process's environment is refused.
 * Changes: the data service accepts the old and the new password for a moment (Redis: a second
 *   password; Postgres: a twin login role acting as the env's user), the apps move to the new one by
 *   the deploy's blue/green switch (Postgres: twice, to the twin and back), the old password is
 *   revoked, and the colour that held it is removed (a rollback creates it anew; the instant-rollback
 *   window ends). On a swarm env the apps move by a rolling update with new Docker secrets (one web
 *   node at a time; nginx sends to the other node meanwhile).
 * Abort: Ctrl-C: until the new value is saved, everything goes back to the old password; after, run it
 *   again (it starts over with another value).
 * On-call page: docs/runbooks/secrets.md
 */

import { twinRole } from '../lib/commands/rotate.ts'
import { NOTHING_CHANGED } from '../lib/release/steps.ts'
import { releaseStrategy } from '../lib/release/strategy.ts'
import { print } from '../lib/report/output.ts'
import { stringArg } from '../lib/run/cli.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import {
  acceptNew,
  backToMainRole,
  moveApps,
  prepareRotation,
  restoreFilesOnFailure,
  revokeNewOnFailure,
  revokeOld,
  rotatable,
  rotation,
  saveNewValue,
} from '../lib/secrets/rotate.ts'
import { DB_USER } from '../lib/stack/files.ts'

const isRedis = (name: string | undefined) => name === 'REDIS_PASSWORD'

export const rotateSecret: RunbookSpec = {
  name: 'rotate-secret',
  mutates: true,
  needs: () => ['ssh', 'app', 'registry'],
  options: [{ name: 'name', makeVar: 'NAME', value: true, help: 'POSTGRES_PASSWORD or REDIS_PASSWORD' }],
  validate: (args) => void rotatable(stringArg(args, 'name')),
  steps: [
    {
      title: 'Preconditions: the secret and where it is kept, the live release, the hosts',
      next: NOTHING_CHANGED,
      async run(ctx) {
        await prepareRotation(ctx, rotatable(stringArg(ctx.args, 'name')))
        // Runs last, once the apps are back on the old password: the new one is refused again.
        ctx.onCleanup(revokeNewOnFailure(ctx))
        return 'ok'
      },
    },
    {
      title: 'Take the deploy lock on every host',
      next: 'Another run holds the lock (see above). Nothing was changed.',
      async run(ctx) {
        await releaseStrategy(ctx).lock(ctx, 'rotate-secret')
        // Runs before the deploy's undo: the files it recreates containers from name the old password.
        ctx.onCleanup(restoreFilesOnFailure(ctx))
        return 'changed'
      },
    },
    {
      title: 'The data service accepts the new password too',
      next: 'The apps still use the old password, which still works. Look at the error above, then run it again.',
      async run(ctx) {
        await acceptNew(ctx)
        return 'changed'
      },
    },
    {
      title:
        'The apps move to the new password: the idle colour starts with it; switch; gates; the old colour removed (swarm: a rolling update)',
      next: 'The colour that served before serves again, on the old password (the new one was refused again). Look at the new colour: make logs.',
      async run(ctx) {
        await moveApps(ctx, isRedis(rotation(ctx).name) ? undefined : twinRole(DB_USER))
        return 'changed'
      },
    },
    {
      title: 'Save the new value where the secret is kept',
      next: (ctx) =>
        `The apps use the new value, which is not saved: run make rotate-secret ENV=${ctx.env.name} NAME=${rotation(ctx).name} again (another value; the next deploy would otherwise use the old one, which still works).`,
      async run(ctx) {
        const file = await saveNewValue(ctx)
        print(`      saved in ${file}${file.endsWith('.age') ? ': commit it' : ''}`)
        return 'changed'
      },
    },
    {
      title: "Postgres: the env's user takes the new password; the apps move back to it",
      skip: (ctx) =>
        isRedis(stringArg(ctx.args, 'name')) && 'Redis takes two passwords at once: one switch was enough',
      next: (ctx) =>
        `The new value is saved and the apps use it (through the twin role). Run make rotate-secret ENV=${ctx.env.name} NAME=POSTGRES_PASSWORD again to finish.`,
      async run(ctx) {
        await backToMainRole(ctx)
        return 'changed'
      },
    },
    {
      title: 'Revoke the old password',
      next: (ctx) =>
        `The new value is saved and used everywhere; the old one still opens the data service. Run make rotate-secret ENV=${ctx.env.name} NAME=${rotation(ctx).name} again.`,
      async run(ctx) {
        await revokeOld(ctx)
        return 'changed'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(rotateSecret)

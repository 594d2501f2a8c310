/**
 * unlock — breaks the deploy lock after a run died without releasing it (a cancelled CI job, a
 * killed laptop). Audited.
 *
 * When: a deploy says the lock is held and its heartbeat is stale, and you are sure no deploy runs.
 * Changes: removes /srv/conciliaextrato/<env>/deploy.lock on every host. Abort: Ctrl-C.
 * On-call page: docs/runbooks/deploy.md#the-lock
 */
import { breakLock, parseOwner } from '../lib/commands/lock.ts'
import { remotePaths } from '../lib/env/host-paths.ts'
import { print } from '../lib/report/output.ts'
import { describeHolder } from '../lib/run/lock.ts'
import { changedIf, isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'

export const unlock: RunbookSpec = {
  name: 'unlock',
  mutates: true,
  needs: () => ['ssh'],
  steps: [
    {
      title: 'Break the deploy lock (showing who held it)',
      async run(ctx) {
        let broke = false
        for (const host of ctx.hosts) {
          const out = await host.exec(breakLock(remotePaths(ctx.env).lock), { echo: false })
          if (out.dryRun) continue
          const [state, ...rest] = out.stdout.trim().split('\n')
          if (state === 'free') {
            print(`      ${host.name}: no lock was held`)
            continue
          }
          const owner = parseOwner(rest.join('\n'))
          print(
            describeHolder(host.name, owner, Number(owner.heartbeat_age_s ?? 0), ctx.env.name).split(
              '\n',
            )[0] ?? '',
          )
          print(`      ${host.name}: lock broken`)
          broke = true
        }
        return changedIf(broke)
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(unlock)

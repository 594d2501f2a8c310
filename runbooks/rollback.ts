/**
 * rollback — back to the previous good release (or TO=<release>) in seconds.
 *
 * When: a release misbehaves after its gates passed, or the team decides to go back.
 * Changes: starts the previous release's colour (still there, stopped) or recreates it from that
 *   release's images, switches nginx to it, stops the other colour. Migrations are NOT undone: releases
 *   must keep working on the newer schema (expand, then contract).
 * Abort: Ctrl-C: the lock is released and the colour that served before keeps serving.
 * On-call page: docs/runbooks/rollback.md
 */
import { stringArg } from '../lib/cli.ts'
import { notifyOutcome } from '../lib/deploy/finish.ts'
import { checkPreconditions } from '../lib/deploy/prepare.ts'
import {
  deliver,
  gates,
  recordAndRetire,
  startIdleColour,
  switchNginx,
  takeLock,
} from '../lib/deploy/steps.ts'
import { InputError } from '../lib/errors.ts'
import { print } from '../lib/output.ts'
import { remotePaths } from '../lib/paths.ts'
import { liveRelease, parseReleases, previousGood, readReleases } from '../lib/releases.ts'
import { isMain, main, type RunbookSpec } from '../lib/runbook.ts'

export const rollback: RunbookSpec = {
  name: 'rollback',
  mutates: true,
  options: [
    {
      name: 'to',
      makeVar: 'TO',
      value: true,
      help: 'the release to go back to (default: the previous good one)',
    },
  ],
  steps: [
    {
      title: 'Choose the release to go back to, and check it can run',
      next: 'Nothing was changed. `make releases ENV=<env>` lists what can be rolled back to.',
      async run(ctx) {
        const host = ctx.hosts[0]
        if (!host) throw new InputError('the env has no host')
        const history = parseReleases(
          (await host.exec(readReleases(remotePaths(ctx.env).releases), { probe: true, echo: false })).stdout,
        )
        const current = liveRelease(history)?.id
        const wanted = stringArg(ctx.args, 'to')
        const target = wanted
          ? history.find((r) => r.id === wanted && r.outcome === 'live')
          : previousGood(history, current)
        if (!target) {
          const known =
            [...new Set(history.filter((r) => r.outcome === 'live').map((r) => r.id))].join(', ') || 'none'
          throw new InputError(
            wanted
              ? `${wanted} never went live here, so it is no rollback target (live releases: ${known})`
              : `There is no previous good release to go back to (live releases: ${known})`,
          )
        }
        if (target.id === current) throw new InputError(`${target.id} is already live`)
        ctx.release = target.id
        await checkPreconditions(ctx, target.id, 'rollback')
        ctx.onCleanup(notifyOutcome(ctx))
        print(`      rolling back from ${current ?? 'none'} to ${target.id}`)
        return 'ok'
      },
    },
    takeLock('rollback'),
    deliver("Make sure the release's images are on the host"),
    startIdleColour(
      'Start that release on the idle colour (its stopped containers when still there); wait until healthy',
    ),
    switchNginx,
    gates(
      'Traffic was switched back. The release you rolled back to is not healthy either: look at the hosts now.',
    ),
    recordAndRetire('rollback'),
  ],
}

if (isMain(import.meta.url)) await main(rollback)

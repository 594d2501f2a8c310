/**
 * rollback — back to the previous good release (or TO=<release>) in seconds.
 *
 * When: a release misbehaves after its gates passed, or the team decides to go back.
 * Changes: starts the previous release's colour (still there, stopped) or recreates it from that
 *   release's images, switches nginx to it, stops the other colour. Migrations are NOT undone: releases
 *   must keep working on the newer schema (expand, then contract).
 * Abort: Ctrl-C: the lock is released and the colour that served before keeps serving.
 * On a swarm env: the same rolling update as deploy, to that release's images; no migration.
 * On-call page: docs/runbooks/rollback.md
 */

import {
  deliverStep,
  gatesStep,
  lockStep,
  markReleaseStep,
  recordStep,
  startStep,
  switchStep,
} from '../lib/release/steps.ts'
import { bySetup, releaseStrategy } from '../lib/release/strategy.ts'
import { chooseTarget } from '../lib/release/target.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'

export const rollback: RunbookSpec = {
  name: 'rollback',
  mutates: true,
  needs: () => ['ssh', 'app', 'registry', 'notify:rollback', 'error-tracking'],
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
        const strategy = releaseStrategy(ctx)
        await strategy.preconditions(ctx, await chooseTarget(ctx, strategy.historyHost(ctx)), 'rollback')
        return 'ok'
      },
    },
    lockStep('rollback'),
    deliverStep("Make sure the release's images are on every web host (a swarm: and its Docker secrets)"),
    startStep(
      'Start that release on the idle colour (its stopped containers when still there); wait until healthy (a swarm: a rolling update)',
      bySetup(
        'Fix the cause above and run the same command again.',
        'The release that served before this run still serves (or was put back). Look at the hosts now.',
      ),
    ),
    switchStep,
    gatesStep(
      'The release that served before was put back. The one you rolled back to is not healthy either: look at the hosts now.',
    ),
    recordStep('rollback'),
    markReleaseStep(),
  ],
}

if (isMain(import.meta.url)) await main(rollback)

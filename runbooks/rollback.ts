/**
 * rollback — back to the previous good release (or TO=<release>) in seconds.
 *
 * When: a release misbehaves after its gates passed, or the team decides to go back.
 * Changes: starts the previous release's colour (still there, stopped) or recreates it from that
 *   release's images, switches nginx to it, stops the other colour. Migrations are NOT undone: releases
 *   must keep working on the newer schema (expand, then contract).
 * Abort: Ctrl-C: the lock is released and the colour that served before keeps serving.
 * On a swarm env: the same rolling update as deploy, to that release's images (see swarmRollback).
 * On-call page: docs/runbooks/rollback.md
 */

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
import { remotePaths } from '../lib/env/host-paths.ts'
import type { HostSession } from '../lib/host/session.ts'
import { InputError } from '../lib/report/errors.ts'
import { print } from '../lib/report/output.ts'
import { stringArg } from '../lib/run/cli.ts'
import { type Context, isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { liveRelease, parseReleases, previousGood, readReleases } from '../lib/stack/releases.ts'
import { swarmHosts } from '../lib/swarm/hosts.ts'
import { deliverSwarmImages, swarmPreconditions } from '../lib/swarm/prepare.ts'
import { notifySwarmOutcome } from '../lib/swarm/roll.ts'
import {
  rollingUpdate,
  swarmGatesStep,
  swarmLock,
  swarmRecord,
  swarmSecretsStep,
} from '../lib/swarm/steps.ts'

const options: RunbookSpec['options'] = [
  {
    name: 'to',
    makeVar: 'TO',
    value: true,
    help: 'the release to go back to (default: the previous good one)',
  },
]

const CHOOSE = 'Choose the release to go back to, and check it can run'
const CHOOSE_NEXT = 'Nothing was changed. `make releases ENV=<env>` lists what can be rolled back to.'

/** TO=<release>, else the previous good one, from the history on `host` (the first host, the manager). */
async function chooseTarget(ctx: Context, host: HostSession | undefined): Promise<string> {
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
  print(`      rolling back from ${current ?? 'none'} to ${target.id}`)
  return target.id
}

/** On a swarm env: the same rolling update as deploy, to the chosen release's images; no migration. */
const swarmRollback: RunbookSpec = {
  name: 'rollback',
  mutates: true,
  options,
  steps: [
    {
      title: CHOOSE,
      next: CHOOSE_NEXT,
      async run(ctx) {
        const target = await chooseTarget(ctx, swarmHosts(ctx).manager)
        await swarmPreconditions(ctx, target, 'rollback')
        ctx.onCleanup(notifySwarmOutcome(ctx))
        return 'ok'
      },
    },
    swarmLock('rollback'),
    {
      title: "Make sure the release's images are on every web node",
      run: async (ctx) => ((await deliverSwarmImages(ctx)) ? 'changed' : 'ok'),
    },
    swarmSecretsStep,
    rollingUpdate(
      'The release that served before this run still serves (or was put back). Look at the hosts now.',
    ),
    swarmGatesStep(
      'The release that served before was put back. The one you rolled back to is not healthy either: look at the hosts now.',
    ),
    swarmRecord('rollback'),
  ],
}

export const rollback: RunbookSpec = {
  name: 'rollback',
  mutates: true,
  options,
  swarm: swarmRollback,
  steps: [
    {
      title: CHOOSE,
      next: CHOOSE_NEXT,
      async run(ctx) {
        const target = await chooseTarget(ctx, ctx.hosts[0])
        await checkPreconditions(ctx, target, 'rollback')
        ctx.onCleanup(notifyOutcome(ctx))
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

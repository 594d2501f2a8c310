import type { HostSession } from '../host/session.ts'
import { print, printErr } from '../report/output.ts'
import { takeDeployLock } from '../run/lock.ts'
import type { Context } from '../run/runbook.ts'
import { notifyOutcome } from './finish.ts'
import { checkPreconditions, dataServices, deliverImages, writeConfig } from './prepare.ts'
import { pruneImages } from './prune-images.ts'
import { state } from './state.ts'
import {
  alreadyRunning,
  cleanupOnFailure,
  migrate,
  postDeployGates,
  recordLive,
  startTarget,
  switchTraffic,
} from './switch.ts'

/**
 * How a release goes live, so deploy and rollback each have one step list: blue/green on one host
 * (colourRelease, below) or a rolling update of a Docker Swarm stack (lib/swarm/strategy.ts). Each
 * returns whether it changed anything; `switchTraffic` applies to blue/green only.
 */
export interface ReleaseStrategy {
  /** The host whose release history says what is live (the single host; the swarm's manager). */
  historyHost(ctx: Context): HostSession | undefined
  /** Everything checked before anything changes; registers the end-of-run notification. */
  preconditions(ctx: Context, release: string, action: 'deploy' | 'rollback'): Promise<void>
  /** The deploy lock on every host; a failure from here on puts back what served before. */
  lock(ctx: Context, action: 'deploy' | 'rollback' | 'rotate-secret'): Promise<void>
  /** The images to every host that runs them (a swarm: also the api's connection strings as Docker secrets). */
  deliver(ctx: Context): Promise<boolean>
  writeConfig(ctx: Context): Promise<boolean>
  dataServices(ctx: Context): Promise<boolean>
  migrate(ctx: Context): Promise<boolean>
  /** The new release running and healthy beside (blue/green) or in place of (rolling) the old one. */
  start(ctx: Context): Promise<boolean>
  switchTraffic(ctx: Context): Promise<boolean>
  /** false: nothing to check (a dry run). */
  gates(ctx: Context): Promise<boolean>
  /** The release history; the old colour drained and stopped, or unused secrets removed. */
  record(ctx: Context, note?: string): Promise<void>
}

/** The deploy lock, then the strategy's undo-on-failure: registered after the lock, it runs before the release. */
export function lockThenUndoOnFailure(undo: (ctx: Context) => () => Promise<void>): ReleaseStrategy['lock'] {
  return async (ctx, action) => {
    await takeDeployLock(ctx, action)
    ctx.onCleanup(undo(ctx))
  }
}

export const colourRelease: ReleaseStrategy = {
  historyHost: (ctx) => ctx.hosts[0],
  async preconditions(ctx, release, action) {
    await checkPreconditions(ctx, release, action)
    notifyOutcome(ctx)
  },
  lock: lockThenUndoOnFailure(cleanupOnFailure),
  // Inside the instant-rollback window the target colour runs the release: its images are there.
  deliver: async (ctx) => ((await alreadyRunning(ctx)) ? false : deliverImages(ctx)),
  writeConfig,
  dataServices,
  migrate,
  start: startTarget,
  switchTraffic,
  gates: postDeployGates,
  async record(ctx, note) {
    await recordLive(ctx, note)
    const s = state(ctx)
    print(`      ${s.release} is live on ${s.target}`)
    // The rollback target: the release that was live before this run.
    const previous = [...s.history].reverse().find((r) => r.outcome === 'live')?.id ?? null
    // Housekeeping after a deploy (a rollback adds no image): the release is live whatever happens
    // here, so a failure is reported, not fatal.
    if (s.action === 'deploy')
      await pruneImages(ctx.hosts, ctx.env, s.history, s.release, previous).catch((err: Error) =>
        printErr(`      old images not pruned (the release is live): ${err.message.split('\n')[0]}`),
      )
  },
}

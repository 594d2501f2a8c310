import { readReleases } from '../commands/health.ts'
import { stackContainersLeft, stackRemove } from '../commands/swarm.ts'
import type { AppPause } from '../deploy/pause.ts'
import { waitUntil } from '../deploy/wait.ts'
import { remotePaths } from '../env/host-paths.ts'
import { SERVICES, type Service } from '../env/load.ts'
import { EXIT, RunbookError } from '../report/errors.ts'
import { print, printErr } from '../report/output.ts'
import { perRun } from '../run/per-run.ts'
import type { Context } from '../run/runbook.ts'
import { liveRelease, parseReleases } from '../stack/releases.ts'
import { stackFiles } from './files.ts'
import { swarmHosts } from './hosts.ts'
import { runStackDeploy, waitForStack } from './roll.ts'

// A restore on a swarm env stops the app on every node (the stack is removed) and deploys the same
// stack again afterwards, from the files the last deploy left on the manager.

/** Removes the stack and waits until no node runs any of its tasks. */
export async function stopStack(ctx: Context): Promise<void> {
  const { manager, nodes } = swarmHosts(ctx)
  const stack = stackFiles(ctx.env).stack
  await manager.exec(stackRemove(stack))
  if (ctx.dryRun) return
  await waitUntil(`the tasks of ${stack} stopped on every node`, 120, async () => {
    const left: string[] = []
    for (const node of nodes) {
      const n = Number(
        (await node.exec(stackContainersLeft(stack), { probe: true, echo: false })).stdout.trim(),
      )
      if (n > 0) left.push(`${node.name}: ${n}`)
    }
    return left.length === 0 ? true : left.join(', ')
  })
  print(`      ${stack} removed: no node runs the app (every domain shows the maintenance page)`)
}

/** Deploys the stack again with the live release (as the last deploy wrote it) and waits until every node runs it. */
export async function startStack(ctx: Context): Promise<void> {
  const { manager } = swarmHosts(ctx)
  await runStackDeploy(ctx)
  if (ctx.dryRun) return
  const history = parseReleases(
    (await manager.exec(readReleases(remotePaths(ctx.env).releases), { probe: true, echo: false })).stdout,
  )
  const live = liveRelease(history)
  if (!live)
    throw new RunbookError('no live release in the history on the manager: make deploy', EXIT.stepFailed)
  await waitForStack(ctx, live.images as Record<Service, string>)
  print(`      ${live.id} runs on every node again`)
}

const restarted = perRun<true>('stack restarted')

/** The app of a swarm env, paused for a restore: the stack removed on every node, deployed again after. */
export const stackPause: AppPause = {
  // The stack is removed whole: every service shows the maintenance page meanwhile.
  services: () => [...SERVICES],
  async stop(ctx) {
    // However the run ends from here, the stack is deployed again (unless the start step already did).
    ctx.onCleanup(async () => {
      if (!restarted.maybe(ctx) && !ctx.dryRun)
        await startStack(ctx).catch((e: Error) => printErr(`  could not start the stack again: ${e.message}`))
    })
    await stopStack(ctx)
  },
  async start(ctx) {
    await startStack(ctx)
    restarted.set(ctx, true)
  },
  webHosts: (ctx) => swarmHosts(ctx).nodes,
}

import { takeDeployLock } from '../run/lock.ts'
import type { Step } from '../run/runbook.ts'
import { swarmSecrets } from './prepare.ts'
import { recordSwarmRelease, rollStack, swarmCleanupOnFailure, swarmGates } from './roll.ts'

// The steps a swarm deploy and rollback share, each a call into the swarm library.

export function swarmLock(runbook: 'deploy' | 'rollback'): Step {
  return {
    title: 'Take the deploy lock on every host',
    next: 'Another run holds the lock (see above). Nothing was changed.',
    async run(ctx) {
      await takeDeployLock(ctx, runbook)
      // Registered after the lock: cleanups run in reverse, so this one runs before the lock is released.
      ctx.onCleanup(swarmCleanupOnFailure(ctx))
      return 'changed'
    },
  }
}

export const swarmSecretsStep: Step = {
  title: "The api's connection strings as Docker secrets (named by a hash, values on stdin)",
  run: async (ctx) => ((await swarmSecrets(ctx)) ? 'changed' : 'ok'),
}

export function rollingUpdate(next: string): Step {
  return {
    title: 'Rolling update: docker stack deploy, one node at a time, each task healthy before the next',
    next,
    run: async (ctx) => ((await rollStack(ctx)) ? 'changed' : 'ok'),
  }
}

export function swarmGatesStep(next: string): Step {
  return {
    title: "Gates through every web node's nginx: health of every domain, API p95",
    next,
    run: async (ctx) => ((await swarmGates(ctx)) ? 'ok' : 'skipped'),
  }
}

export function swarmRecord(note?: string): Step {
  return {
    title: 'Record the release on every host; remove Docker secrets no release uses',
    run: async (ctx) => {
      await recordSwarmRelease(ctx, 'live', note)
      return 'changed'
    },
  }
}

import { print } from '../report/output.ts'
import { takeDeployLock } from '../run/lock.ts'
import type { Step } from '../run/runbook.ts'
import { deliverImages } from './prepare.ts'
import { state } from './state.ts'
import {
  cleanupOnFailure,
  postDeployGates,
  recordRelease,
  retireOld,
  startTarget,
  switchTraffic,
} from './switch.ts'

// The steps deploy and rollback share, each a call into the deploy library.

export function takeLock(runbook: 'deploy' | 'rollback'): Step {
  return {
    title: 'Take the deploy lock',
    next: 'Another run holds the lock (see above). Nothing was changed.',
    async run(ctx) {
      await takeDeployLock(ctx, runbook)
      // Registered after the lock: cleanups run in reverse, so this one runs before the lock is released.
      ctx.onCleanup(cleanupOnFailure(ctx))
      return 'changed'
    },
  }
}

export function deliver(title: string): Step {
  return { title, run: async (ctx) => ((await deliverImages(ctx)) ? 'changed' : 'ok') }
}

export function startIdleColour(title: string, next?: string): Step {
  return {
    title,
    ...(next ? { next } : {}),
    run: async (ctx) => ((await startTarget(ctx)) ? 'changed' : 'ok'),
  }
}

export const switchNginx: Step = {
  title: 'Switch nginx to the new colour (nginx -t, graceful reload, wait until it serves)',
  run: async (ctx) => ((await switchTraffic(ctx)) ? 'changed' : 'ok'),
}

export function gates(next: string): Step {
  return {
    title: 'Gates through nginx: health of every domain, API p95 under health.api_p95_ms',
    next,
    run: async (ctx) => ((await postDeployGates(ctx)) ? 'ok' : 'skipped'),
  }
}

export function recordAndRetire(note?: string): Step {
  return {
    title: 'Record the release; drain and stop the other colour (kept for rollback)',
    async run(ctx) {
      await recordRelease(ctx, 'live', note)
      const s = state(ctx)
      s.finished = true
      await retireOld(ctx)
      print(`      ${s.release} is live on ${s.target}`)
      return 'changed'
    },
  }
}

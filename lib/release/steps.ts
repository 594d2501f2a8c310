import { changedIf, type Step } from '../run/runbook.ts'
import { releaseStrategy } from './strategy.ts'

// The steps deploy and rollback share. Each calls the env's release strategy (blue/green on one host,
// a rolling update on a swarm), so one step list serves both; a step that applies to one only says so.

export const NOTHING_CHANGED = 'Nothing was changed. Fix what is listed, then run the same command again.'

export function lockStep(action: 'deploy' | 'rollback'): Step {
  return {
    title: 'Take the deploy lock on every host',
    next: 'Another run holds the lock (see above). Nothing was changed.',
    async run(ctx) {
      await releaseStrategy(ctx).lock(ctx, action)
      return 'changed'
    },
  }
}

export function deliverStep(title: string): Step {
  return { title, run: async (ctx) => changedIf(await releaseStrategy(ctx).deliver(ctx)) }
}

export function startStep(title: string, next?: Step['next']): Step {
  return {
    title,
    ...(next ? { next } : {}),
    run: async (ctx) => changedIf(await releaseStrategy(ctx).start(ctx)),
  }
}

export const switchStep: Step = {
  title: 'Switch nginx to the new colour (its flag file, read per request: no reload; wait until it serves)',
  skip: (ctx) =>
    !!ctx.env.swarm && "a swarm: each node's nginx sends to its own task, the update moved traffic",
  run: async (ctx) => changedIf(await releaseStrategy(ctx).switchTraffic(ctx)),
}

export function gatesStep(next: string): Step {
  return {
    title: 'Gates through nginx on every web host: health of every domain, API p95 under health.api_p95_ms',
    next,
    run: async (ctx) => ((await releaseStrategy(ctx).gates(ctx)) ? 'ok' : 'skipped'),
  }
}

export function recordStep(note?: string): Step {
  return {
    title:
      'Record the release; stop the other colour after a drain (kept for rollback) or remove unused secrets',
    async run(ctx) {
      await releaseStrategy(ctx).record(ctx, note)
      return 'changed'
    },
  }
}

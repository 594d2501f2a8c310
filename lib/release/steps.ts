import { maybeState } from '../deploy/state.ts'
import { print, printErr } from '../report/output.ts'
import { changedIf, type Step } from '../run/runbook.ts'
import { markRequests, sendMarks } from './error-tracking.ts'
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

/**
 * The release and a deploy marker for this env at the Sentry-compatible service (error_tracking), so
 * the app's error reports line up with what went live. The release is live by now: a service that does
 * not answer is reported and audited, never a failed run.
 */
export function markReleaseStep(): Step {
  return {
    title: 'Mark the release and this deploy in error tracking (error_tracking: a Sentry-compatible service)',
    skip: (ctx) => (ctx.env.errorTracking ? false : 'no error_tracking in the env file'),
    async run(ctx) {
      const config = ctx.env.errorTracking
      const s = maybeState(ctx)
      if (!config || !s || (!s.finished && !ctx.dryRun)) return 'skipped'
      const requests = markRequests(config, ctx.env.name, s.release, new Date(s.started), new Date())
      if (ctx.dryRun) {
        for (const r of requests)
          print(`      dry run: ${r.method} ${config.api}${r.path} ${JSON.stringify(r.body)}`)
        return 'dry-run'
      }
      try {
        const [created] = await sendMarks(config, ctx.secrets[config.tokenSecret] ?? '', requests)
        print(
          `      ${s.release}: release ${created === 201 ? 'created' : 'already there'}, deploy marker for ${ctx.env.name} added (${config.api}, ${config.org})`,
        )
        ctx.auditEvent(
          `error tracking: release ${s.release} and a deploy marker for ${ctx.env.name} at ${config.api}`,
        )
        return 'changed'
      } catch (err) {
        const reason = (err as Error).message.split('\n')[0]
        printErr(`      not marked in error tracking (${s.release} is live all the same): ${reason}`)
        ctx.auditEvent(`error tracking: release ${s.release} not marked: ${reason}`)
        return 'ok'
      }
    },
  }
}

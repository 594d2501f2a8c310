import { ciRunUrl, whoAmI } from '../audit.ts'
import { notify, reportNotifyResults } from '../notify.ts'
import type { Context } from '../runbook.ts'
import { maybeState } from './state.ts'

/** The last thing a deploy or rollback does, however it ended: tell the team. Never fails the run. */
export function notifyOutcome(ctx: Context): () => Promise<void> {
  return async () => {
    const s = maybeState(ctx)
    if (!s || ctx.dryRun || ctx.env.notify.length === 0) return
    const outcome = s.finished ? 'success' : 'failed'
    const failure = ctx.failure()
    const results = await notify(ctx.env.notify, ctx.secrets, {
      event: s.action,
      env: ctx.env.name,
      outcome,
      title: `${s.action} of ${s.release} to ${ctx.env.name}: ${outcome}`,
      release: s.release,
      who: whoAmI(),
      duration_s: Math.round((Date.now() - s.started) / 1000),
      link: ciRunUrl(),
      runbook: `docs/runbooks/${s.action}.md`,
      ...(failure && !s.finished
        ? {
            details: [
              `step "${failure.step}" failed: ${failure.message}`,
              nextAfterFailure(ctx, s.switched, s.live),
            ],
          }
        : {}),
    })
    reportNotifyResults(results)
  }
}

function nextAfterFailure(ctx: Context, switched: boolean, live: string | null): string {
  const status = `make status ENV=${ctx.env.name}`
  if (!live) return `nothing was serving before this run; fix the failure and deploy again (${status})`
  return switched
    ? `traffic was switched back to ${live}; check ${status}`
    : `${live} kept serving, nothing to undo; check ${status}`
}

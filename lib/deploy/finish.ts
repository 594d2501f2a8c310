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
    })
    reportNotifyResults(results)
  }
}

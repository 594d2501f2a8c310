import { notifyOnEnd } from '../notify/run-outcome.ts'
import type { Context } from '../run/runbook.ts'
import { maybeState } from './state.ts'

/** The last thing a deploy or rollback does, however it ended: tell the team. Never fails the run. */
export function notifyOutcome(ctx: Context): void {
  notifyOnEnd(ctx, () => {
    const s = maybeState(ctx)
    if (!s) return undefined
    const outcome = s.finished ? 'success' : 'failed'
    return {
      event: s.action,
      ok: s.finished,
      title: `${s.action} of ${s.release} to ${ctx.env.name}: ${outcome}`,
      release: s.release,
      durationS: (Date.now() - s.started) / 1000,
      runbook: `docs/runbooks/${s.action}.md`,
      next: [nextAfterFailure(ctx, s.switched, s.live)],
    }
  })
}

function nextAfterFailure(ctx: Context, switched: boolean, live: string | null): string {
  const status = `make status ENV=${ctx.env.name}`
  if (!live) return `nothing was serving before this run; fix the failure and deploy again (${status})`
  return switched
    ? `traffic was switched back to ${live}; check ${status}`
    : `${live} kept serving, nothing to undo; check ${status}`
}

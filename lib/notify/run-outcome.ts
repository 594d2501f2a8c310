import { ciRunUrl, whoAmI } from '../run/audit.ts'
import type { Context } from '../run/runbook.ts'
import { notify, reportNotifyResults } from './send.ts'

/**
 * Tells the team how a runbook run ended (deploy, rollback, backup, restore), as the last thing it
 * does: who, how long, the CI link, and on failure the step that failed plus any `next` lines.
 * Never fails the run (lib/notify/send.ts reports a webhook that is down).
 */
export interface RunOutcome {
  event: string
  ok: boolean
  title: string
  release?: string
  durationS: number
  runbook: string
  /** Added after the failed step's line when the run failed. */
  next?: string[]
}

/**
 * However the run ends, the team hears of it, as the run's last cleanup: `describe` reads the run's
 * state then (undefined: the run did not get far enough to have anything to say).
 */
export function notifyOnEnd(ctx: Context, describe: () => RunOutcome | undefined): void {
  ctx.onCleanup(async () => {
    const run = describe()
    if (run) await notifyRunOutcome(ctx, run)
  })
}

export async function notifyRunOutcome(ctx: Context, run: RunOutcome): Promise<void> {
  if (ctx.dryRun || ctx.env.notify.length === 0) return
  const failure = ctx.failure()
  reportNotifyResults(
    await notify(ctx.env.notify, ctx.secrets, {
      event: run.event,
      env: ctx.env.name,
      outcome: run.ok ? 'success' : 'failed',
      title: run.title,
      ...(run.release ? { release: run.release } : {}),
      who: whoAmI(),
      duration_s: Math.round(run.durationS),
      link: ciRunUrl(),
      runbook: run.runbook,
      ...(failure && !run.ok
        ? { details: [`step "${failure.step}" failed: ${failure.message}`, ...(run.next ?? [])] }
        : {}),
    }),
  )
}

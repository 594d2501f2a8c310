import { notifyOnEnd } from '../notify/run-outcome.ts'
import { print, table } from '../report/output.ts'
import type { Context } from '../run/runbook.ts'
import { maybeRestore } from './restore-state.ts'

// The end of a restore or a drill: the timings and what was restored, and the team's notification.
export const isDrill = (ctx: Context): boolean => ctx.args.drill === true
const totalS = (timings: Record<string, number>) => Object.values(timings).reduce((a, b) => a + b, 0)

export function reportRestore(ctx: Context): void {
  const r = maybeRestore(ctx)
  if (!r || ctx.dryRun) return
  print(table([['phase', 'seconds'], ...Object.entries(r.timings).map(([p, s]) => [p, String(s)])]))
  const total = totalS(r.timings)
  const rows = r.pitr?.rows ?? r.manifest.postgres.rows
  // What was restored: a backup, or a point in time (the base of a backup, replayed).
  const what = r.pitr
    ? `${r.pitr.target} (backup ${r.entry.id}'s base replayed to ${r.pitr.replayedTo || 'its end'})`
    : `backup ${r.entry.id}`
  print(
    isDrill(ctx)
      ? `      DRILL passed: ${what} restores (${rows} rows, ${r.manifest.redis.keys} keys verified${r.pitr?.canary ? `, canary of ${r.pitr.canary} found` : ''}) in ${total.toFixed(1)} s; nothing live was changed`
      : `      restored ${what}: ${rows} rows, ${r.manifest.redis.keys} keys; previous database kept as ${r.keptAs}`,
  )
  print(
    `restore-summary ${JSON.stringify({ backup: r.entry.id, ...(r.pitr ? { at: r.pitr.target, replayed_to: r.pitr.replayedTo ?? null, canary: r.pitr.canary ?? null } : {}), drill: isDrill(ctx), rows_verified: rows, redis_keys: r.manifest.redis.keys, timings_s: r.timings })}`,
  )
}

export function notifyRestore(ctx: Context): void {
  notifyOnEnd(ctx, () => {
    const r = maybeRestore(ctx)
    if (!r) return undefined
    const ok = ctx.failure() === null
    return {
      event: 'restore',
      ok,
      title: `${isDrill(ctx) ? 'restore drill' : 'restore'} of ${r.pitr ? `${ctx.env.name} to ${r.pitr.target} (backup ${r.entry.id}'s base)` : `backup ${r.entry.id} to ${ctx.env.name}`}: ${ok ? 'success' : 'failed'}`,
      durationS: totalS(r.timings),
      runbook: 'docs/runbooks/restore.md',
    }
  })
}

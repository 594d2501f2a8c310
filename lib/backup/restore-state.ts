import type { Context } from '../run/runbook.ts'
import type { RestoreRun } from './restore.ts'

// The restore a run is doing, shared by its steps.
const runs = new WeakMap<Context, RestoreRun>()

export function setRestore(ctx: Context, run: RestoreRun): void {
  runs.set(ctx, run)
}

export function maybeRestore(ctx: Context): RestoreRun | undefined {
  return runs.get(ctx)
}

export function restoreRun(ctx: Context): RestoreRun {
  const run = runs.get(ctx)
  if (!run) throw new Error('restore state missing: the first step did not run')
  return run
}

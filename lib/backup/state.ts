import type { Context } from '../run/runbook.ts'
import type { BackupRun } from './take.ts'

// The backup a run is taking, shared by its steps (like lib/deploy/state.ts for deploys).
const runs = new WeakMap<Context, BackupRun>()

export function setRun(ctx: Context, run: BackupRun): void {
  runs.set(ctx, run)
}

export function maybeRun(ctx: Context): BackupRun | undefined {
  return runs.get(ctx)
}

export function backupRun(ctx: Context): BackupRun {
  const run = runs.get(ctx)
  if (!run) throw new Error('backup state missing: the first step did not run')
  return run
}

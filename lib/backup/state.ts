import { perRun } from '../run/per-run.ts'
import type { BackupRun } from './take.ts'

// The backup a run is taking, shared by its steps (like lib/deploy/state.ts for deploys).
const runs = perRun<BackupRun>('backup state')
export const setRun = runs.set
export const maybeRun = runs.maybe
export const backupRun = runs.get

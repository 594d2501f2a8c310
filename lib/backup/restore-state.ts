import { perRun } from '../run/per-run.ts'
import type { RestoreRun } from './restore.ts'

// The restore a run is doing, shared by its steps.
const runs = perRun<RestoreRun>('restore state')
export const setRestore = runs.set
export const maybeRestore = runs.maybe
export const restoreRun = runs.get

/**
 * The runs in progress in this process, outermost first (emergency runs deploy, restore... inside
 * itself), and what a SIGINT or SIGTERM does to them.
 */

import { EXIT } from '../report/errors.ts'

export type StopSignal = 'SIGINT' | 'SIGTERM'

export interface Interruptible {
  /** Marks the run interrupted, at once: a step that fails from now on failed because of the signal. */
  interrupt(signal: StopSignal): void
  /** Stops what the run has going on its hosts, then finishes it (cleanups, audit): its exit code. */
  stop(): Promise<number>
}

const running: Interruptible[] = []

/** Registers a run; true when it is the outermost (the one that listens for signals). */
export function enter(run: Interruptible): boolean {
  running.push(run)
  return running.length === 1
}

export function leave(run: Interruptible): void {
  const i = running.indexOf(run)
  if (i >= 0) running.splice(i, 1)
}

/**
 * Every run is marked interrupted before any is stopped: an inner run that ends because of the
 * signal must not read, to the outer run's step waiting on it, as an ordinary failure (the outer
 * run's audit record would say "failed"). Then they stop innermost first, so each releases what it
 * holds before its caller does. The exit code is the outermost run's.
 */
export async function stopAll(signal: StopSignal, runs: Interruptible[] = running): Promise<number> {
  const now = [...runs]
  for (const run of now) run.interrupt(signal)
  let code: number = signal === 'SIGINT' ? EXIT.interrupted : EXIT.terminated
  for (const run of now.reverse()) code = await run.stop()
  return code
}

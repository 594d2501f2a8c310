import type { RunContext } from './step.ts'

/** A value one run's steps share (its plan, its chosen colour...): set by the step that makes it, read by the rest. */
export interface PerRun<T> {
  set(ctx: RunContext, value: T): void
  /** The value; throws when the step that sets it has not run (a bug in the step list, not bad input). */
  get(ctx: RunContext): T
  maybe(ctx: RunContext): T | undefined
}

export function perRun<T>(what: string): PerRun<T> {
  const values = new WeakMap<RunContext, T>()
  return {
    set: (ctx, value) => void values.set(ctx, value),
    get(ctx) {
      const value = values.get(ctx)
      if (value === undefined) throw new Error(`${what} missing: the step that sets it did not run`)
      return value
    },
    maybe: (ctx) => values.get(ctx),
  }
}

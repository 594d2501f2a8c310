import type { Context } from './runbook.ts'

/** A value one run's steps share (its plan, its chosen colour...): set by the step that makes it, read by the rest. */
export interface PerRun<T> {
  set(ctx: Context, value: T): void
  /** The value; throws when the step that sets it has not run (a bug in the step list, not bad input). */
  get(ctx: Context): T
  maybe(ctx: Context): T | undefined
}

export function perRun<T>(what: string): PerRun<T> {
  const values = new WeakMap<Context, T>()
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

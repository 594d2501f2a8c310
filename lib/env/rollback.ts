import type { Validator } from './validate.ts'

// The `rollback:` section: how long the previous release keeps running after a deploy, so that a
// rollback inside that window is only an nginx switch (seconds), not a start of stopped containers.
export interface RollbackConfig {
  /** Minutes the previous colour keeps running after a deploy; 0: stopped after the drain, as before. */
  instantWindowMin: number
}

export const DEFAULT_INSTANT_WINDOW_MIN = 30

export function readRollback(v: Validator, raw: unknown): RollbackConfig {
  const r = v.object(raw ?? {}, 'rollback', ['instant_window_min'])
  return {
    instantWindowMin:
      v.integer(r, 'instant_window_min', 'rollback', {
        min: 0,
        max: 24 * 60,
        default: DEFAULT_INSTANT_WINDOW_MIN,
      }) ?? DEFAULT_INSTANT_WINDOW_MIN,
  }
}

import { join } from 'node:path'
import type { RunbookSpec } from '../../lib/run/runbook.ts'
import { runCaptured } from './test-bed.ts'

/**
 * Runs a runbook that needs no host on the env `ci` whose file is in `dir` (its audit records beside it),
 * with `vars` (its secrets) in the process environment for the run; the output is captured, and the
 * environment and the output sinks are put back as they were.
 */
export async function runOnFixtureEnv(
  spec: RunbookSpec,
  dir: string,
  args: string[],
  vars: Record<string, string> = {},
): Promise<{ code: number; out: string }> {
  const set: Record<string, string> = { CE_ENV_DIR: dir, AUDIT_DIR: join(dir, 'audit'), ...vars }
  const saved = Object.fromEntries(Object.keys(set).map((k) => [k, process.env[k]]))
  Object.assign(process.env, set)
  try {
    return await runCaptured(spec, ['--env', 'ci', ...args])
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
}

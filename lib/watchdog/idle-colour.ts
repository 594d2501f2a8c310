import type { IdleSeen } from '../commands/flag-file.ts'
import type { CheckResult } from '../notify/alerts.ts'
import type { Exec } from './exec.ts'

// The instant-rollback window: after a deploy the previous colour keeps running until the `until=` its
// file names (deploy writes it; rollback.instant_window_min), so a rollback is an nginx switch. Once
// the window is over, the watchdog stops that colour's containers (kept, stopped, for a slower
// rollback) and removes the file. Never while paused (a runbook holds the lock), never the live colour.

export type IdleAction =
  | { kind: 'none' }
  | { kind: 'forget' }
  | { kind: 'keep'; result: CheckResult }
  | { kind: 'stop' }

/** What to do with the idle colour this run. Pure. */
export function idleVerdict(
  seen: IdleSeen | undefined,
  fileExists: boolean,
  live: string | undefined,
  now: Date,
): IdleAction {
  if (!fileExists) return { kind: 'none' }
  // Unreadable, or the colour went live again (a rollback into the window): nothing to stop.
  if (!seen || seen.colour === live) return { kind: 'forget' }
  if (now.getTime() < seen.untilMs)
    return {
      kind: 'keep',
      result: {
        check: 'idle-colour',
        ok: true,
        detail: `${seen.colour}${seen.release ? ` (${seen.release})` : ''} kept running until ${new Date(seen.untilMs).toISOString()}: a rollback before then is an nginx switch`,
        runbook: 'docs/runbooks/rollback.md',
      },
    }
  return { kind: 'stop' }
}

/** Stops the project's running containers (docker stop: kept for a later rollback). */
export async function stopProjectContainers(
  exec: Exec,
  project: string,
): Promise<{ ok: boolean; detail: string }> {
  const ps = await exec('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`])
  if (ps.code !== 0) return { ok: false, detail: `docker ps: ${ps.stderr.trim().slice(0, 200)}` }
  const ids = ps.stdout
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean)
  if (ids.length === 0) return { ok: true, detail: `${project}: nothing running` }
  const stop = await exec('docker', ['stop', '-t', '10', ...ids], 60_000)
  return stop.code === 0
    ? {
        ok: true,
        detail: `stopped ${ids.length} container(s) of ${project} after the instant-rollback window`,
      }
    : { ok: false, detail: `docker stop: ${stop.stderr.trim().slice(0, 200)}` }
}

export { parseIdleColour } from '../commands/flag-file.ts'

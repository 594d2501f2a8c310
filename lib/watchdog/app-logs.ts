import type { WatchdogFile } from '../commands/watchdog.ts'
import { parseReleases } from '../stack/releases.ts'
import { type AppError, appErrors } from './error-signatures.ts'
import type { Exec } from './exec.ts'

// What error tracking reads on the host: the app containers' logs since the last run (both colours'
// running containers: during a switch both serve), and the live release from the release record.

/** Running app containers (never the data project's) and the service each runs. */
export async function appContainers(
  exec: Exec,
  cfg: Pick<WatchdogFile, 'projects'>,
): Promise<{ id: string; service: string }[]> {
  const out: { id: string; service: string }[] = []
  for (const project of [cfg.projects.blue, cfg.projects.green]) {
    const ps = await exec('docker', [
      'ps',
      '--filter',
      `label=com.docker.compose.project=${project}`,
      '--format',
      '{{.ID}} {{.Label "com.docker.compose.service"}}',
    ])
    if (ps.code !== 0) continue
    for (const line of ps.stdout.split('\n')) {
      const [id, service] = line.trim().split(/\s+/)
      if (id && service) out.push({ id, service })
    }
  }
  return out
}

/** Every app container's error lines since `since` (stdout and stderr: Rust panics go to stderr). */
export async function collectAppErrors(
  exec: Exec,
  cfg: Pick<WatchdogFile, 'projects'>,
  since: Date,
): Promise<{ errors: AppError[]; unread: string[] }> {
  const errors: AppError[] = []
  const unread: string[] = []
  for (const c of await appContainers(exec, cfg)) {
    const logs = await exec('docker', ['logs', '--since', since.toISOString(), c.id], 30_000)
    if (logs.code !== 0) {
      unread.push(`${c.service} (${c.id}): ${logs.stderr.trim().split('\n')[0] ?? `exit ${logs.code}`}`)
      continue
    }
    errors.push(...appErrors(c.service, logs.stdout), ...appErrors(c.service, logs.stderr))
  }
  return { errors, unread }
}

/** The live release: the newest record that went live (deploy or rollback), or null. */
export function liveRelease(recordText: string): string | null {
  return (
    parseReleases(recordText)
      .filter((r) => r.outcome === 'live')
      .at(-1)?.id ?? null
  )
}

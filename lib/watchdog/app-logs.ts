import { stackName } from '../commands/swarm.ts'
import type { WatchdogFile } from '../commands/watchdog.ts'
import { SERVICES } from '../env/terms.ts'
import { type AppError, appErrors } from './error-signatures.ts'
import type { Exec } from './exec.ts'

// What error tracking reads on the host: the app containers' logs since the last run (both colours'
// running containers: during a switch both serve; a swarm node's stack tasks).

const APP_SERVICES = new Set<string>(SERVICES)

/**
 * Running app containers (never Postgres' or Redis') and the service each runs: both colours' Compose
 * projects, and on a swarm env's node the stack's tasks (`ce-<env>_api` runs api).
 */
export async function appContainers(
  exec: Exec,
  cfg: Pick<WatchdogFile, 'projects' | 'env'>,
): Promise<{ id: string; service: string }[]> {
  const out: { id: string; service: string }[] = []
  const stack = stackName(cfg.env)
  const sources = [
    ...[cfg.projects.blue, cfg.projects.green].map((p) => ({
      filter: `label=com.docker.compose.project=${p}`,
      format: '{{.ID}} {{.Label "com.docker.compose.service"}}',
      prefix: '',
    })),
    {
      filter: `label=com.docker.stack.namespace=${stack}`,
      format: '{{.ID}} {{.Label "com.docker.swarm.service.name"}}',
      prefix: `${stack}_`,
    },
  ]
  for (const { filter, format, prefix } of sources) {
    const ps = await exec('docker', ['ps', '--filter', filter, '--format', format])
    if (ps.code !== 0) continue
    for (const line of ps.stdout.split('\n')) {
      const [id, name] = line.trim().split(/\s+/)
      const service = name?.startsWith(prefix) ? name.slice(prefix.length) : undefined
      if (id && service && APP_SERVICES.has(service)) out.push({ id, service })
    }
  }
  return out
}

/** Every app container's error lines since `since` (stdout and stderr: Rust panics go to stderr). */
export async function collectAppErrors(
  exec: Exec,
  cfg: Pick<WatchdogFile, 'projects' | 'env'>,
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

import { REMOTE_AUDIT_LOG } from './audit.ts'
import type { Env } from './env.ts'

/** Where things live on a host: one place, so every runbook agrees. */
export function remotePaths(env: Env) {
  const base = `/srv/conciliaextrato/${env.name}`
  return {
    base,
    releases: `${base}/releases.jsonl`,
    currentRelease: `${base}/current-release`,
    lock: `${base}/deploy.lock`,
    logs: '/var/log/conciliaextrato',
    audit: REMOTE_AUDIT_LOG,
  }
}

export type RemotePaths = ReturnType<typeof remotePaths>

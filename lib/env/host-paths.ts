import type { Env } from './load.ts'

/** The audit log every runbook appends to on a host. */
export const REMOTE_AUDIT_LOG = '/var/log/conciliaextrato/audit.log'

/** Where things live on a host: one place, so every runbook agrees. */
export function remotePaths(env: Pick<Env, 'name'>) {
  const base = `/srv/conciliaextrato/${env.name}`
  return {
    base,
    releases: `${base}/releases.jsonl`,
    /** The data project's variables, passwords included (deploy writes them: lib/stack/files.ts dataEnv). */
    dataEnv: `${base}/data.env`,
    currentRelease: `${base}/current-release`,
    lock: `${base}/deploy.lock`,
    /** The on-call's maintenance flag: while it is there (and not past its until=), the watchdog leaves containers alone. */
    maintenance: `${base}/maintenance`,
    /** The previous colour deploy left running (colour=, release=, until=): the watchdog stops it after until. */
    idleColour: `${base}/idle-colour`,
    logs: '/var/log/conciliaextrato',
    audit: REMOTE_AUDIT_LOG,
  }
}

export type RemotePaths = ReturnType<typeof remotePaths>

import { heartbeatSlug } from '../env/heartbeat.ts'
import type { Env } from '../env/load.ts'

// The dead man's switch's checks: one per job that must keep coming, named <env>-<job>. The watchdog
// pings each run (a period of watchdog.interval_s); each scheduled workflow job pings when it succeeds
// (.github/workflows/scheduled.yml, whose crons test/unit/heartbeat.test.ts holds to this table). Pure.
export interface HeartbeatJob {
  /** The check's slug, and the last part of its ping URL: <env>-<job>. */
  slug: string
  job: string
  /** What the job is and what its silence means, shown in the service's UI and in its alerts. */
  desc: string
  /** A period in seconds, or a cron schedule (UTC): exactly one of the two. */
  timeoutS?: number
  schedule?: string
  graceS: number
}

/**
 * GitHub runs schedules best-effort (late, or dropped under load): the grace covers a late run; a
 * dropped one is what the switch is for. Only the envs in the workflow's matrix run them.
 */
export const SCHEDULED = [
  { job: 'health', schedule: '*/15 * * * *', graceS: 1800, what: 'make health from GitHub Actions' },
  { job: 'backup', schedule: '17 3 * * *', graceS: 7200, what: 'the daily make backup' },
  { job: 'restore-drill', schedule: '41 4 * * 1', graceS: 7200, what: 'the weekly restore drill' },
  { job: 'security-scan', schedule: '23 5 * * 3', graceS: 7200, what: 'the weekly security scan' },
  { job: 'uptime', schedule: '7 6 1 * *', graceS: 86400, what: 'the monthly uptime report' },
] as const
export const SCHEDULED_ENVS = ['staging', 'production']

export function heartbeatJobs(env: Pick<Env, 'name' | 'kind' | 'watchdog' | 'heartbeat'>): HeartbeatJob[] {
  if (!env.heartbeat) return []
  const min = env.kind === 'local' ? 1 : 60
  const watchdog: HeartbeatJob = {
    slug: heartbeatSlug(env.name, 'watchdog'),
    job: 'watchdog',
    desc: `The host watchdog of ${env.name} (every ${env.watchdog.intervalS} s). Silent: the droplet, its timer or its Node is down; page: docs/runbooks/heartbeats.md`,
    timeoutS: Math.max(env.watchdog.intervalS, min),
    graceS: env.heartbeat.graceS,
  }
  const scheduled = SCHEDULED_ENVS.includes(env.name)
    ? SCHEDULED.map((s) => ({
        slug: heartbeatSlug(env.name, s.job),
        job: s.job,
        desc: `${s.what} of ${env.name} (.github/workflows/scheduled.yml, ${s.schedule} UTC). Silent: GitHub dropped it or it failed; page: docs/runbooks/heartbeats.md`,
        schedule: s.schedule,
        graceS: s.graceS,
      }))
    : []
  return [watchdog, ...scheduled]
}

/** In words, for make heartbeats' plan: `every 60 s, grace 120 s` or `17 3 * * * UTC, grace 7200 s`. */
export function describeCheck(job: HeartbeatJob): string {
  return `${job.schedule !== undefined ? `${job.schedule} UTC` : `every ${job.timeoutS} s`}, grace ${job.graceS} s`
}

/** Whether the service's check (by its name) is missing or set otherwise than the job wants. */
export function differs(
  job: HeartbeatJob,
  have:
    | { grace: number; timeout?: number; schedule?: string; tz?: string; desc?: string; slug?: string }
    | undefined,
): boolean {
  if (!have) return true
  const period =
    job.schedule !== undefined
      ? have.schedule === job.schedule && have.tz === 'UTC'
      : have.timeout === job.timeoutS
  return !period || have.grace !== job.graceS || have.desc !== job.desc || have.slug !== job.slug
}

import type { Validator } from './validate.ts'

// The `health:`, `watchdog:` and `alerts:` sections: thresholds of every check, the host watchdog,
// and how alerts behave. Every threshold has a default, so an env file may leave them out.
export interface HealthConfig {
  path: string
  timeoutS: number
  apiP95Ms: number
  /** Requests in the API latency burst. */
  burst: number
  certMinDays: number
  diskMinFreePct: number
  memMinFreePct: number
  /** The newest verified backup must be younger than this (when the env has backups). */
  backupMaxAgeH: number
  /** Also probe every domain through the public edge (Cloudflare) from the runbook machine. */
  edge: boolean
  /** The DNS server (host:port) those probes resolve names with; absent: the system's. */
  edgeResolver?: string
}

export interface WatchdogConfig {
  intervalS: number
  /** Restarts of one container within the window before the watchdog stops trying and alerts. */
  maxRestarts: number
  restartWindowMin: number
  /**
   * Other envs whose public domains this env's watchdog also probes from outside (staging watches
   * production, production watches staging): a dead droplet is seen by the other one.
   */
  watch: string[]
}

export interface AlertsConfig {
  /** Consecutive failed runs of a check before it alerts (no storm from one blip). */
  failureThreshold: number
  /** While still failing, a reminder this often. */
  reminderMin: number
  /** Alert when the API's p95 exceeds its baseline by this factor. */
  p95DegradeFactor: number
  /** 5xx responses per minute through nginx above which it alerts. */
  max5xxPerMin: number
}

export function readHealth(v: Validator, raw: unknown): HealthConfig {
  const h = v.object(raw ?? {}, 'health', [
    'path',
    'timeout_s',
    'api_p95_ms',
    'burst',
    'cert_min_days',
    'disk_min_free_pct',
    'mem_min_free_pct',
    'backup_max_age_h',
    'edge',
    'edge_resolver',
  ])
  const int = (k: string, min: number, max: number, d: number) =>
    v.integer(h, k, 'health', { min, max, default: d }) ?? d
  return {
    path:
      v.string(h, 'path', 'health', {
        default: '/health',
        pattern: /^\/[^\s]*$/,
        form: 'a URL path like /health',
      }) ?? '/health',
    timeoutS: int('timeout_s', 1, 600, 30),
    apiP95Ms: int('api_p95_ms', 1, 60000, 2000),
    burst: int('burst', 1, 500, 20),
    certMinDays: int('cert_min_days', 1, 365, 14),
    diskMinFreePct: int('disk_min_free_pct', 1, 90, 15),
    memMinFreePct: int('mem_min_free_pct', 1, 90, 10),
    backupMaxAgeH: int('backup_max_age_h', 1, 24 * 60, 26),
    edge: v.boolean(h, 'edge', 'health', false),
    ...resolver(
      v.string(h, 'edge_resolver', 'health', {
        optional: true,
        pattern: /^[0-9a-fA-F.:[\]]+:\d{1,5}$|^[0-9.]+$/,
        form: 'a DNS server address like 127.0.0.1:5353',
      }),
    ),
  }
}

const resolver = (r: string | undefined) => (r ? { edgeResolver: r } : {})

export function readWatchdog(v: Validator, raw: unknown): WatchdogConfig {
  const w = v.object(raw ?? {}, 'watchdog', ['interval_s', 'max_restarts', 'restart_window_min', 'watch'])
  const int = (k: string, min: number, max: number, d: number) =>
    v.integer(w, k, 'watchdog', { min, max, default: d }) ?? d
  return {
    intervalS: int('interval_s', 10, 3600, 60),
    maxRestarts: int('max_restarts', 0, 100, 3),
    restartWindowMin: int('restart_window_min', 1, 1440, 30),
    watch: v.stringList(w, 'watch', 'watchdog', {
      optional: true,
      pattern: /^[a-z][a-z0-9-]*$/,
      form: 'the name of another env (its env/<name>.yaml)',
    }),
  }
}

/** What the alert engine needs of the config: when a failure alerts, how often it reminds. */
export type AlertRules = Pick<AlertsConfig, 'failureThreshold' | 'reminderMin'>

export function readAlerts(v: Validator, raw: unknown): AlertsConfig {
  const a = v.object(raw ?? {}, 'alerts', [
    'failure_threshold',
    'reminder_min',
    'p95_degrade_factor',
    'max_5xx_per_min',
  ])
  const int = (k: string, min: number, max: number, d: number) =>
    v.integer(a, k, 'alerts', { min, max, default: d }) ?? d
  return {
    failureThreshold: int('failure_threshold', 1, 100, 2),
    reminderMin: int('reminder_min', 1, 10080, 60),
    p95DegradeFactor: int('p95_degrade_factor', 1, 100, 2),
    max5xxPerMin: int('max_5xx_per_min', 0, 100000, 10),
  }
}

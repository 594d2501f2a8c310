import { SECRET_NAME } from './key-source.ts'
import type { Validator } from './validate.ts'

// The `heartbeat:` section of an env file: the dead man's switch. The host's watchdog pings after each
// run and each scheduled job after it succeeds, at a Healthchecks.io-compatible service; when a ping does
// not come on time, that service alerts (through its own integrations: set them to the on-call's Slack
// and PagerDuty there). The ping URL carries the project's ping key: a secret, never in the env file.
export const HEALTHCHECKS_API = 'https://healthchecks.io'
/** Healthchecks.io's shortest period and grace time: a staging or production env may not ask for less. */
export const HEALTHCHECKS_MIN_S = 60

export interface HeartbeatConfig {
  /** The secret holding the ping base URL: `https://hc-ping.com/<ping key>`; each job pings `<it>/<env>-<job>`. */
  pingUrlSecret: string
  /** The management API's base URL (`make heartbeats` creates and lists the checks there). */
  api: string
  /** The secret holding the project's read-write API key (make heartbeats; people and the ops job hold it). */
  apiKeySecret: string
  /** How late the watchdog's ping may be (beyond watchdog.interval_s) before the service alerts. */
  graceS: number
}

const URL_FORM = /^https?:\/\/[^\s/]+(\/\S*)?$/

/** Validates `heartbeat:`; absent means no dead man's switch (a local env). */
export function readHeartbeat(
  v: Validator,
  raw: unknown,
  kind: string | undefined,
): HeartbeatConfig | undefined {
  if (raw === undefined || raw === null) return undefined
  const obj = v.object(raw, 'heartbeat', ['ping_url_secret', 'api', 'api_key_secret', 'grace_s'])
  const secret = (key: string, what: string) =>
    v.string(obj, key, 'heartbeat', {
      pattern: SECRET_NAME,
      form: `an UPPER_CASE secret name (${what} is a secret)`,
    })
  const pingUrlSecret = secret('ping_url_secret', 'the ping URL holds the ping key')
  const apiKeySecret = secret('api_key_secret', 'the API key')
  const api = v.string(obj, 'api', 'heartbeat', {
    default: HEALTHCHECKS_API,
    pattern: URL_FORM,
    form: 'an http(s) URL (the management API; https://healthchecks.io by default)',
  })
  // The sandbox's stand-in takes seconds, so a local env's tests need not wait minutes.
  const min = kind === 'local' ? 1 : HEALTHCHECKS_MIN_S
  const graceS = v.integer(obj, 'grace_s', 'heartbeat', { min, max: 31536000, default: 120 })
  if (!pingUrlSecret || !apiKeySecret || !api || graceS === undefined) return undefined
  return { pingUrlSecret, apiKeySecret, api: api.replace(/\/+$/, ''), graceS }
}

/** A job's check: <env>-<job> (its slug at the service, and the last part of its ping URL). */
export const heartbeatSlug = (env: string, job: string) => `${env}-${job}`

/** Where a job pings: <base>/<slug>, and /fail when it failed (the base holds the ping key: a secret). */
export function pingUrl(base: string, slug: string, kind: 'success' | 'fail' = 'success'): string {
  return `${base.replace(/\/+$/, '')}/${slug}${kind === 'fail' ? '/fail' : ''}`
}

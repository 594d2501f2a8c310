import { SECRET_NAME } from './key-source.ts'
import type { Validator } from './validate.ts'

// The `error_tracking:` section of an env file: a Sentry-compatible service (Sentry, or a self-hosted
// GlitchTip) where each deploy and rollback creates the release and a deploy marker for this env, so
// the app's own error reports (its SDK, with the same release name) line up with what went live. The
// host watchdog's error signatures (lib/watchdog/error-signatures.ts) need none of this: they alert
// through the env's notify targets.
export interface ErrorTrackingConfig {
  /** The service's base URL: https://sentry.io, or the GlitchTip's address. */
  api: string
  /** The organization's slug. */
  org: string
  /** The project slugs the release belongs to (one per service, or one for the app). */
  projects: string[]
  /** The secret holding an auth token with project:releases (Sentry) / release admin (GlitchTip). */
  tokenSecret: string
}

const SLUG = /^[a-z0-9][a-z0-9_-]{0,49}$/

export function readErrorTracking(v: Validator, raw: unknown): ErrorTrackingConfig | undefined {
  if (raw === undefined || raw === null) return undefined
  const obj = v.object(raw, 'error_tracking', ['api', 'org', 'projects', 'token_secret'])
  const api = v.string(obj, 'api', 'error_tracking', {
    default: 'https://sentry.io',
    pattern: /^https?:\/\/[^\s/]+(\/\S*)?$/,
    form: "an http(s) URL (the service's address; https://sentry.io by default)",
  })
  const org = v.string(obj, 'org', 'error_tracking', { pattern: SLUG, form: "the organization's slug" })
  const raws = obj?.projects
  const projects = Array.isArray(raws) ? raws.filter((p): p is string => typeof p === 'string') : []
  if (!Array.isArray(raws) || projects.length === 0 || projects.length !== raws.length)
    v.problem('error_tracking.projects', 'a list of project slugs, at least one')
  for (const p of projects)
    if (!SLUG.test(p))
      v.problem('error_tracking.projects', `"${p}" is not a project slug (lower case, digits, - and _)`)
  const tokenSecret = v.string(obj, 'token_secret', 'error_tracking', {
    pattern: SECRET_NAME,
    form: 'an UPPER_CASE secret name (the auth token is a secret)',
  })
  if (!api || !org || !tokenSecret) return undefined
  return { api: api.replace(/\/+$/, ''), org, projects, tokenSecret }
}

import { AbortError } from 'p-retry'
import type { ErrorTrackingConfig } from '../env/error-tracking.ts'
import { type NotifyOptions, networkReason, SendError, snippet, withRetries } from '../notify/deliver.ts'

// A Sentry-compatible service's release API (Sentry; GlitchTip speaks the same for releases), as much
// as deploy and rollback use: create the release (201, or 208 when it exists: both fine) and add a deploy
// marker for the env. The token goes in the Authorization header, never in a URL or a message.

export interface MarkRequest {
  method: 'POST'
  path: string
  body: Record<string, unknown>
}

/** The two requests that mark `release` live on `env` between `started` and `finished`. Pure. */
export function markRequests(
  config: ErrorTrackingConfig,
  env: string,
  release: string,
  started: Date,
  finished: Date,
): MarkRequest[] {
  const org = encodeURIComponent(config.org)
  return [
    {
      method: 'POST',
      path: `/api/0/organizations/${org}/releases/`,
      body: { version: release, projects: config.projects },
    },
    {
      method: 'POST',
      path: `/api/0/organizations/${org}/releases/${encodeURIComponent(release)}/deploys/`,
      body: {
        environment: env,
        name: `${release} to ${env}`,
        dateStarted: started.toISOString(),
        dateFinished: finished.toISOString(),
      },
    },
  ]
}

/** Sends the requests in order (a release must exist before its deploy); retried on 429 and 5xx. */
export async function sendMarks(
  config: ErrorTrackingConfig,
  token: string,
  requests: MarkRequest[],
  options: NotifyOptions = {},
): Promise<number[]> {
  const statuses: number[] = []
  for (const r of requests)
    await withRetries(
      async () => {
        const status = await once(config.api, token, r, options)
        statuses.push(status)
        return status
      },
      options,
      () => {},
    )
  return statuses
}

async function once(base: string, token: string, r: MarkRequest, options: NotifyOptions): Promise<number> {
  const timeoutMs = options.timeoutMs ?? 10_000
  let res: Response
  try {
    res = await (options.fetchImpl ?? fetch)(`${base}${r.path}`, {
      method: r.method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(r.body),
      signal: AbortSignal.timeout(timeoutMs),
    })
  } catch (err) {
    throw new SendError(networkReason(err, timeoutMs))
  }
  const text = await res.text().catch(() => '')
  if (res.ok) return res.status
  const reason =
    res.status === 401 || res.status === 403
      ? `HTTP ${res.status}: the token was refused (it needs project:releases)`
      : `HTTP ${res.status}${snippet(text)}`
  if (res.status === 429 || res.status >= 500) throw new SendError(reason, res.status)
  throw new AbortError(new SendError(reason, res.status))
}

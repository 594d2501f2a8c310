import { AbortError } from 'p-retry'
import { type NotifyOptions, networkReason, SendError, snippet, withRetries } from '../notify/deliver.ts'
import type { HeartbeatJob } from './jobs.ts'

// Healthchecks.io's Management API (v3), as much as make heartbeats uses: create-or-update a check
// (POST /api/v3/checks/ with unique: ["name"]) and list a tag's checks. The API key goes in X-Api-Key,
// never in a URL or a message.
export const TAG = 'conciliaextrato'

/** What the API returns of a check (a read-write key's view). */
export interface HcCheck {
  name: string
  slug: string
  tags: string
  status: 'new' | 'up' | 'grace' | 'down' | 'paused' | 'started' | string
  last_ping: string | null
  next_ping: string | null
  grace: number
  timeout?: number
  schedule?: string
  tz?: string
  n_pings: number
}

/** The request body that creates the job's check, or updates the one with its name. Pure. */
export function checkBody(env: string, job: HeartbeatJob): Record<string, unknown> {
  return {
    name: job.slug,
    slug: job.slug,
    tags: `${TAG} ${env}`,
    desc: job.desc,
    ...(job.schedule !== undefined ? { schedule: job.schedule, tz: 'UTC' } : { timeout: job.timeoutS }),
    grace: job.graceS,
    // Every integration of the project: a check that notifies no one alerts no one.
    channels: '*',
    unique: ['name'],
  }
}

export class HeartbeatApi {
  constructor(
    private readonly base: string,
    private readonly key: string,
    private readonly options: NotifyOptions = {},
  ) {}

  /** Creates or updates the check; says which. */
  async upsert(env: string, job: HeartbeatJob): Promise<{ created: boolean; check: HcCheck }> {
    const { status, body } = await this.call('POST', '/api/v3/checks/', checkBody(env, job))
    return { created: status === 201, check: body as HcCheck }
  }

  /** The checks tagged with this env (and ours). */
  async list(env: string): Promise<HcCheck[]> {
    const { body } = await this.call('GET', `/api/v3/checks/?tag=${TAG}&tag=${encodeURIComponent(env)}`)
    return ((body as { checks?: HcCheck[] }).checks ?? []).sort((a, b) => a.name.localeCompare(b.name))
  }

  private async call(
    method: string,
    path: string,
    json?: unknown,
  ): Promise<{ status: number; body: unknown }> {
    let result: { status: number; body: unknown } | undefined
    await withRetries(
      async () => {
        result = await this.once(method, path, json)
        return result.status
      },
      this.options,
      () => {},
    )
    return result as { status: number; body: unknown }
  }

  private async once(
    method: string,
    path: string,
    json?: unknown,
  ): Promise<{ status: number; body: unknown }> {
    const timeoutMs = this.options.timeoutMs ?? 10_000
    let res: Response
    try {
      res = await (this.options.fetchImpl ?? fetch)(`${this.base}${path}`, {
        method,
        headers: { 'x-api-key': this.key, ...(json ? { 'content-type': 'application/json' } : {}) },
        ...(json ? { body: JSON.stringify(json) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      })
    } catch (err) {
      throw new SendError(networkReason(err, timeoutMs))
    }
    const text = await res.text().catch(() => '')
    if (res.ok) {
      try {
        return { status: res.status, body: JSON.parse(text) }
      } catch {
        throw new AbortError(new SendError(`HTTP ${res.status} but not JSON${snippet(text)}`, res.status))
      }
    }
    const reason =
      res.status === 401
        ? "HTTP 401: the API key was refused (it must be the project's read-write key)"
        : `HTTP ${res.status}${snippet(text)}`
    if (res.status === 429 || res.status >= 500) throw new SendError(reason, res.status)
    throw new AbortError(new SendError(reason, res.status))
  }
}

/**
 * The DigitalOcean API v2, for what the runbooks ask of it: a new droplet for `make emergency` (create,
 * wait until active, read its public IPv4; find one by tag after an interrupted run); make image's calls
 * (actions, snapshots) are in do-images.ts. Plain fetch: there is no official JavaScript client, and a
 * handful of calls do not need one.
 * Every call is retried on 429 (honouring Retry-After), 5xx and network errors; the token never
 * appears in a message.
 */
import pRetry, { AbortError } from 'p-retry'
import type { DropletConfig } from '../env/droplet.ts'
import { InputError, PreconditionError, RunbookError } from '../report/errors.ts'

export interface DoClient {
  base: string
  token: string
  retryMs: number
  attempts: number
}

export interface DropletInfo {
  id: number
  name: string
  status: string
  ip: string | null
  tags: string[]
}

export interface CreateDroplet {
  name: string
  region: string
  size: string
  /** A slug (a distribution) or a snapshot's numeric id (a golden image: make image). */
  image: string | number
  ssh_keys: Array<string | number>
  tags: string[]
  user_data: string
  ipv6: boolean
  monitoring: boolean
}

export function doClient(config: DropletConfig, secrets: Record<string, string>, retryMs = 2000): DoClient {
  const token = secrets[config.tokenSecret]
  if (!token)
    throw new InputError(
      `secret ${config.tokenSecret} (the DigitalOcean API token) is not set`,
      [],
      'Put it in the environment or env/<env>.secrets.env, or pass HOST=<ip> HOST_KEY=<fingerprint> of a droplet made by hand.',
    )
  return { base: config.apiBase.replace(/\/$/, ''), token, retryMs, attempts: 5 }
}

/** The request body for `POST /v2/droplets` (pure: unit tested). */
export function createRequest(
  config: DropletConfig,
  name: string,
  runTag: string,
  userData: string,
  image: string | number = config.image,
): CreateDroplet {
  return {
    name,
    region: config.region,
    size: config.size,
    image,
    ssh_keys: config.sshKeys.map((k) => (/^\d+$/.test(k) ? Number(k) : k)),
    tags: [...new Set([...config.tags, runTag])],
    user_data: userData,
    ipv6: config.ipv6,
    monitoring: config.monitoring,
  }
}

interface RawDroplet {
  id: number
  name: string
  status: string
  tags?: string[]
  networks?: { v4?: Array<{ ip_address: string; type: string }> }
}

function info(d: RawDroplet): DropletInfo {
  const pub = d.networks?.v4?.find((n) => n.type === 'public')
  return { id: d.id, name: d.name, status: d.status, ip: pub?.ip_address ?? null, tags: d.tags ?? [] }
}

export async function request<T>(
  c: DoClient,
  method: string,
  path: string,
  what: string,
  body?: unknown,
): Promise<T> {
  return pRetry(
    async () => {
      let res: Response
      try {
        res = await fetch(`${c.base}${path}`, {
          method,
          headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(30_000),
        })
      } catch (err) {
        await sleep(c.retryMs)
        throw new PreconditionError(
          `DigitalOcean did not answer (${what}): ${(err as Error).message}`,
          `Check the network to ${c.base}, then run the same command again (it resumes).`,
        )
      }
      const text = await res.text()
      const parsed = text ? (JSON.parse(text) as { message?: string; id?: string } & T) : ({} as T)
      if (res.ok) return parsed
      const message = (parsed as { message?: string }).message ?? res.statusText
      if (res.status === 429 || res.status >= 500) {
        const after = Number(res.headers.get('retry-after'))
        await sleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 60_000) : c.retryMs)
        throw new RunbookError(
          `DigitalOcean answered ${res.status} to ${what} and kept doing so: ${message}`,
          1,
          'Check https://status.digitalocean.com, then run the same command again (it resumes).',
        )
      }
      if (res.status === 401 || res.status === 403)
        throw new AbortError(
          new InputError(
            `DigitalOcean refused the token (${res.status}) for ${what}: ${message}`,
            [],
            'The token needs the scopes docs/runbooks/emergency.md#before-you-need-it lists (droplet, actions, snapshot); replace it in the secrets and run again.',
          ),
        )
      throw new AbortError(
        new InputError(
          `DigitalOcean refused ${what} (${res.status}): ${message}`,
          [],
          'Fix the droplet: section of the env file (region, size, image, ssh_keys, tags) and run again.',
        ),
      )
    },
    { retries: c.attempts - 1, minTimeout: 0, maxTimeout: 0 },
  )
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function createDroplet(c: DoClient, req: CreateDroplet): Promise<DropletInfo> {
  const out = await request<{ droplet: RawDroplet }>(
    c,
    'POST',
    '/v2/droplets',
    `create droplet ${req.name}`,
    req,
  )
  return info(out.droplet)
}

export async function getDroplet(c: DoClient, id: number): Promise<DropletInfo | null> {
  try {
    return info(
      (await request<{ droplet: RawDroplet }>(c, 'GET', `/v2/droplets/${id}`, `read droplet ${id}`)).droplet,
    )
  } catch (err) {
    if (err instanceof InputError && / \(404\)/.test(err.message)) return null
    throw err
  }
}

/** Droplets carrying a tag (the run's own tag finds a droplet created by an interrupted run). */
export async function dropletsByTag(c: DoClient, tag: string): Promise<DropletInfo[]> {
  const out = await request<{ droplets: RawDroplet[] }>(
    c,
    'GET',
    `/v2/droplets?tag_name=${encodeURIComponent(tag)}&per_page=200`,
    `list droplets tagged ${tag}`,
  )
  return out.droplets.map(info)
}

/** Polls until the droplet is active with a public IPv4. */
export async function waitActive(
  c: DoClient,
  id: number,
  timeoutS: number,
  pollMs = 2000,
  onPoll: (d: DropletInfo) => void = () => {},
): Promise<DropletInfo & { ip: string }> {
  const deadline = Date.now() + timeoutS * 1000
  for (;;) {
    const d = await getDroplet(c, id)
    if (!d)
      throw new PreconditionError(
        `droplet ${id} no longer exists at DigitalOcean`,
        'Someone deleted it: run again with RESTART=1 to create a new one.',
      )
    onPoll(d)
    if (d.status === 'active' && d.ip) return d as DropletInfo & { ip: string }
    if (Date.now() > deadline)
      throw new PreconditionError(
        `droplet ${id} (${d.name}) is still "${d.status}" after ${timeoutS} s`,
        'Look at it in the DigitalOcean console; run the same command again to keep waiting, or RESTART=1 to create another.',
      )
    await sleep(pollMs)
  }
}

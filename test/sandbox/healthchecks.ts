/**
 * A local stand-in for Healthchecks.io (the dead man's switch), speaking the parts of its documented API
 * that the runbooks use:
 * - pings by slug, as a self-hosted instance serves them: `GET|HEAD|POST /ping/<ping key>/<slug>`, and
 *   `/fail` or `/start` after it; an unknown key or slug answers 404 "not found";
 * - the Management API v3: `GET /api/v3/checks/` (each `tag` must match) and `POST /api/v3/checks/`
 *   (create, or update the check that `unique` finds: 201 or 200), the key in `X-Api-Key` (401 without).
 * A check is new until its first ping; up until its period (timeout) or its cron schedule's next time
 * after the last ping; grace until the grace time passed too; then down (at once after a /fail). As the
 * service does, it notifies its integrations when a check goes down and when it comes back up: here a
 * Slack-style webhook per channel, `{text}`. Periods and grace times below Healthchecks.io's 60 s are
 * refused unless `minPeriodS` lowers the floor (tests do, not to wait minutes).
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface StandInCheck {
  uuid: string
  name: string
  slug: string
  tags: string
  desc: string
  timeout?: number
  schedule?: string
  tz?: string
  grace: number
  channels: string
  lastPing: Date | null
  lastFailed: boolean
  pings: { at: Date; kind: 'success' | 'fail' | 'start'; body: string }[]
  /** The status last notified (the flips the stand-in sent). */
  notified: string
}

export interface Flip {
  slug: string
  status: 'up' | 'down'
  at: Date
}

export interface HealthchecksStandIn {
  /** The management API's base, e.g. http://172.18.0.1:41234 */
  url: string
  /** The ping base a project's jobs are given: <url>/ping/<ping key> */
  pingBase: string
  apiKey: string
  checks: Map<string, StandInCheck>
  flips: Flip[]
  statusOf(check: StandInCheck, now?: Date): string
  close(): Promise<void>
}

export interface StandInOptions {
  host?: string
  /** Where down and up notices go (Slack-style webhooks). */
  channels?: string[]
  minPeriodS?: number
  /** How often statuses are evaluated (the service's own sweep). */
  tickMs?: number
}

const MAX_S = 31536000

export async function startHealthchecks(options: StandInOptions = {}): Promise<HealthchecksStandIn> {
  const host = options.host ?? '127.0.0.1'
  const minS = options.minPeriodS ?? 60
  const pingKey = randomUUID().replace(/-/g, '').slice(0, 22)
  const apiKey = `hcw_${randomUUID().replace(/-/g, '')}`
  const checks = new Map<string, StandInCheck>()
  const flips: Flip[] = []

  const statusOf = (c: StandInCheck, now = new Date()): string => {
    if (!c.lastPing) return 'new'
    if (c.lastFailed) return 'down'
    const due =
      c.timeout !== undefined ? new Date(c.lastPing.getTime() + c.timeout * 1000) : nextCron(c, c.lastPing)
    if (!due || now < due) return 'up'
    return now.getTime() < due.getTime() + c.grace * 1000 ? 'grace' : 'down'
  }

  const notify = async (c: StandInCheck, status: 'up' | 'down') => {
    flips.push({ slug: c.slug, status, at: new Date() })
    const text =
      status === 'down'
        ? `The check "${c.name}" is DOWN: ${c.lastFailed ? 'it signalled a failure' : 'success signal did not arrive on time, grace time passed'}. Last ping: ${c.lastPing?.toISOString() ?? 'never'}. ${c.desc}`
        : `The check "${c.name}" is UP again.`
    for (const url of options.channels ?? [])
      await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text }),
        signal: AbortSignal.timeout(5000),
      }).catch(() => {})
  }

  const sweep = async () => {
    for (const c of checks.values()) {
      const s = statusOf(c)
      const flip = s === 'down' ? 'down' : s === 'up' ? 'up' : undefined
      if (!flip || flip === c.notified) continue
      const was = c.notified
      c.notified = flip
      // new -> up is no news; down -> up and up -> down are.
      if (flip === 'down' || was === 'down') await notify(c, flip)
    }
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      try {
        route(req, res, body)
      } catch (err) {
        send(res, 500, { error: (err as Error).message })
      }
    })
  })

  const route = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const ping = /^\/ping\/([^/]+)\/([a-z0-9_-]+)(?:\/(fail|start))?\/?$/.exec(url.pathname)
    if (ping) {
      const check = [...checks.values()].find((c) => c.slug === ping[2])
      if (ping[1] !== pingKey || !check) return text(res, 404, 'not found')
      const kind = (ping[3] ?? 'success') as 'success' | 'fail' | 'start'
      check.pings.push({ at: new Date(), kind, body: body.slice(0, 1000) })
      if (kind !== 'start') {
        check.lastPing = new Date()
        check.lastFailed = kind === 'fail'
      }
      void sweep()
      return text(res, 200, 'OK')
    }
    if (url.pathname !== '/api/v3/checks/') return send(res, 404, { error: 'not found' })
    if (req.headers['x-api-key'] !== apiKey) return send(res, 401, { error: 'missing api key' })
    if (req.method === 'GET') {
      const tags = url.searchParams.getAll('tag')
      const list = [...checks.values()].filter((c) => tags.every((t) => c.tags.split(' ').includes(t)))
      return send(res, 200, { checks: list.map(view) })
    }
    if (req.method !== 'POST') return send(res, 405, { error: 'method not allowed' })
    let spec: Record<string, unknown>
    try {
      spec = JSON.parse(body) as Record<string, unknown>
    } catch {
      return send(res, 400, { error: 'could not parse request body' })
    }
    const problem = invalid(spec, minS)
    if (problem) return send(res, 400, { error: problem })
    const unique = (spec.unique as string[] | undefined) ?? []
    const found = unique.length
      ? [...checks.values()].find((c) =>
          unique.every((k) => (c as unknown as Record<string, unknown>)[k] === spec[k]),
        )
      : undefined
    const check: StandInCheck = found ?? {
      uuid: randomUUID(),
      name: '',
      slug: '',
      tags: '',
      desc: '',
      grace: 3600,
      channels: '',
      lastPing: null,
      lastFailed: false,
      pings: [],
      notified: 'new',
      timeout: 86400,
    }
    for (const k of ['name', 'slug', 'tags', 'desc', 'grace', 'channels'] as const)
      if (spec[k] !== undefined) (check as unknown as Record<string, unknown>)[k] = spec[k]
    if (spec.schedule !== undefined) {
      check.schedule = spec.schedule as string
      check.tz = (spec.tz as string | undefined) ?? 'UTC'
      delete check.timeout
    } else if (spec.timeout !== undefined) {
      check.timeout = spec.timeout as number
      delete check.schedule
      delete check.tz
    }
    checks.set(check.uuid, check)
    return send(res, found ? 200 : 201, view(check))
  }

  const view = (c: StandInCheck) => ({
    name: c.name,
    slug: c.slug,
    tags: c.tags,
    desc: c.desc,
    grace: c.grace,
    n_pings: c.pings.filter((p) => p.kind !== 'start').length,
    status: statusOf(c),
    last_ping: c.lastPing?.toISOString().replace(/\.\d+Z$/, '+00:00') ?? null,
    next_ping:
      c.lastPing && c.timeout !== undefined
        ? new Date(c.lastPing.getTime() + c.timeout * 1000).toISOString().replace(/\.\d+Z$/, '+00:00')
        : null,
    ...(c.timeout !== undefined ? { timeout: c.timeout } : { schedule: c.schedule, tz: c.tz }),
    ping_url: `${base}/ping/${pingKey}/${c.slug}`,
    uuid: c.uuid,
  })

  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  const { port } = server.address() as AddressInfo
  const base = `http://${host}:${port}`
  const timer = setInterval(() => void sweep(), options.tickMs ?? 1000)
  return {
    url: base,
    pingBase: `${base}/ping/${pingKey}`,
    apiKey,
    checks,
    flips,
    statusOf,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer)
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

function send(res: ServerResponse, status: number, json: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json))
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain' }).end(body)
}

/** The API's own validation messages, for what it refuses. */
function invalid(spec: Record<string, unknown>, minS: number): string | undefined {
  const range = (k: string) => {
    const v = spec[k]
    if (v === undefined) return undefined
    return Number.isInteger(v) && (v as number) >= minS && (v as number) <= MAX_S
      ? undefined
      : `json validation error: ${k} is too small or too large (${minS}..${MAX_S})`
  }
  if (spec.timeout !== undefined && spec.schedule !== undefined)
    return 'json validation error: timeout and schedule are mutually exclusive'
  if (spec.slug !== undefined && !/^[a-z0-9_-]*$/.test(String(spec.slug)))
    return 'json validation error: slug'
  if (spec.schedule !== undefined && !parseCron(String(spec.schedule)))
    return 'json validation error: schedule is not a valid cron expression'
  for (const k of (spec.unique as string[] | undefined) ?? [])
    if (!['name', 'slug', 'tags', 'timeout', 'grace'].includes(k))
      return `json validation error: unique has an unsupported value ${k}`
  return range('timeout') ?? range('grace')
}

type CronFields = [Set<number>, Set<number>, Set<number>, Set<number>, Set<number>, boolean, boolean]

/** minute hour day-of-month month day-of-week: numbers, *, ranges, steps and lists. */
export function parseCron(expr: string): CronFields | undefined {
  const parts = expr.trim().split(/\s+/)
  if (parts.length !== 5) return undefined
  const bounds: [number, number][] = [
    [0, 59],
    [0, 23],
    [1, 31],
    [1, 12],
    [0, 7],
  ]
  const sets: Set<number>[] = []
  for (const [i, part] of parts.entries()) {
    const [lo, hi] = bounds[i] as [number, number]
    const set = new Set<number>()
    for (const item of (part as string).split(',')) {
      const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(item)
      if (!m) return undefined
      const from = m[1] === '*' ? lo : Number(m[2])
      const to = m[1] === '*' ? hi : m[3] !== undefined ? Number(m[3]) : m[4] ? hi : from
      const step = m[4] ? Number(m[4]) : 1
      if (from < lo || to > hi || from > to || step < 1) return undefined
      for (let n = from; n <= to; n += step) set.add(i === 4 && n === 7 ? 0 : n)
    }
    sets.push(set)
  }
  return [
    ...(sets as [Set<number>, Set<number>, Set<number>, Set<number>, Set<number>]),
    parts[2] !== '*',
    parts[4] !== '*',
  ]
}

/** The first time the schedule (UTC) fires after `after`. */
function nextCron(c: StandInCheck, after: Date): Date | undefined {
  const cron = parseCron(c.schedule ?? '')
  if (!cron) return undefined
  const [min, hour, dom, month, dow, domSet, dowSet] = cron
  const t = new Date(after)
  t.setUTCSeconds(0, 0)
  for (let i = 0; i < 366 * 24 * 60; i++) {
    t.setUTCMinutes(t.getUTCMinutes() + 1)
    const dayOk =
      domSet && dowSet
        ? dom.has(t.getUTCDate()) || dow.has(t.getUTCDay())
        : dom.has(t.getUTCDate()) && dow.has(t.getUTCDay())
    if (min.has(t.getUTCMinutes()) && hour.has(t.getUTCHours()) && month.has(t.getUTCMonth() + 1) && dayOk)
      return new Date(t)
  }
  return undefined
}

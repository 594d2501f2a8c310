/**
 * Plumbing shared by the local cloud API doubles (Cloudflare, DigitalOcean): a node:http server bound to
 * 127.0.0.1, body reading, a path router, a request log and fault injection.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export type Params = Record<string, string>

export interface Route<H> {
  method: string
  pattern: string
  handler: H
}

/** Matches `/zones/:zone_id/dns_records` style patterns; returns the params or undefined. */
export function matchPath(pattern: string, pathname: string): Params | undefined {
  const want = pattern.split('/')
  const got = pathname.replace(/\/+$/, '').split('/')
  if (want.length !== got.length) return undefined
  const params: Params = {}
  for (const [i, part] of want.entries()) {
    const value = got[i] ?? ''
    if (part.startsWith(':')) {
      if (!value) return undefined
      params[part.slice(1)] = decodeURIComponent(value)
    } else if (part !== value) return undefined
  }
  return params
}

/** The routes whose path matches (any method), so callers can tell 404 from 405. */
export function findRoute<H>(routes: Route<H>[], method: string, pathname: string) {
  let pathMatched = false
  for (const route of routes) {
    const params = matchPath(route.pattern, pathname)
    if (!params) continue
    pathMatched = true
    if (route.method === method) return { route, params, pathMatched }
  }
  return { route: undefined, params: {}, pathMatched }
}

export async function readBody(req: IncomingMessage, limit = 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit) throw new Error(`request body larger than ${limit} bytes`)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

export type JsonParse = { ok: true; value: unknown } | { ok: false; error: string }

export function parseJson(text: string): JsonParse {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch (err) {
    return { ok: false, error: (err as Error).message }
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  })
  res.end(text)
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, headers)
  res.end()
}

export interface LoggedRequest {
  method: string
  /** Path without the query string. */
  path: string
  query: Record<string, string | string[]>
  /** Parsed JSON body, the raw text when it is not JSON, or undefined when empty. */
  body: unknown
  status: number
  at: string
}

export function queryObject(search: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const key of new Set(search.keys())) {
    const all = search.getAll(key)
    out[key] = all.length === 1 ? (all[0] ?? '') : all
  }
  return out
}

/** Appends an entry for this request to `log` (its status is filled in when it is answered). */
export function logRequest(log: LoggedRequest[], method: string, url: URL, text: string): LoggedRequest {
  const parsed = text === '' ? undefined : parseJson(text)
  const entry: LoggedRequest = {
    method,
    path: url.pathname,
    query: queryObject(url.searchParams),
    body: parsed === undefined ? undefined : parsed.ok ? parsed.value : text,
    status: 0,
    at: new Date().toISOString(),
  }
  log.push(entry)
  return entry
}

export interface FaultSpec {
  /** HTTP status to answer with: 429 or 5xx. */
  status: number
  /** How many matching requests fail (default 1). */
  count?: number
  /** Only requests whose path contains this string (or matches this RegExp). */
  path?: string | RegExp
  method?: string
  /** Seconds for `retry-after` (429 only; default 1). */
  retryAfterS?: number
}

interface ArmedFault extends Required<Pick<FaultSpec, 'status' | 'retryAfterS'>> {
  remaining: number
  path?: string | RegExp
  method?: string
}

/** Makes the next N matching requests fail; consumed first come, first served. */
export class FaultInjector {
  private armed: ArmedFault[] = []

  add(spec: FaultSpec): void {
    if (spec.status !== 429 && (spec.status < 500 || spec.status > 599))
      throw new Error(`fault status must be 429 or 5xx, got ${spec.status}`)
    this.armed.push({
      status: spec.status,
      remaining: spec.count ?? 1,
      path: spec.path,
      method: spec.method?.toUpperCase(),
      retryAfterS: spec.retryAfterS ?? 1,
    })
  }

  /** The fault this request consumes, if any. */
  take(method: string, path: string): { status: number; retryAfterS: number } | undefined {
    const fault = this.armed.find(
      (f) =>
        f.remaining > 0 &&
        (!f.method || f.method === method) &&
        (!f.path || (typeof f.path === 'string' ? path.includes(f.path) : f.path.test(path))),
    )
    if (!fault) return undefined
    fault.remaining--
    this.armed = this.armed.filter((f) => f.remaining > 0)
    return { status: fault.status, retryAfterS: fault.retryAfterS }
  }

  get pending(): number {
    return this.armed.reduce((n, f) => n + f.remaining, 0)
  }

  clear(): void {
    this.armed = []
  }
}

export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization
  if (header === undefined) return undefined
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  return match?.[1] ?? ''
}

export interface Listening {
  server: Server
  url: string
  close(): Promise<void>
}

/** Starts a server on 127.0.0.1 with an ephemeral port. */
export async function listenLocal(
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
): Promise<Listening> {
  const server = createServer((req, res) => {
    handler(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: `test double crashed: ${(err as Error).message}` })
      else res.destroy()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()))
        server.closeAllConnections()
      }),
  }
}

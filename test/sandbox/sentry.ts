/**
 * A local stand-in for a Sentry-compatible service (Sentry; self-hosted GlitchTip speaks the same for
 * releases), speaking the parts of its documented API that deploy and rollback use:
 * - `POST /api/0/organizations/<org>/releases/` {version, projects}: 201 and the release, or 208 when a
 *   release of that version exists (Sentry's answer);
 * - `POST /api/0/organizations/<org>/releases/<version>/deploys/` {environment, name, dateStarted,
 *   dateFinished}: 201 and the deploy; 404 when the release does not exist;
 * - `GET /api/0/organizations/<org>/releases/`: the releases, newest first.
 * Auth: `Authorization: Bearer <token>` (401 without it or with another); an unknown org answers 404.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface StandInRelease {
  version: string
  projects: string[]
  dateCreated: string
  deploys: { id: string; environment: string; name: string; dateStarted?: string; dateFinished: string }[]
}

export interface SentryStandIn {
  url: string
  token: string
  org: string
  releases: Map<string, StandInRelease>
  /** Every request, `POST /api/0/...` (for the tests). */
  requests: string[]
  close(): Promise<void>
}

export async function startSentry(
  opts: { host?: string; org?: string; token?: string } = {},
): Promise<SentryStandIn> {
  const org = opts.org ?? 'conciliaextrato'
  const token = opts.token ?? `sntrys_standin_${Math.random().toString(36).slice(2)}`
  const releases = new Map<string, StandInRelease>()
  const requests: string[] = []
  let deployId = 0
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0] ?? ''
      requests.push(`${req.method} ${path}`)
      if (req.headers.authorization !== `Bearer ${token}`) return send(res, 401, { detail: 'Invalid token' })
      const m = path.match(/^\/api\/0\/organizations\/([^/]+)\/releases\/(?:([^/]+)\/deploys\/)?$/)
      if (!m) return send(res, 404, { detail: 'The requested resource does not exist' })
      if (decodeURIComponent(m[1] ?? '') !== org) return send(res, 404, { detail: 'Organization not found' })
      let body: Record<string, unknown> = {}
      try {
        body = chunks.length
          ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>)
          : {}
      } catch {
        return send(res, 400, { detail: 'Malformed JSON' })
      }
      const version = m[2] ? decodeURIComponent(m[2]) : undefined
      if (req.method === 'GET' && !version) return send(res, 200, [...releases.values()].reverse())
      if (req.method !== 'POST') return send(res, 405, { detail: 'Method not allowed' })
      if (!version) {
        const v = body.version
        const projects = Array.isArray(body.projects) ? body.projects.map(String) : []
        if (typeof v !== 'string' || !v || projects.length === 0)
          return send(res, 400, { detail: 'version and projects are required' })
        const existing = releases.get(v)
        if (existing) return send(res, 208, existing)
        const created: StandInRelease = {
          version: v,
          projects,
          dateCreated: new Date().toISOString(),
          deploys: [],
        }
        releases.set(v, created)
        return send(res, 201, created)
      }
      const release = releases.get(version)
      if (!release) return send(res, 404, { detail: 'Release not found' })
      if (typeof body.environment !== 'string' || !body.environment)
        return send(res, 400, { environment: ['This field is required.'] })
      const deploy = {
        id: String(++deployId),
        environment: body.environment,
        name: typeof body.name === 'string' ? body.name : '',
        ...(typeof body.dateStarted === 'string' ? { dateStarted: body.dateStarted } : {}),
        dateFinished: typeof body.dateFinished === 'string' ? body.dateFinished : new Date().toISOString(),
      }
      release.deploys.push(deploy)
      return send(res, 201, deploy)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, opts.host ?? '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    token,
    org,
    releases,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

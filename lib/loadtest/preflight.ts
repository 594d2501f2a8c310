import { request } from 'node:http'
import { edgeGet, resolveName } from '../health/edge.ts'
import type { Target } from './plan.ts'

// Before any load: each domain's address (through the edge: what its name resolves to) and one answer
// from each target, retried within a bound (a loaded machine's first try may be slow). Through the edge
// the certificate must be trusted for the domain; a web host without an edge serves plain HTTP.

export async function resolveEdge(
  domains: readonly string[],
  resolver?: string,
): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const d of domains) {
    const [first] = await resolveName(d, resolver)
    if (first) out.set(d, first)
  }
  return out
}

function originGet(t: Target, timeoutMs: number): Promise<{ status: number | null; error?: string }> {
  return new Promise((done) => {
    const req = request(
      {
        host: t.address,
        port: t.port,
        path: t.path,
        headers: { host: t.domain, 'user-agent': 'conciliaextrato-loadtest' },
        timeout: timeoutMs,
        agent: false,
      },
      (res) => {
        res.resume()
        res.on('end', () => done({ status: res.statusCode ?? null }))
      },
    )
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)))
    req.on('error', (e) => done({ status: null, error: e.message }))
    req.end()
  })
}

/** The target's first answer below 400 within `timeoutS` (at least 3 tries), or why there was none. */
export async function preflight(t: Target, timeoutS: number): Promise<{ ok: boolean; said: string }> {
  const until = Date.now() + timeoutS * 1000
  let said = 'not tried'
  for (let i = 0; i < 3 || Date.now() < until; i++) {
    const wait = Math.min(10_000, Math.max(2000, until - Date.now()))
    const a = t.via === 'edge' ? await edgeGet(t.domain, t.path, t.address, wait) : await originGet(t, wait)
    said = a.error ?? `HTTP ${a.status}`
    if (a.status !== null && a.status < 400) return { ok: true, said }
    if (Date.now() >= until && i >= 2) break
    await new Promise((r) => setTimeout(r, 1000))
  }
  return { ok: false, said }
}

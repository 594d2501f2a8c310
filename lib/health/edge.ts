/**
 * health.edge: every domain as a visitor meets it, from the runbook machine: its name resolves
 * (public DNS, or health.edge_resolver), and through the address it resolves to (Cloudflare's edge)
 * the health path answers 200 over TLS at least edge.min_tls_version, with HSTS, and a certificate
 * this machine trusts for that name with more than health.cert_min_days left. Bounded retries within
 * health.timeout_s: one slow answer on a loaded machine is not an outage.
 */

import { Resolver } from 'node:dns/promises'
import { readFileSync } from 'node:fs'
import { request } from 'node:https'
import { rootCertificates, type TLSSocket } from 'node:tls'
import type { Env } from '../env/load.ts'
import { SERVICES } from '../env/load.ts'
import type { HealthResult } from './result.ts'

const PAGE = 'docs/runbooks/dns.md'

/** The names' addresses, from the env's resolver (host:port) or the system's. */
export async function resolveName(name: string, server?: string): Promise<string[]> {
  const resolver = new Resolver({ timeout: 3000, tries: 2 })
  if (server) resolver.setServers([server])
  const v4 = await resolver.resolve4(name).catch(() => [] as string[])
  const v6 = await resolver.resolve6(name).catch(() => [] as string[])
  return [...v4, ...v6]
}

/** The trusted CAs: the system's, and NODE_EXTRA_CA_CERTS read now (also when set after start). */
export function trusted(): string[] {
  const extra = process.env.NODE_EXTRA_CA_CERTS
  return [...rootCertificates, ...(extra ? [readFileSync(extra, 'utf8')] : [])]
}

export interface EdgeAnswer {
  status: number | null
  protocol: string
  hsts: string
  daysLeft: number | null
  error?: string
}

/** One HTTPS GET of https://<domain><path> at `address`:443, the certificate checked for the domain. */
export function edgeGet(
  domain: string,
  path: string,
  address: string,
  timeoutMs: number,
): Promise<EdgeAnswer> {
  return new Promise((done) => {
    const req = request(
      {
        host: address,
        port: 443,
        path,
        servername: domain,
        headers: { host: domain, 'user-agent': 'conciliaextrato-health-edge' },
        ca: trusted(),
        timeout: timeoutMs,
        agent: false,
      },
      (res) => {
        const socket = res.socket as TLSSocket
        const cert = socket.getPeerCertificate()
        const daysLeft = cert?.valid_to
          ? Math.floor((Date.parse(cert.valid_to) - Date.now()) / 86_400_000)
          : null
        res.resume()
        res.on('end', () =>
          done({
            status: res.statusCode ?? null,
            protocol: String(socket.getProtocol?.() ?? '?'),
            hsts: String(res.headers['strict-transport-security'] ?? ''),
            daysLeft,
          }),
        )
      },
    )
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)))
    req.on('error', (e) => done({ status: null, protocol: '', hsts: '', daysLeft: null, error: e.message }))
    req.end()
  })
}

/** Tries until it answers 200 or `timeoutS` is spent (at least 3 tries). */
async function edgeGetRetrying(
  domain: string,
  path: string,
  address: string,
  timeoutS: number,
): Promise<EdgeAnswer> {
  const until = Date.now() + timeoutS * 1000
  let last: EdgeAnswer = { status: null, protocol: '', hsts: '', daysLeft: null, error: 'not tried' }
  for (let i = 0; i < 3 || Date.now() < until; i++) {
    last = await edgeGet(domain, path, address, Math.min(10_000, Math.max(2000, until - Date.now())))
    if (last.status === 200) return last
    if (Date.now() >= until && i >= 2) break
    await new Promise((r) => setTimeout(r, 1000))
  }
  return last
}

const TLS_ORDER = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']

/** Pure: the verdicts on one domain's answer through the edge. */
export function judgeEdge(env: Env, domain: string, a: EdgeAnswer): HealthResult[] {
  const min = `TLSv${env.edge?.minTlsVersion ?? '1.2'}`
  const tlsOk = TLS_ORDER.indexOf(a.protocol) >= TLS_ORDER.indexOf(min)
  const hstsOk = /max-age=\d+/.test(a.hsts) && Number(/max-age=(\d+)/.exec(a.hsts)?.[1]) > 0
  const ok = a.status === 200 && tlsOk && hstsOk
  const why = a.error ? a.error : [`HTTP ${a.status}`, a.protocol, hstsOk ? 'HSTS' : 'no HSTS'].join(', ')
  return [
    {
      check: 'edge',
      target: domain,
      ok,
      value: why,
      limit: `200 through the edge, >= ${min}, HSTS`,
      runbook: PAGE,
    },
    {
      check: 'edge-cert',
      target: domain,
      ok: a.daysLeft !== null && a.daysLeft >= env.health.certMinDays,
      value: a.daysLeft === null ? (a.error ?? 'no certificate') : `${a.daysLeft} days left`,
      limit: `trusted, >= ${env.health.certMinDays} days`,
      runbook: PAGE,
    },
  ]
}

/** Every domain through DNS and the edge (only with health.edge: where the runbook machine sees the edge). */
export async function edgeChecks(env: Env): Promise<HealthResult[]> {
  if (!env.health.edge)
    return [
      { check: 'dns', target: env.name, ok: null, value: 'n/a: health.edge is off', limit: '', runbook: '' },
    ]
  const perDomain = await Promise.all(
    SERVICES.map(async (s) => {
      const domain = env.domains[s]
      const addrs = await resolveName(domain, env.health.edgeResolver)
      const dns: HealthResult = {
        check: 'dns',
        target: domain,
        ok: addrs.length > 0,
        value: addrs.slice(0, 2).join(' ') || 'does not resolve',
        limit: 'resolves',
        runbook: PAGE,
      }
      if (!addrs[0] || !env.edge) return [dns]
      const answer = await edgeGetRetrying(domain, env.health.path, addrs[0], env.health.timeoutS)
      return [dns, ...judgeEdge(env, domain, answer)]
    }),
  )
  return perDomain.flat()
}

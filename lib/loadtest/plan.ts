import { percentile } from '../delivery/metrics.ts'
import type { Env } from '../env/load.ts'
import { SERVICES, type Service } from '../env/terms.ts'
import { InputError } from '../report/errors.ts'

// make loadtest's plan: which domains, where to send them, at what rate and how long; and the verdict.
// Pure, unit tested.

/** The verdict's limits: p95 under 2 s, at most 1% errors (connection errors, timeouts, 4xx and 5xx). */
export const P95_LIMIT_MS = 2000
export const ERROR_LIMIT_PCT = 1

/** Default total rate, requests per second over all domains: production gets a gentle one. */
export const defaultRps = (env: Pick<Env, 'kind'>) => (env.kind === 'production' ? 5 : 50)
export const MAX_RPS = 2000

export interface Target {
  service: Service
  domain: string
  path: string
  /** Where the requests go: the edge's address for the domain, or the web host (no edge). */
  address: string
  port: number
  /** Through the edge: HTTPS, its certificate checked before the load. A web host without an edge: HTTP (nginx's 80). */
  via: 'edge' | 'origin'
  rps: number
}

/** URL_PATH=: what each domain is asked for (default /: what a visitor loads). */
export function parsePath(value: string | undefined): string {
  const path = value ?? '/'
  if (!/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$/.test(path))
    throw new InputError(
      `URL_PATH=${path}: expected a URL path starting with /`,
      [],
      'Nothing was sent. Run it again with e.g. URL_PATH=/.',
    )
  return path
}

/** RPS=: a whole number of requests per second, 1..2000, over all domains. */
export function parseRps(value: string | undefined, env: Pick<Env, 'kind'>): number {
  if (value === undefined) return defaultRps(env)
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_RPS)
    throw new InputError(
      `RPS=${value}: expected a whole number of requests per second from 1 to ${MAX_RPS} (over all domains)`,
      [],
      'Nothing was sent. Run it again with e.g. RPS=50.',
    )
  return Number(value)
}

/** DURATION=: 60s, 2m or 90 (seconds); 1 s to 30 min. */
export function parseDuration(value: string | undefined): number {
  if (value === undefined) return 60
  const m = /^(\d+)(s|m)?$/.exec(value)
  const s = m ? Number(m[1]) * (m[2] === 'm' ? 60 : 1) : Number.NaN
  if (!(s >= 1 && s <= 1800))
    throw new InputError(
      `DURATION=${value}: expected seconds or minutes from 1s to 30m, e.g. DURATION=60s or DURATION=2m`,
      [],
      'Nothing was sent. Run it again with a duration of 1s to 30m.',
    )
  return s
}

/**
 * One target per domain, the rate split evenly (at least 1 per second each). With an edge, each domain
 * goes to the address its name resolves to (`edgeAddress`), over HTTPS; without, to the first web host's
 * port 80 (http_port when it is published elsewhere), over HTTP, as nginx serves an env without an edge.
 */
export function loadTargets(
  env: Env,
  rps: number,
  edgeAddress: (domain: string) => string | undefined,
  path = '/',
): Target[] {
  const web = env.hosts.find((h) => h.roles.includes('web')) ?? env.hosts[0]
  const each = Math.max(1, Math.round(rps / SERVICES.length))
  return SERVICES.map((service) => {
    const domain = env.domains[service]
    if (env.health.edge) {
      const address = edgeAddress(domain)
      if (!address)
        throw new InputError(
          `${domain} does not resolve${env.health.edgeResolver ? ` at ${env.health.edgeResolver}` : ''}: there is no edge to load`,
          [],
          'Nothing was sent. Check the DNS records (make dns ENV=<env> DRY_RUN=1), then run it again.',
        )
      return { service, domain, path, address, port: 443, via: 'edge' as const, rps: each }
    }
    if (!web) throw new InputError(`${env.file} has no host to load`)
    return {
      service,
      domain,
      path,
      address: web.address,
      port: web.httpPort ?? 80,
      via: 'origin' as const,
      rps: each,
    }
  })
}

export interface TargetResult {
  target: Target
  requests: number
  /** Connection errors and timeouts. */
  errors: number
  /** Answers with a status of 400 or more (a redirect is an answer). */
  failedAnswers: number
  latenciesMs: number[]
  durationS: number
}

export interface LoadSummary {
  rps: number
  p50_ms: number | null
  p95_ms: number | null
  p99_ms: number | null
  requests: number
  errors: number
  error_pct: number
  passed: boolean
}

const r1 = (n: number | null) => (n === null ? null : Math.round(n * 10) / 10)

export function summarise(results: readonly TargetResult[]): LoadSummary {
  const lat = results.flatMap((r) => r.latenciesMs)
  const requests = results.reduce((s, r) => s + r.requests, 0)
  const errors = results.reduce((s, r) => s + r.errors + r.failedAnswers, 0)
  const seconds = Math.max(...results.map((r) => r.durationS), 1e-9)
  const p95 = percentile(lat, 95)
  const attempts = Math.max(requests, errors)
  const errorPct = attempts === 0 ? 100 : Math.round((errors / attempts) * 10000) / 100
  return {
    rps: r1(lat.length / seconds) as number,
    p50_ms: r1(percentile(lat, 50)),
    p95_ms: r1(p95),
    p99_ms: r1(percentile(lat, 99)),
    requests,
    errors,
    error_pct: errorPct,
    // No answer at all is a failure too (p95 null).
    passed: p95 !== null && p95 < P95_LIMIT_MS && errorPct <= ERROR_LIMIT_PCT,
  }
}

/** Why the run failed, one line per broken limit. */
export function verdictProblems(s: LoadSummary): string[] {
  const out: string[] = []
  if (s.p95_ms === null) out.push('no request was answered')
  else if (s.p95_ms >= P95_LIMIT_MS) out.push(`p95 ${s.p95_ms} ms >= ${P95_LIMIT_MS} ms`)
  if (s.error_pct > ERROR_LIMIT_PCT)
    out.push(`errors ${s.error_pct}% > ${ERROR_LIMIT_PCT}% (${s.errors} of ${s.requests})`)
  return out
}

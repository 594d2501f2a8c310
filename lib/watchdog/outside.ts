import { Resolver } from 'node:dns/promises'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { OutsideTarget } from '../commands/watchdog.ts'
import type { CheckResult } from '../notify/alerts.ts'

// The outside view: another env's domains, probed from this host as a visitor reaches them (through
// DNS and Cloudflare for an env with an edge), so a dead droplet is seen by the other env's watchdog.
// A failed probe is tried once more after a pause within the run (a blip is not an outage); the alert
// engine then wants failure_threshold failed runs in a row, as for every check.
const PAGE = 'docs/runbooks/watchdog.md#the-outside-view'

/** What a probe got: a status, or why none (the same shape as the host's own HTTP checks). */
export interface HttpAnswer {
  status?: number
  ms: number
  error?: string
  /** The answer carried X-Maintenance: on (the maintenance page, by plan). */
  maintenance?: boolean
}
type TimedResult = CheckResult & { ms?: number }

export async function outsideChecks(
  targets: OutsideTarget[],
  timeoutS: number,
  retryMs = 2000,
): Promise<TimedResult[]> {
  return Promise.all(
    targets.map(async (t) => {
      let answer = await probe(t, timeoutS)
      if (!answerOk(answer)) {
        await new Promise((r) => setTimeout(r, retryMs))
        answer = await probe(t, timeoutS)
      }
      return outsideVerdict(t, answer)
    }),
  )
}

const answerOk = (a: HttpAnswer) =>
  a.status !== undefined &&
  ((a.status >= 200 && a.status < 300) || (a.status === 503 && a.maintenance === true))

/** ok on 2xx, and on the peer's maintenance page (503 with X-Maintenance: planned, not an outage). */
export function outsideVerdict(t: OutsideTarget, a: HttpAnswer): TimedResult {
  const what = `GET ${t.url}`
  return {
    check: t.check,
    ok: answerOk(a),
    ms: a.ms,
    detail:
      a.status === undefined
        ? `${what}: ${a.error ?? 'no answer'}`
        : a.status === 503 && a.maintenance
          ? `${what}: the maintenance page (503, planned)`
          : `${what}: ${a.status} in ${a.ms} ms`,
    runbook: PAGE,
  }
}

/** One GET of the target, its certificate checked against the system's roots (https). */
export async function probe(t: OutsideTarget, timeoutS: number): Promise<HttpAnswer> {
  const t0 = performance.now()
  const ms = () => Math.round(performance.now() - t0)
  const url = new URL(t.url)
  let address = t.connect
  if (!address && t.resolver) {
    const r = new Resolver({ timeout: 3000, tries: 2 })
    r.setServers([t.resolver])
    address = (await r.resolve4(url.hostname).catch(() => []))[0]
    if (!address) return { ms: ms(), error: `${url.hostname} does not resolve (at ${t.resolver})` }
  }
  const https = url.protocol === 'https:'
  return new Promise((resolve) => {
    const req = (https ? httpsRequest : httpRequest)({
      host: address ?? url.hostname,
      port: url.port || (https ? 443 : 80),
      path: `${url.pathname}${url.search}`,
      headers: { host: url.host, 'user-agent': 'conciliaextrato-watchdog-outside' },
      ...(https ? { servername: url.hostname } : {}),
      timeout: timeoutS * 1000,
      agent: false,
    })
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutS} s`)), timeoutS * 1000)
    req.on('response', (res) => {
      res.resume()
      res.on('end', () => {
        clearTimeout(timer)
        resolve({ status: res.statusCode ?? 0, ms: ms(), maintenance: res.headers['x-maintenance'] === 'on' })
      })
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutS} s`)))
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      resolve({ ms: ms(), error: err.code ? `connection failed (${err.code})` : err.message })
    })
    req.end()
  })
}

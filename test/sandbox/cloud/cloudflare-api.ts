/**
 * A local stand-in for the Cloudflare API v4 (`/client/v4`), close enough that the official `cloudflare`
 * SDK works against it: bearer-token auth, the `{success, errors, messages, result, result_info}` envelope,
 * page/per_page pagination, and request validation with the real error codes. Covers what the `dns`
 * runbook uses: zones, DNS records, zone settings, certificate packs, Origin CA, authenticated origin
 * pulls and `/ips`. Also serves `/ips-v4` and `/ips-v6` as text, like www.cloudflare.com.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import * as certs from './cloudflare-certs.ts'
import {
  type CfAnswer,
  CfError,
  type CfHandler,
  type CfMessage,
  type CloudflareState,
  cfError,
  cfId,
  zoneByName,
} from './cloudflare-common.ts'
import * as dns from './cloudflare-dns.ts'
import { CLOUDFLARE_IPV4_CIDRS, CLOUDFLARE_IPV6_CIDRS, ipsResult } from './cloudflare-ips.ts'
import * as originPull from './cloudflare-origin-pull.ts'
import { createPki, issueClientCertificate, removePki } from './cloudflare-pki.ts'
import * as zones from './cloudflare-zones.ts'
import {
  FaultInjector,
  findRoute,
  type LoggedRequest,
  listenLocal,
  logRequest,
  parseJson,
  type Route,
  readBody,
  sendJson,
} from './http-util.ts'

export interface CloudflareApiOptions {
  /** Accepted API tokens: like real ones, at least 40 characters of A-Z, a-z, 0-9, `_` and `-`. */
  tokens: string[]
  /** The account's zones (default conciliaextrato.com); give an id to pin it. */
  zones?: Array<string | { name: string; id?: string }>
  accountId?: string
  accountName?: string
  /** The `/ips` lists to start with (default: Cloudflare's published ranges). */
  ips?: { ipv4: string[]; ipv6: string[] }
  /** Milliseconds until an ordered certificate pack turns active (default 0: on the next read);
   * null: only through `activateCertificatePack`. */
  certificatePackActivationMs?: number | null
  /** Accept proxied records that point at private or loopback addresses (the real API refuses them). */
  allowPrivateProxiedTargets?: boolean
}

export type CloudflareApi = Awaited<ReturnType<typeof startCloudflareApi>>

const API = '/client/v4'
const TOKEN_FORMAT = /^[A-Za-z0-9_-]{40,}$/

interface CfRoute {
  public?: boolean
  run: CfHandler
}

function routes(ca: certs.OriginCa): Route<CfRoute>[] {
  const r = (method: string, pattern: string, run: CfHandler, open = false): Route<CfRoute> => ({
    method,
    pattern,
    handler: { run, public: open },
  })
  const zone = '/zones/:zone_id'
  return [
    r('GET', '/ips', (ctx) => ({ result: { ...ctx.state.ips } }), true),
    r('GET', '/user/tokens/verify', verifyToken),
    r('GET', '/zones', zones.listZones),
    r('GET', zone, zones.getZone),
    r('GET', `${zone}/settings`, zones.listSettings),
    r('GET', `${zone}/settings/:setting_id`, zones.getSetting),
    r('PATCH', `${zone}/settings/:setting_id`, zones.editSetting),
    r('GET', `${zone}/dns_records`, dns.listRecords),
    r('POST', `${zone}/dns_records`, dns.createRecord),
    r('GET', `${zone}/dns_records/:record_id`, dns.getRecord),
    r('PATCH', `${zone}/dns_records/:record_id`, dns.editRecord),
    r('PUT', `${zone}/dns_records/:record_id`, dns.overwriteRecord),
    r('DELETE', `${zone}/dns_records/:record_id`, dns.deleteRecord),
    r('GET', `${zone}/ssl/certificate_packs`, certs.listPacks),
    r('POST', `${zone}/ssl/certificate_packs/order`, certs.orderPack),
    r('GET', `${zone}/ssl/certificate_packs/:pack_id`, certs.getPack),
    r('DELETE', `${zone}/ssl/certificate_packs/:pack_id`, certs.deletePack),
    r('GET', `${zone}/origin_tls_client_auth/settings`, zones.getOriginPull),
    r('PUT', `${zone}/origin_tls_client_auth/settings`, zones.putOriginPull),
    r('GET', `${zone}/origin_tls_client_auth`, originPull.listOriginPullCerts),
    r('POST', `${zone}/origin_tls_client_auth`, originPull.uploadOriginPullCert),
    r('GET', `${zone}/origin_tls_client_auth/:certificate_id`, originPull.getOriginPullCert),
    r('DELETE', `${zone}/origin_tls_client_auth/:certificate_id`, originPull.deleteOriginPullCert),
    r('POST', '/certificates', ca.create),
    r('GET', '/certificates', ca.list),
    r('GET', '/certificates/:certificate_id', ca.get),
    r('DELETE', '/certificates/:certificate_id', ca.revoke),
  ]
}

function verifyToken(ctx: Parameters<CfHandler>[0]): CfAnswer {
  return {
    result: { id: ctx.state.tokens.get(ctx.token) ?? '', status: 'active' },
    messages: [{ code: 10000, message: 'This API Token is valid and active', type: null }],
  }
}

/** Answers the header checks the real API makes before routing: presence, format, then the token. */
function authenticate(req: IncomingMessage, state: CloudflareState, path: string): string {
  const header = req.headers.authorization
  if (header === undefined) {
    if (req.headers['x-auth-key'] !== undefined)
      throw cfError(403, 9103, 'Unknown X-Auth-Key or X-Auth-Email')
    throw cfError(400, 9106, 'Missing X-Auth-Key, X-Auth-Email or Authorization headers')
  }
  const token = /^Bearer (\S+)$/.exec(header)?.[1]
  if (!token || !TOKEN_FORMAT.test(token))
    throw cfError(400, 6003, 'Invalid request headers', [
      { code: 6111, message: 'Invalid format for Authorization header' },
    ])
  if (!state.tokens.has(token)) {
    if (path === '/user/tokens/verify') throw cfError(401, 1000, 'Invalid API Token')
    throw cfError(403, 10000, 'Authentication error')
  }
  return token
}

function bodyOf(req: IncomingMessage, text: string): unknown {
  if (text.trim() === '') return undefined
  const type = req.headers['content-type'] ?? ''
  if (!/^application\/json\b/i.test(type))
    throw cfError(400, 6003, 'Invalid request headers', [
      {
        code: 6105,
        message: 'Invalid Content-Type header, valid values are application/json,multipart/form-data',
      },
    ])
  const parsed = parseJson(text)
  if (!parsed.ok) throw cfError(400, 6007, 'Malformed JSON in request body')
  return parsed.value
}

const envelope = (answer: CfAnswer) => ({
  success: true,
  errors: [],
  messages: answer.messages ?? [],
  result: answer.result,
  ...(answer.result_info ? { result_info: answer.result_info } : {}),
})
const errorEnvelope = (errors: CfMessage[]) => ({ success: false, errors, messages: [], result: null })

function seedState(opts: CloudflareApiOptions, seeds: Array<{ name: string; id: string }>): CloudflareState {
  const state: CloudflareState = {
    accountId: opts.accountId ?? '9a7806061c88ada191ed06f989cc3dac',
    accountName: opts.accountName ?? 'ConciliaExtrato',
    tokens: new Map(
      opts.tokens.map((t, i) => [t, `${(i + 1).toString(16).padStart(2, '0')}${'0'.repeat(30)}`]),
    ),
    zones: new Map(),
    originCertificates: new Map(),
    ips: ipsResult(opts.ips?.ipv4 ?? CLOUDFLARE_IPV4_CIDRS, opts.ips?.ipv6 ?? CLOUDFLARE_IPV6_CIDRS),
    allowPrivateProxiedTargets: opts.allowPrivateProxiedTargets ?? false,
    packActivationMs: opts.certificatePackActivationMs === undefined ? 0 : opts.certificatePackActivationMs,
  }
  for (const seed of seeds) {
    const zone = zones.newZone(seed.name, seed.id)
    const pack = certs.universalPack(zone)
    zone.packs.set(pack.id, pack)
    state.zones.set(zone.id, zone)
  }
  return state
}

export async function startCloudflareApi(options: CloudflareApiOptions) {
  for (const token of options.tokens)
    if (!TOKEN_FORMAT.test(token))
      throw new Error(`test token "${token}" does not look like a Cloudflare API token`)
  const seeds = (options.zones ?? ['conciliaextrato.com']).map((z) =>
    typeof z === 'string' ? { name: z, id: cfId() } : { name: z.name, id: z.id ?? cfId() },
  )
  const pki = await createPki()
  const ca = certs.originCa(pki)
  const table = routes(ca)
  const faults = new FaultInjector()
  const requests: LoggedRequest[] = []
  let state = seedState(options, seeds)

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    const method = req.method ?? 'GET'
    const text = await readBody(req)
    const entry = logRequest(requests, method, url, text)
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      entry.status = status
      sendJson(res, status, body, headers)
    }

    const fault = faults.take(method, url.pathname)
    if (fault) {
      const limited = fault.status === 429
      const error = limited
        ? { code: 971, message: 'Please wait and consider throttling your request speed' }
        : { code: 10001, message: 'Internal server error' }
      const headers: Record<string, string> = limited ? { 'retry-after': String(fault.retryAfterS) } : {}
      return answer(fault.status, errorEnvelope([error]), headers)
    }

    if (method === 'GET' && (url.pathname === '/ips-v4' || url.pathname === '/ips-v6')) {
      const list = url.pathname === '/ips-v4' ? state.ips.ipv4_cidrs : state.ips.ipv6_cidrs
      entry.status = 200
      res.writeHead(200, { 'content-type': 'text/plain', etag: `"${state.ips.etag}"` })
      res.end(list.join('\n'))
      return
    }
    try {
      if (!url.pathname.startsWith(`${API}/`)) throw cfError(404, 7000, 'No route for that URI')
      const path = url.pathname.slice(API.length).replace(/\/+$/, '') || '/'
      const { route, params, pathMatched } = findRoute(table, method, path)
      if (!route)
        throw pathMatched
          ? cfError(405, 10405, `Method ${method} not allowed for this route`)
          : cfError(404, 7000, 'No route for that URI')
      const token = route.handler.public ? '' : authenticate(req, state, path)
      const body = bodyOf(req, text)
      const ctx = { state, params, query: url.searchParams, body, path: url.pathname, token }
      const result = await route.handler.run(ctx)
      answer(result.status ?? 200, envelope(result))
    } catch (err) {
      if (err instanceof CfError) answer(err.status, errorEnvelope(err.errors))
      else
        answer(500, errorEnvelope([{ code: 10001, message: `test double error: ${(err as Error).message}` }]))
    }
  }

  const listening = await listenLocal(handle)
  return {
    url: listening.url,
    /** Pass as the SDK's `baseURL`. */
    apiBase: `${listening.url}${API}`,
    get state(): CloudflareState {
      return state
    },
    /** Every request, oldest first: method, path, query, parsed body, answered status. */
    requests,
    /** `faults.add({ status: 429 | 5xx, count, path, method, retryAfterS })`. */
    faults,
    originCaPem: { rsa: pki.originRsa.pem, ecc: pki.originEcc.pem },
    /** The CA an origin should trust for authenticated origin pulls (`ssl_client_certificate`). */
    originPullCaPem: pki.originPull.pem,
    /** A client certificate and key signed by the origin-pull CA: what Cloudflare's edge presents. */
    issueOriginPullClientCertificate: (days?: number) => issueClientCertificate(pki.originPull, days),
    /** The next Origin CA certificate expires `seconds` after issuance (negative: already expired). */
    expireNextOriginCertificateIn: (seconds: number) => ca.expireNextIn(seconds),
    /**
     * What the edge presents to the origin for a zone with its own origin-pull certificate: the newest
     * uploaded certificate and its key (tests play the edge with it); undefined when none was uploaded.
     */
    zoneClientCertificate(name: string): { cert: string; key: string } | undefined {
      const zone = zoneByName(state, name)
      const newest = [...(zone?.originPullCerts.values() ?? [])].filter((c) => c.status === 'active').pop()
      return newest ? { cert: newest.certificate, key: newest.private_key } : undefined
    },
    zoneId(name: string): string {
      const zone = zoneByName(state, name)
      if (!zone) throw new Error(`no zone ${name} in the Cloudflare double`)
      return zone.id
    },
    activateCertificatePack(packId: string): void {
      const pack = [...state.zones.values()].map((z) => z.packs.get(packId)).find(Boolean)
      if (!pack) throw new Error(`no certificate pack ${packId}`)
      pack.activate_at = 0
    },
    /** Replaces the published ranges; the etag changes with them. */
    setIps(ipv4: string[], ipv6: string[]): void {
      state.ips = ipsResult(ipv4, ipv6)
    },
    /** Back to the seeded state (same zone ids), with no faults armed and an empty request log. */
    reset(): void {
      state = seedState(options, seeds)
      ca.expireNextIn(undefined)
      faults.clear()
      requests.length = 0
    },
    async close(): Promise<void> {
      await listening.close()
      removePki(pki)
    },
  }
}

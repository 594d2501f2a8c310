/** Types and helpers shared by the Cloudflare API double's modules: errors, pagination, the state. */
import { randomBytes } from 'node:crypto'

export interface CfMessage {
  code: number
  message: string
  error_chain?: CfMessage[]
}

/** Thrown by handlers; the server turns it into the v4 error envelope. */
export class CfError extends Error {
  constructor(
    readonly status: number,
    readonly errors: CfMessage[],
  ) {
    super(errors.map((e) => `${e.code}: ${e.message}`).join('; '))
  }
}

export function cfError(status: number, code: number, message: string, chain?: CfMessage[]): CfError {
  return new CfError(status, [chain ? { code, message, error_chain: chain } : { code, message }])
}

/** DNS validation failures come wrapped: 1004 "DNS Validation Error" with the cause in `error_chain`. */
export function dnsValidation(code: number, message: string): CfError {
  return cfError(400, 1004, 'DNS Validation Error', [{ code, message }])
}

export interface ResultInfo {
  page: number
  per_page: number
  count: number
  total_count: number
  total_pages: number
}

export interface CfAnswer {
  status?: number
  result: unknown
  result_info?: ResultInfo
  messages?: Array<{ code: number; message: string; type: string | null }>
}

export interface PageOptions {
  defaultPerPage: number
  minPerPage: number
  maxPerPage: number
  /** dns_records reports 1 page for an empty list, zones 0. */
  emptyPages: 0 | 1
}

function intParam(raw: string | null, fallback: number): number {
  if (raw === null || raw === '') return fallback
  const n = Number(raw)
  return Number.isInteger(n) ? n : fallback
}

/** Page/per_page pagination; a page past the end is an empty array (the SDK stops on it). */
export function paginate<T>(items: T[], query: URLSearchParams, opts: PageOptions) {
  const perPage = Math.min(
    opts.maxPerPage,
    Math.max(opts.minPerPage, intParam(query.get('per_page'), opts.defaultPerPage)),
  )
  const page = Math.max(1, intParam(query.get('page'), 1))
  const slice = items.slice((page - 1) * perPage, page * perPage)
  const totalPages = items.length === 0 ? opts.emptyPages : Math.ceil(items.length / perPage)
  const info: ResultInfo = {
    page,
    per_page: perPage,
    count: slice.length,
    total_count: items.length,
    total_pages: totalPages,
  }
  return { items: slice, info }
}

/** 32 lowercase hex characters, the shape of Cloudflare zone, record and account ids. */
export const cfId = () => randomBytes(16).toString('hex')
export const isCfId = (id: string) => /^[0-9a-f]{32}$/.test(id)
export const nowIso = () => new Date().toISOString()

/** 7003: what the API answers for a path whose identifier does not resolve. */
export function couldNotRoute(path: string): CfError {
  return cfError(400, 7003, `Could not route to ${path}, perhaps your object identifier is invalid?`)
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Whether `host` (lowercase, no trailing dot) is the zone apex, a name under it or `*.` under it. */
export function inZone(host: string, zoneName: string): boolean {
  const bare = host.startsWith('*.') ? host.slice(2) : host
  return bare === zoneName || bare.endsWith(`.${zoneName}`)
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/

/** A DNS name (lowercase, no trailing dot), optionally with a leading `*` label. */
export function isHostname(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false
  const labels = name.split('.')
  return labels.every((label, i) => (i === 0 && label === '*') || LABEL.test(label))
}

export interface ZoneSetting {
  id: string
  value: unknown
  editable: boolean
  modified_on: string | null
}

export interface DnsRecord {
  id: string
  name: string
  type: string
  content: string
  proxiable: boolean
  proxied: boolean
  ttl: number
  settings: Record<string, unknown>
  meta: Record<string, unknown>
  comment: string | null
  tags: string[]
  created_on: string
  modified_on: string
  priority?: number
  data?: Record<string, unknown>
}

export interface CertificatePack {
  id: string
  type: 'universal' | 'advanced'
  hosts: string[]
  status: string
  validation_method: string
  validity_days: number
  certificate_authority: string
  cloudflare_branding: boolean
  created_at: number
  /** Epoch ms at which a pending pack turns active; null = only through the test hook. */
  activate_at: number | null
}

export interface Zone {
  id: string
  name: string
  created_on: string
  settings: Map<string, ZoneSetting>
  records: Map<string, DnsRecord>
  packs: Map<string, CertificatePack>
  originPull: { enabled: boolean }
  /** Zone-level authenticated origin pull certificates (uploaded certificate and key). */
  originPullCerts: Map<string, ZoneOriginPullCert>
}

export interface ZoneOriginPullCert {
  id: string
  certificate: string
  /** Kept by Cloudflare, never returned by the API: the edge presents the certificate with it. */
  private_key: string
  issuer: string
  signature: string
  expires_on: string
  uploaded_on: string
  status: 'active' | 'deleted'
}

export interface OriginCertificate {
  id: string
  certificate: string
  hostnames: string[]
  expires_on: string
  request_type: string
  requested_validity: number
  csr: string
  revoked_at?: string
}

export interface CloudflareState {
  accountId: string
  accountName: string
  /** Accepted API tokens and the ids `/user/tokens/verify` reports for them; delete one to revoke it. */
  tokens: Map<string, string>
  zones: Map<string, Zone>
  originCertificates: Map<string, OriginCertificate>
  ips: { ipv4_cidrs: string[]; ipv6_cidrs: string[]; etag: string }
  /** Allow proxied A/AAAA records that point at private or loopback addresses (the real API refuses). */
  allowPrivateProxiedTargets: boolean
  /** Milliseconds until an ordered certificate pack turns active; null = only `activateCertificatePack`. */
  packActivationMs: number | null
}

export function zoneByName(state: CloudflareState, name: string): Zone | undefined {
  return [...state.zones.values()].find((z) => z.name === name)
}

export interface CfContext {
  state: CloudflareState
  params: Record<string, string>
  query: URLSearchParams
  body: unknown
  /** The request path, e.g. `/client/v4/zones/<id>/dns_records`. */
  path: string
  /** The caller's API token ('' on public routes). */
  token: string
}

export type CfHandler = (ctx: CfContext) => CfAnswer | Promise<CfAnswer>

/** The zone named by the `:zone_id` path parameter, or the 7003 "could not route" error. */
export function requireZone(ctx: CfContext): Zone {
  const id = ctx.params.zone_id ?? ''
  const zone = isCfId(id) ? ctx.state.zones.get(id) : undefined
  if (!zone) throw couldNotRoute(ctx.path)
  return zone
}

/** DNS records of the Cloudflare API double, validated the way the real API validates them. */
import { isIPv4, isIPv6 } from 'node:net'
import {
  type CfAnswer,
  type CfContext,
  cfError,
  cfId,
  couldNotRoute,
  type DnsRecord,
  dnsValidation,
  isCfId,
  isHostname,
  isObject,
  nowIso,
  paginate,
  requireZone,
  type Zone,
} from './cloudflare-common.ts'

export const RECORD_TYPES = [
  'A',
  'AAAA',
  'CAA',
  'CERT',
  'CNAME',
  'DNSKEY',
  'DS',
  'HTTPS',
  'LOC',
  'MX',
  'NAPTR',
  'NS',
  'OPENPGPKEY',
  'PTR',
  'SMIMEA',
  'SRV',
  'SSHFP',
  'SVCB',
  'TLSA',
  'TXT',
  'URI',
]
const PROXIABLE = ['A', 'AAAA', 'CNAME']
const HOST_CONTENT = ['CNAME', 'MX', 'NS', 'PTR']

/** Loopback, private, link-local, CGNAT and unspecified targets cannot be proxied. */
function privateTarget(type: string, ip: string): boolean {
  if (type === 'A') {
    const [a = 0, b = 0] = ip.split('.').map(Number)
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 100 && b >= 64 && b < 128) ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b < 32) ||
      (a === 192 && b === 168)
    )
  }
  return type === 'AAAA' && (ip === '::' || ip === '::1' || /^f[cd]|^fe[89ab]/i.test(ip))
}

/** `www`, `www.zone`, `@` and `zone.` all name records in the zone; any other name gets the zone appended. */
function fqdn(name: string, zone: Zone): string {
  const bare = name.trim().toLowerCase().replace(/\.$/, '')
  if (bare === '@' || bare === '') return zone.name
  return bare === zone.name || bare.endsWith(`.${zone.name}`) ? bare : `${bare}.${zone.name}`
}

function contentFor(type: string, input: Record<string, unknown>): { content: string; data?: unknown } {
  const raw = input.content
  const str = typeof raw === 'string' ? raw.trim() : undefined
  switch (type) {
    case 'A':
      if (!str || !isIPv4(str)) throw cfError(400, 9005, 'Content for A record must be a valid IPv4 address.')
      return { content: str }
    case 'AAAA':
      if (!str || !isIPv6(str))
        throw cfError(400, 9006, 'Content for AAAA record must be a valid IPv6 address.')
      return { content: new URL(`http://[${str}]`).hostname.slice(1, -1) }
    case 'TXT':
      if (typeof raw !== 'string' || raw.length === 0)
        throw dnsValidation(9009, 'Content for TXT record is invalid.')
      if (raw.length > 8192) throw dnsValidation(9101, 'Content for TXT record is too long.')
      return { content: raw }
    case 'CAA': {
      const data = input.data
      if (!isObject(data) || !['issue', 'issuewild', 'iodef'].includes(String(data.tag)))
        throw dnsValidation(9102, 'CAA record data is invalid.')
      const flags = data.flags ?? 0
      if (!Number.isInteger(flags) || (flags as number) < 0 || (flags as number) > 255)
        throw dnsValidation(9102, 'CAA record data is invalid.')
      return { content: `${flags} ${data.tag} "${String(data.value ?? '')}"`, data: { ...data, flags } }
    }
  }
  if (HOST_CONTENT.includes(type)) {
    const host = str?.toLowerCase().replace(/\.$/, '')
    if (!host || !isHostname(host)) throw dnsValidation(9007, `Content for ${type} record is invalid.`)
    return { content: host }
  }
  if (str) return { content: str, data: input.data }
  if (isObject(input.data)) return { content: Object.values(input.data).join(' '), data: input.data }
  throw dnsValidation(9009, `Content for ${type} record is invalid.`)
}

/** Validates a whole record (a create, an overwrite, or a merged edit) into its stored form. */
function validRecord(zone: Zone, input: Record<string, unknown>, allowPrivateProxied: boolean) {
  const type = input.type
  if (typeof type !== 'string' || !RECORD_TYPES.includes(type))
    throw dnsValidation(9020, 'Invalid DNS record type.')
  if (typeof input.name !== 'string') throw cfError(400, 9000, 'DNS name is invalid.')
  const name = fqdn(input.name, zone)
  if (!isHostname(name)) throw cfError(400, 9000, 'DNS name is invalid.')
  const { content, data } = contentFor(type, input)
  const proxied = input.proxied ?? false
  if (typeof proxied !== 'boolean') throw dnsValidation(9003, 'Invalid proxied mode.')
  const proxiable = PROXIABLE.includes(type) && (allowPrivateProxied || !privateTarget(type, content))
  if (proxied && !PROXIABLE.includes(type)) throw cfError(400, 9004, 'This record type cannot be proxied.')
  if (proxied && !proxiable)
    throw cfError(400, 9003, `Target ${content} is not allowed for a proxied record.`)
  const ttl = input.ttl ?? 1
  if (!Number.isInteger(ttl) || (ttl !== 1 && ((ttl as number) < 60 || (ttl as number) > 86400)))
    throw dnsValidation(9021, 'TTL must be between 60 and 86400 seconds, or 1 for Automatic.')
  const comment = input.comment ?? null
  if (comment !== null && (typeof comment !== 'string' || comment.length > 100))
    throw dnsValidation(9104, 'Comment must be a string of at most 100 characters.')
  const tags = input.tags ?? []
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string'))
    throw dnsValidation(9105, 'Tags must be an array of strings.')
  const settings = isObject(input.settings) ? input.settings : {}
  const record = { type, name, content, proxied, proxiable, ttl: proxied ? 1 : (ttl as number), comment }
  const extra: Partial<DnsRecord> = { tags: tags as string[], settings }
  if (data !== undefined) extra.data = data as Record<string, unknown>
  if (type === 'MX' || type === 'URI') {
    const priority = input.priority
    if (!Number.isInteger(priority) || (priority as number) < 0 || (priority as number) > 65535)
      throw dnsValidation(9034, `${type} priority must be an integer between 0 and 65535.`)
    extra.priority = priority as number
  }
  return { ...record, ...extra }
}

type Candidate = ReturnType<typeof validRecord>

/** The real API refuses identical records and CNAMEs sharing a name with A/AAAA/CNAME (or NS). */
function checkConflicts(zone: Zone, rec: Candidate, selfId?: string) {
  const same = [...zone.records.values()].filter((r) => r.id !== selfId && r.name === rec.name)
  if (same.some((r) => r.type === rec.type && r.content === rec.content && r.priority === rec.priority))
    throw cfError(400, 81058, 'An identical record already exists.')
  if (rec.type === 'CNAME' && same.some((r) => ['A', 'AAAA', 'CNAME'].includes(r.type)))
    throw cfError(400, 81053, 'An A, AAAA, or CNAME record with that host already exists.')
  if ((rec.type === 'A' || rec.type === 'AAAA') && same.some((r) => r.type === 'CNAME'))
    throw cfError(400, 81054, 'A CNAME record with that host already exists.')
  if (rec.name !== zone.name && same.some((r) => (r.type === 'NS') !== (rec.type === 'NS')))
    throw cfError(400, 81056, 'NS records cannot exist on the same name as any other record type.')
}

function requireRecord(ctx: CfContext, zone: Zone): DnsRecord {
  const id = ctx.params.record_id ?? ''
  if (!isCfId(id)) throw couldNotRoute(ctx.path)
  const record = zone.records.get(id)
  if (!record) throw cfError(404, 81044, 'Record does not exist.')
  return record
}

function bodyObject(ctx: CfContext): Record<string, unknown> {
  if (!isObject(ctx.body)) throw cfError(400, 9207, 'Request body is invalid.')
  return ctx.body
}

const view = (r: DnsRecord) => structuredClone(r)

export function createRecord(ctx: CfContext): CfAnswer {
  const zone = requireZone(ctx)
  const rec = validRecord(zone, bodyObject(ctx), ctx.state.allowPrivateProxiedTargets)
  checkConflicts(zone, rec)
  const now = nowIso()
  const record: DnsRecord = { id: cfId(), ...rec, meta: {}, created_on: now, modified_on: now } as DnsRecord
  zone.records.set(record.id, record)
  return { result: view(record) }
}

function replace(ctx: CfContext, merge: boolean): CfAnswer {
  const zone = requireZone(ctx)
  const current = requireRecord(ctx, zone)
  const body = bodyObject(ctx)
  const input = merge ? { ...current, ...body } : body
  const rec = validRecord(zone, input, ctx.state.allowPrivateProxiedTargets)
  checkConflicts(zone, rec, current.id)
  const updated = { id: current.id, ...rec, meta: current.meta, created_on: current.created_on } as DnsRecord
  updated.modified_on = nowIso()
  zone.records.set(current.id, updated)
  return { result: view(updated) }
}

export const editRecord = (ctx: CfContext) => replace(ctx, true)
export const overwriteRecord = (ctx: CfContext) => replace(ctx, false)

export function getRecord(ctx: CfContext): CfAnswer {
  return { result: view(requireRecord(ctx, requireZone(ctx))) }
}

export function deleteRecord(ctx: CfContext): CfAnswer {
  const zone = requireZone(ctx)
  const record = requireRecord(ctx, zone)
  zone.records.delete(record.id)
  return { result: { id: record.id } }
}

/** `field=x` or `field.exact|contains|startswith|endswith=x`, case-insensitive. */
function textFilters(query: URLSearchParams, field: 'name' | 'content') {
  const ops: Record<string, (v: string, x: string) => boolean> = {
    '': (v, x) => v === x,
    exact: (v, x) => v === x,
    contains: (v, x) => v.includes(x),
    startswith: (v, x) => v.startsWith(x),
    endswith: (v, x) => v.endsWith(x),
  }
  const filters: Array<(r: DnsRecord) => boolean> = []
  for (const [op, test] of Object.entries(ops)) {
    const raw = query.get(op ? `${field}.${op}` : field)
    if (raw === null) continue
    const want = raw.toLowerCase()
    filters.push((r) => test(r[field].toLowerCase(), want))
  }
  return filters
}

export function listRecords(ctx: CfContext): CfAnswer {
  const zone = requireZone(ctx)
  const q = ctx.query
  const filters = [...textFilters(q, 'name'), ...textFilters(q, 'content')]
  const type = q.get('type')
  if (type !== null) filters.push((r) => r.type === type.toUpperCase())
  const proxied = q.get('proxied')
  if (proxied !== null) filters.push((r) => String(r.proxied) === proxied)
  const any = q.get('match') === 'any'
  let records = [...zone.records.values()].filter(
    (r) => filters.length === 0 || (any ? filters.some((f) => f(r)) : filters.every((f) => f(r))),
  )
  const order = q.get('order') as keyof DnsRecord | null
  if (order && ['type', 'name', 'content', 'ttl', 'proxied'].includes(order)) {
    const sign = q.get('direction') === 'desc' ? -1 : 1
    const cmp = (a: DnsRecord, b: DnsRecord) =>
      order === 'ttl' ? a.ttl - b.ttl : String(a[order]).localeCompare(String(b[order]))
    records = records.sort((a, b) => cmp(a, b) * sign)
  }
  const page = paginate(records, q, {
    defaultPerPage: 100,
    minPerPage: 5,
    maxPerPage: 5_000_000,
    emptyPages: 1,
  })
  return { result: page.items.map(view), result_info: page.info }
}

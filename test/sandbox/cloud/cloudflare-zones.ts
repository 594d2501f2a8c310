/** Zones, zone settings and authenticated origin pulls of the Cloudflare API double. */
import {
  type CfAnswer,
  type CfContext,
  type CloudflareState,
  cfError,
  cfId,
  isObject,
  nowIso,
  paginate,
  requireZone,
  type Zone,
  type ZoneSetting,
} from './cloudflare-common.ts'

const HSTS_KEYS = ['enabled', 'max_age', 'include_subdomains', 'preload', 'nosniff'] as const
const oneOf = (values: unknown[]) => (v: unknown) => values.includes(v)
const onOff = oneOf(['on', 'off'])

function validHsts(value: unknown): boolean {
  if (!isObject(value)) return false
  const hsts = value.strict_transport_security
  if (Object.keys(value).some((k) => k !== 'strict_transport_security') || !isObject(hsts)) return false
  return Object.entries(hsts).every(([k, v]) =>
    k === 'max_age'
      ? Number.isInteger(v) && (v as number) >= 0
      : (HSTS_KEYS as readonly string[]).includes(k) && typeof v === 'boolean',
  )
}

interface SettingSpec {
  initial: unknown
  valid: (value: unknown) => boolean
}

/** The settings the runbooks touch, with the defaults of a new Free zone and the values the API accepts. */
export const SETTINGS: Record<string, SettingSpec> = {
  ssl: { initial: 'flexible', valid: oneOf(['off', 'flexible', 'full', 'strict', 'origin_pull']) },
  min_tls_version: { initial: '1.0', valid: oneOf(['1.0', '1.1', '1.2', '1.3']) },
  tls_1_3: { initial: 'on', valid: oneOf(['on', 'off', 'zrt']) },
  always_use_https: { initial: 'off', valid: onOff },
  automatic_https_rewrites: { initial: 'on', valid: onOff },
  tls_client_auth: { initial: 'off', valid: onOff },
  opportunistic_encryption: { initial: 'on', valid: onOff },
  always_online: { initial: 'off', valid: onOff },
  http3: { initial: 'on', valid: onOff },
  '0rtt': { initial: 'off', valid: onOff },
  ipv6: { initial: 'on', valid: onOff },
  websockets: { initial: 'on', valid: onOff },
  brotli: { initial: 'on', valid: onOff },
  security_header: {
    initial: {
      strict_transport_security: {
        enabled: false,
        max_age: 0,
        include_subdomains: false,
        preload: false,
        nosniff: false,
      },
    },
    valid: validHsts,
  },
}

export function newZone(name: string, id = cfId()): Zone {
  const settings = new Map<string, ZoneSetting>()
  for (const [key, spec] of Object.entries(SETTINGS))
    settings.set(key, { id: key, value: structuredClone(spec.initial), editable: true, modified_on: null })
  return {
    id,
    name: name.toLowerCase(),
    created_on: nowIso(),
    settings,
    records: new Map(),
    packs: new Map(),
    originPull: { enabled: false },
    originPullCerts: new Map(),
  }
}

export function zoneView(state: CloudflareState, zone: Zone) {
  return {
    id: zone.id,
    name: zone.name,
    status: 'active',
    paused: false,
    type: 'full',
    development_mode: 0,
    name_servers: ['ada.ns.cloudflare.com', 'bob.ns.cloudflare.com'],
    original_name_servers: null,
    original_registrar: null,
    original_dnshost: null,
    created_on: zone.created_on,
    modified_on: zone.created_on,
    activated_on: zone.created_on,
    meta: { step: 2, custom_certificate_quota: 0, page_rule_quota: 3, phishing_detected: false },
    owner: { id: null, type: 'user', email: null },
    account: { id: state.accountId, name: state.accountName },
    tenant: { id: null, name: null },
    tenant_unit: { id: null },
    permissions: ['#dns_records:edit', '#dns_records:read', '#ssl:edit', '#ssl:read', '#zone:read'],
    plan: {
      id: '0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee',
      name: 'Free Website',
      price: 0,
      currency: 'USD',
      frequency: '',
      is_subscribed: false,
      can_subscribe: false,
      legacy_id: 'free',
      legacy_discount: false,
      externally_managed: false,
    },
  }
}

/** `name` takes an optional operator prefix: `starts_with:`, `contains:`, `not_equal:`... */
function nameFilter(raw: string): (name: string) => boolean {
  const match = /^(equal|not_equal|starts_with|ends_with|contains)(_case_sensitive)?:(.*)$/.exec(raw)
  const op = match?.[1] ?? 'equal'
  const sensitive = Boolean(match?.[2])
  const needle = match ? (match[3] ?? '') : raw
  const norm = (s: string) => (sensitive ? s : s.toLowerCase())
  const tests: Record<string, (n: string, v: string) => boolean> = {
    equal: (n, v) => n === v,
    not_equal: (n, v) => n !== v,
    starts_with: (n, v) => n.startsWith(v),
    ends_with: (n, v) => n.endsWith(v),
    contains: (n, v) => n.includes(v),
  }
  const test = tests[op] ?? tests.equal
  return (name) => test?.(norm(name), norm(needle)) ?? false
}

export function listZones(ctx: CfContext): CfAnswer {
  const { state, query } = ctx
  const filters: Array<(z: Zone) => boolean> = []
  const name = query.get('name')
  if (name !== null) {
    const test = nameFilter(name)
    filters.push((z) => test(z.name))
  }
  const status = query.get('status')
  if (status !== null) filters.push(() => status === 'active')
  const accountId = query.get('account.id')
  if (accountId !== null) filters.push(() => accountId === state.accountId)
  const accountName = query.get('account.name')
  if (accountName !== null) filters.push(() => nameFilter(accountName)(state.accountName))
  const any = query.get('match') === 'any'
  const zones = [...state.zones.values()]
    .filter((z) => filters.length === 0 || (any ? filters.some((f) => f(z)) : filters.every((f) => f(z))))
    .sort((a, b) => a.name.localeCompare(b.name) * (query.get('direction') === 'desc' ? -1 : 1))
  const page = paginate(zones, query, { defaultPerPage: 20, minPerPage: 5, maxPerPage: 50, emptyPages: 0 })
  return { result: page.items.map((z) => zoneView(state, z)), result_info: page.info }
}

export function getZone(ctx: CfContext): CfAnswer {
  return { result: zoneView(ctx.state, requireZone(ctx)) }
}

function settingOf(ctx: CfContext): ZoneSetting {
  const zone = requireZone(ctx)
  const id = ctx.params.setting_id ?? ''
  const setting = zone.settings.get(id)
  if (!setting) throw cfError(400, 1006, `Unrecognized zone setting name: ${id}`)
  return setting
}

export function listSettings(ctx: CfContext): CfAnswer {
  return { result: [...requireZone(ctx).settings.values()] }
}

export function getSetting(ctx: CfContext): CfAnswer {
  return { result: settingOf(ctx) }
}

export function editSetting(ctx: CfContext): CfAnswer {
  const setting = settingOf(ctx)
  const invalid = () => cfError(400, 1007, `Invalid value for zone setting ${setting.id}`)
  if (!isObject(ctx.body) || !('value' in ctx.body)) throw invalid()
  let value = ctx.body.value
  if (setting.id === 'security_header' && isObject(value) && isObject(setting.value)) {
    // A partial strict_transport_security object changes only the fields it names.
    const current = setting.value.strict_transport_security
    const next = value.strict_transport_security
    if (isObject(current) && isObject(next))
      value = { ...value, strict_transport_security: { ...current, ...next } }
  }
  if (!SETTINGS[setting.id]?.valid(value)) throw invalid()
  setting.value = value
  setting.modified_on = nowIso()
  return { result: setting }
}

export function getOriginPull(ctx: CfContext): CfAnswer {
  return { result: { enabled: requireZone(ctx).originPull.enabled } }
}

export function putOriginPull(ctx: CfContext): CfAnswer {
  const zone = requireZone(ctx)
  if (!isObject(ctx.body) || typeof ctx.body.enabled !== 'boolean')
    throw cfError(400, 1001, 'Invalid request: enabled must be a boolean')
  zone.originPull.enabled = ctx.body.enabled
  return { result: { enabled: zone.originPull.enabled } }
}

import { existsSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import { SERVICES, type Service } from './terms.ts'
import type { Validator } from './validate.ts'

// The `edge:` section of an env file: Cloudflare (zone, certificates, origin pulls) and the TLS and
// headers nginx serves. Read by the dns runbook and by deploy when it renders nginx.
export interface EdgeConfig {
  /** The Cloudflare zone the env's domains live in. */
  zone: string
  /** The secret with the Cloudflare API token (Zone:DNS:Edit, Zone:Settings:Edit, Zone:SSL:Edit). */
  tokenSecret: string
  /** Cloudflare API base (a local stand-in in tests; default the real API). */
  apiBase: string
  /** Mozilla's "intermediate" (TLS 1.2 + 1.3) or "modern" (TLS 1.3 only), at the origin. */
  tlsProfile: 'intermediate' | 'modern'
  /** Cloudflare's SSL mode: strict checks the origin's certificate; full accepts any. */
  ssl: 'full' | 'strict'
  /** The lowest TLS version Cloudflare's edge accepts from visitors (docs/runbooks/dns.md: the trade-off). */
  minTlsVersion: '1.2' | '1.3'
  /** Authenticated origin pulls: nginx asks for Cloudflare's client certificate (optional), or requires it (on). */
  originPulls: 'off' | 'optional' | 'on'
  /**
   * What nginx trusts for Cloudflare's client certificate: 'zone' (the zone's own certificate, which
   * `make dns` makes, uploads to Cloudflare and installs on each host: only THIS zone's requests pass),
   * or a PEM file (default: Cloudflare's shared origin-pull CA, in nginx/: any Cloudflare account's pass).
   */
  originPullCa: string
  /** What port 80 does for visitors: redirect to HTTPS (behind Cloudflare), or serve (the sandbox). */
  http: 'redirect' | 'serve'
  hstsMaxAgeS: number
  /** Content-Security-Policy per service. */
  csp: Record<Service, string>
  log: { ip: 'full' | 'truncated'; retentionDays: number }
  /** Allowed to order an Advanced Certificate pack (paid) for names Universal SSL does not cover. */
  advancedCertificate: boolean
  /** Renew the origin certificate when fewer days than this remain. */
  originCertRenewDays: number
  /** Validity of a new Origin CA certificate, in days (one of Cloudflare's: 7 ... 5475; default a year). */
  originCertDays: (typeof ORIGIN_CERT_DAYS)[number]
}

export const DEFAULT_CSP: Record<Service, string> = {
  site: "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
  saas: "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self' https://api.conciliaextrato.com; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
  api: "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
}

export const CLOUDFLARE_ORIGIN_PULL_CA = resolve(
  import.meta.dirname,
  '..',
  '..',
  'nginx',
  'cloudflare-origin-pull-ca.pem',
)

/** edge.origin_pull_ca: zone — the zone's own client certificate (see EdgeConfig.originPullCa). */
export const ZONE_ORIGIN_PULL = 'zone'

/** The validities Cloudflare's Origin CA issues (requested_validity). */
export const ORIGIN_CERT_DAYS = [7, 30, 90, 365, 730, 1095, 5475] as const

function originCertDays(v: Validator, e: Record<string, unknown> | undefined): EdgeConfig['originCertDays'] {
  const days = v.integer(e, 'origin_cert_days', 'edge', { min: 7, max: 5475, default: 365 }) ?? 365
  const valid = ORIGIN_CERT_DAYS.find((d) => d === days)
  if (valid === undefined) {
    v.problem(
      'edge.origin_cert_days',
      `expected one of ${ORIGIN_CERT_DAYS.join(', ')} (what the Origin CA issues), got ${days}`,
    )
    return 365
  }
  return valid
}

export function readEdge(v: Validator, raw: unknown, envFile: string): EdgeConfig | undefined {
  if (raw === undefined || raw === null) return undefined
  const e = v.object(raw, 'edge', [
    'zone',
    'token_secret',
    'api_base',
    'tls_profile',
    'ssl',
    'min_tls_version',
    'origin_pulls',
    'origin_pull_ca',
    'http',
    'hsts_max_age_s',
    'csp',
    'log',
    'advanced_certificate',
    'origin_cert_renew_days',
    'origin_cert_days',
  ])
  const csp = v.object(e?.csp ?? {}, 'edge.csp', [...SERVICES])
  const log = v.object(e?.log ?? {}, 'edge.log', ['ip', 'retention_days'])
  const ca = v.string(e, 'origin_pull_ca', 'edge', { optional: true, form: 'a PEM file path' })
  const caPath =
    ca === ZONE_ORIGIN_PULL
      ? ca
      : ca
        ? isAbsolute(ca)
          ? ca
          : resolve(envFile, '..', ca)
        : CLOUDFLARE_ORIGIN_PULL_CA
  if (ca && ca !== ZONE_ORIGIN_PULL && !existsSync(caPath))
    v.problem('edge.origin_pull_ca', `${caPath} does not exist`)
  return {
    zone:
      v.string(e, 'zone', 'edge', {
        pattern: /^([a-z0-9-]+\.)+[a-z]{2,}$/,
        form: 'the Cloudflare zone name like conciliaextrato.com',
      }) ?? '',
    tokenSecret:
      v.string(e, 'token_secret', 'edge', {
        default: 'CLOUDFLARE_API_TOKEN',
        pattern: /^[A-Z][A-Z0-9_]{1,63}$/,
        form: 'a secret NAME',
      }) ?? 'CLOUDFLARE_API_TOKEN',
    apiBase:
      v.string(e, 'api_base', 'edge', {
        default: 'https://api.cloudflare.com/client/v4',
        pattern: /^https?:\/\/\S+$/,
        form: 'a URL',
      }) ?? '',
    tlsProfile: (v.string(e, 'tls_profile', 'edge', {
      oneOf: ['intermediate', 'modern'],
      default: 'intermediate',
    }) ?? 'intermediate') as EdgeConfig['tlsProfile'],
    ssl: (v.string(e, 'ssl', 'edge', { oneOf: ['full', 'strict'], default: 'strict' }) ??
      'strict') as EdgeConfig['ssl'],
    minTlsVersion: (v.string(e, 'min_tls_version', 'edge', { oneOf: ['1.2', '1.3'], default: '1.3' }) ??
      '1.3') as EdgeConfig['minTlsVersion'],
    originPulls: (v.string(e, 'origin_pulls', 'edge', { oneOf: ['off', 'optional', 'on'], default: 'off' }) ??
      'off') as EdgeConfig['originPulls'],
    originPullCa: caPath,
    http: (v.string(e, 'http', 'edge', { oneOf: ['redirect', 'serve'], default: 'redirect' }) ??
      'redirect') as EdgeConfig['http'],
    hstsMaxAgeS:
      v.integer(e, 'hsts_max_age_s', 'edge', { min: 0, max: 63072000, default: 31536000 }) ?? 31536000,
    csp: Object.fromEntries(
      SERVICES.map((s) => [s, v.string(csp, s, 'edge.csp', { default: DEFAULT_CSP[s] }) ?? DEFAULT_CSP[s]]),
    ) as Record<Service, string>,
    log: {
      ip: (v.string(log, 'ip', 'edge.log', { oneOf: ['full', 'truncated'], default: 'truncated' }) ??
        'truncated') as 'full' | 'truncated',
      retentionDays: v.integer(log, 'retention_days', 'edge.log', { min: 1, max: 365, default: 14 }) ?? 14,
    },
    advancedCertificate: v.boolean(e, 'advanced_certificate', 'edge', false),
    originCertRenewDays:
      v.integer(e, 'origin_cert_renew_days', 'edge', { min: 1, max: 365, default: 30 }) ?? 30,
    originCertDays: originCertDays(v, e),
  }
}

/**
 * What the zone should look like for an env: pure functions of the env file, unit tested.
 */
import { isIPv6 } from 'node:net'
import type { Env } from '../env/load.ts'

export interface DesiredRecord {
  name: string
  type: 'A' | 'AAAA'
  content: string
}

/** Proxied A/AAAA records: every domain of the env at every web host. */
export function desiredRecords(env: Env): DesiredRecord[] {
  const web = env.hosts.filter((h) => h.roles.length === 0 || h.roles.includes('web'))
  return Object.values(env.domains).flatMap((name) =>
    web.map((h) => ({
      name,
      type: isIPv6(h.address) ? ('AAAA' as const) : ('A' as const),
      content: h.address,
    })),
  )
}

/** Zone settings, as the API names and values them. */
export function desiredSettings(env: Env): Record<string, unknown> {
  const edge = env.edge
  if (!edge) return {}
  return {
    ssl: edge.ssl,
    min_tls_version: edge.minTlsVersion,
    tls_1_3: 'on',
    always_use_https: 'on',
    automatic_https_rewrites: 'on',
    security_header: {
      strict_transport_security: {
        enabled: edge.hstsMaxAgeS > 0,
        max_age: edge.hstsMaxAgeS,
        include_subdomains: true,
        preload: false,
        nosniff: true,
      },
    },
    tls_client_auth: edge.originPulls === 'off' ? 'off' : 'on',
  }
}

/** Settings compare by the fields we set (the API may return more). */
export function settingMatches(live: unknown, want: unknown): boolean {
  if (want && typeof want === 'object' && !Array.isArray(want)) {
    if (!live || typeof live !== 'object') return false
    return Object.entries(want).every(([k, v]) => settingMatches((live as Record<string, unknown>)[k], v))
  }
  return live === want
}

export interface CoverageProblem {
  name: string
  /** The wildcard an Advanced Certificate would need, e.g. *.qa.conciliaextrato.com */
  wildcard: string
}

/**
 * Universal SSL covers the apex and ONE level of subdomain (*.zone). Anything deeper
 * (app.qa.zone) gets a certificate error in browsers unless another certificate covers it.
 */
export function uncoveredNames(names: string[], zone: string, coveredBy: string[][] = []): CoverageProblem[] {
  return names.flatMap((name) => {
    if (name !== zone && !name.endsWith(`.${zone}`)) return []
    const below = name === zone ? [] : name.slice(0, -(zone.length + 1)).split('.')
    if (below.length <= 1) return []
    if (coveredBy.some((hosts) => hosts.some((h) => covers(h, name)))) return []
    return [{ name, wildcard: `*.${name.split('.').slice(1).join('.')}` }]
  })
}

/** A certificate host entry covers a name exactly, or as a wildcard one level up. */
export function covers(host: string, name: string): boolean {
  if (host === name) return true
  if (!host.startsWith('*.')) return false
  const parent = host.slice(2)
  return name.endsWith(`.${parent}`) && !name.slice(0, -(parent.length + 1)).includes('.')
}

export function coverageAdvice(p: CoverageProblem, zone: string): string {
  const first = p.name.split('.')[0]
  const rest = p.name.split('.').slice(1, -zone.split('.').length).join('-')
  return `${p.name} is two or more levels below ${zone}: Cloudflare's Universal SSL does not cover it (browsers get a certificate error). Fix: set edge.advanced_certificate: true to order an Advanced Certificate pack with ${p.wildcard} (paid), or rename it one level deep (e.g. ${rest}-${first}.${zone}) in domains:`
}

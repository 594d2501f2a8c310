import { SERVICES, type Service } from './terms.ts'
import type { Validator } from './validate.ts'

// services: what each app service connects to. A service gets the connection URLs (with their
// passwords) of those it uses, and no other: a site that never opens the database holds no password.

export const DEPENDENCIES = ['database', 'redis'] as const
export type Dependency = (typeof DEPENDENCIES)[number]
export type ServiceUses = Record<Service, Dependency[]>

/** Absent from the env file: only the api uses the database and Redis (as the swarm stack had it). */
export const DEFAULT_USES: ServiceUses = { site: [], saas: [], api: ['database', 'redis'] }

export function readServices(v: Validator, raw: unknown): ServiceUses {
  if (raw === undefined || raw === null) return DEFAULT_USES
  const obj = v.object(raw, 'services', [...SERVICES])
  const out = {} as ServiceUses
  for (const service of SERVICES) {
    const entry = obj?.[service]
    if (entry === undefined || entry === null) {
      out[service] = DEFAULT_USES[service]
      continue
    }
    const path = `services.${service}`
    const s = v.object(entry, path, ['uses'])
    const uses = v.stringList(s, 'uses', path, { oneOf: [...DEPENDENCIES] }) as Dependency[]
    out[service] = [...new Set(uses)]
  }
  return out
}

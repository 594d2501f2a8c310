/**
 * What emergency checks once the new host serves: the data against the backup's manifest (every
 * table's rows, the canary), the zone at Cloudflare naming only the new host, and every domain
 * answering from this machine the way the edge reaches it.
 */
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { checkServerIdentity, type TLSSocket } from 'node:tls'
import type { Manifest } from '../backup/manifest.ts'
import { parsePgVerify, pgVerify } from '../commands/backup.ts'
import { cloudflareClient, zoneId } from '../dns/cloudflare.ts'
import { planZone } from '../dns/plan.ts'
import type { Env } from '../env/load.ts'
import { resolveName, trusted } from '../health/edge.ts'
import type { HostSession } from '../host/session.ts'
import { DB_NAME, DB_USER } from '../stack/files.ts'

export interface DataResult {
  rowsVerified: number
  dataLost: number
  canary: boolean
  problems: string[]
}

/** Pure: the live row counts against the backup's, table by table. Rows beyond the backup's are not loss. */
export function compareToBackup(
  backup: Record<string, number>,
  live: Record<string, number>,
): { rowsVerified: number; dataLost: number; problems: string[] } {
  let rowsVerified = 0
  let dataLost = 0
  const problems: string[] = []
  for (const [table, want] of Object.entries(backup)) {
    const got = live[table]
    if (got === undefined) {
      dataLost += want
      problems.push(`${table}: missing (the backup had ${want} rows)`)
      continue
    }
    rowsVerified += Math.min(got, want)
    if (got < want) {
      dataLost += want - got
      problems.push(`${table}: ${got} rows, the backup had ${want}`)
    }
  }
  return { rowsVerified, dataLost, problems }
}

/**
 * The live tables against what was restored: the backup's manifest, or (`recovered`) the counts of the
 * database its base and WAL were replayed into; and the backup's canary row.
 */
export async function checkData(
  host: HostSession,
  env: Env,
  manifest: Manifest,
  recovered?: Record<string, number>,
): Promise<DataResult> {
  const out = await host.exec(pgVerify({ env: env.name, user: DB_USER, db: DB_NAME }, DB_NAME, manifest.id), {
    echo: false,
  })
  const got = parsePgVerify(out.stdout)
  const cmp = compareToBackup(recovered ?? manifest.postgres.tables, got.counts)
  const canary = got.canary === manifest.postgres.canary.token
  if (!canary) cmp.problems.push(`the canary row of backup ${manifest.id} is missing`)
  return { ...cmp, canary }
}

/** Records that do not name exactly the env's (new) hosts; empty when the switch holds. */
export async function recordProblems(env: Env, secrets: Record<string, string>): Promise<string[]> {
  if (!env.edge) return []
  const cf = cloudflareClient(env.edge, secrets)
  const plan = await planZone(cf, env, await zoneId(cf))
  return plan.changes
    .filter((c) => c.kind === 'record')
    .map((c) => `${c.target}: is ${c.from}, should be ${c.to}`)
}

export interface DomainProbe {
  domain: string
  status: number | null
  protocol: string
  ms: number
  error?: string
}

/**
 * Every domain's health path from this machine. With health.edge (production) through public DNS,
 * i.e. the real Cloudflare edge; otherwise (no internet here) straight to the address the records
 * name, with the domain as SNI and Host, which is the request Cloudflare's edge makes to the origin.
 */
export async function probeDomains(env: Env, address: string): Promise<DomainProbe[]> {
  return Promise.all(
    Object.values(env.domains).map(async (domain) => {
      const scheme = env.edge ? 'https' : 'http'
      if (!env.health.edge) return probe(domain, env.health.path, scheme, address, false)
      const [edge] = await resolveName(domain, env.health.edgeResolver)
      if (!edge) return { domain, status: null, protocol: '', ms: 0, error: `${domain} does not resolve` }
      return probe(domain, env.health.path, scheme, edge, true)
    }),
  )
}

function probe(
  domain: string,
  path: string,
  scheme: 'http' | 'https',
  address: string,
  /** Through the edge: its certificate must be one this machine trusts. At the origin: the name is checked. */
  throughEdge: boolean,
): Promise<DomainProbe> {
  const t0 = Date.now()
  return new Promise((resolve) => {
    const done = (r: Omit<DomainProbe, 'domain' | 'ms'>) => resolve({ domain, ms: Date.now() - t0, ...r })
    const options = {
      host: address,
      path,
      method: 'GET',
      headers: { host: domain, 'user-agent': 'conciliaextrato-emergency-verify' },
      timeout: 10_000,
      ...(scheme === 'https'
        ? {
            servername: domain,
            // At the origin: Cloudflare trusts its Origin CA, this machine does not; the name is checked.
            rejectUnauthorized: throughEdge,
            ...(throughEdge ? { ca: trusted() } : {}),
          }
        : {}),
    }
    const req = (scheme === 'https' ? httpsRequest : httpRequest)(options, (res) => {
      const socket = res.socket as TLSSocket
      const protocol = scheme === 'https' ? String(socket.getProtocol?.() ?? '?') : 'http'
      const wrongName =
        scheme === 'https' && !throughEdge
          ? checkServerIdentity(domain, socket.getPeerCertificate())
          : undefined
      res.resume()
      if (wrongName) return done({ status: null, protocol, error: wrongName.message })
      res.on('end', () => done({ status: res.statusCode ?? null, protocol }))
    })
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')))
    req.on('error', (e) => done({ status: null, protocol: '', error: e.message }))
    req.end()
  })
}

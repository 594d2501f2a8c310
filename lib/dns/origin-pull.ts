/**
 * The zone's own origin-pull client certificate (edge.origin_pull_ca: zone). Cloudflare's shared
 * origin-pull certificate proves only that a request came through SOME Cloudflare account; this one
 * proves it came through this zone. `make dns` makes it (a self-signed P-256 certificate: nginx
 * trusts exactly it), uploads it with its key to Cloudflare (the key is made in memory here and goes
 * nowhere else), and installs the certificate on each host as the file nginx checks clients against.
 * Order: the hosts trust the new certificate (alongside the one Cloudflare presents now) before it is
 * uploaded, so no request is refused during a change.
 */
import { X509Certificate } from 'node:crypto'
import { catFile } from '../commands/firewall.ts'
import { ZONE_ORIGIN_PULL } from '../env/edge.ts'
import type { Env } from '../env/load.ts'
import { tlsPaths } from '../env/tls-paths.ts'
import type { HostSession } from '../host/session.ts'
import { type CfContext, call } from './cloudflare.ts'
import { installTlsFiles, newKeyPem, opensslWithKey } from './origin-cert.ts'

export interface ZoneClientCert {
  id: string
  certificate: string
  expiresOn: string
}

export interface OriginPullState {
  /** The certificate Cloudflare presents now (the newest active upload), if any. */
  active?: ZoneClientCert
  /** Why a new certificate is needed, or null. */
  reason: string | null
  /** Hosts whose trusted file does not hold the certificate Cloudflare presents (or will). */
  untrusting: string[]
  /** What each host's file holds now, by host name (PEM; '' when missing). */
  installed: Record<string, string>
}

/** Whether the env uses its zone's own origin-pull certificate (origin pulls optional or on). */
export function usesZoneCert(env: Env): boolean {
  return Boolean(env.edge && env.edge.originPulls !== 'off' && env.edge.originPullCa === ZONE_ORIGIN_PULL)
}

/** The PEM certificates of a bundle, normalised (line endings, surrounding space). */
export function pemBlocks(bundle: string): string[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((b) =>
    b.replace(/\r\n/g, '\n').trim(),
  )
}

/** Pure: does the zone need a new certificate (none yet, or expiring within renewDays)? */
export function zoneCertReason(
  active: ZoneClientCert | undefined,
  renewDays: number,
  now = Date.now(),
): string | null {
  if (!active) return 'the zone has no origin-pull certificate of its own yet'
  const daysLeft = Math.floor((Date.parse(active.expiresOn) - now) / 86_400_000)
  if (daysLeft < renewDays)
    return `the zone's origin-pull certificate has ${daysLeft} day(s) left (renewing under ${renewDays})`
  return null
}

/** Pure: the file a host should hold: the new certificate (when one is made) and the one in use. */
export function trustBundle(active: ZoneClientCert | undefined, made?: string): string {
  const blocks = [...(made ? pemBlocks(made) : []), ...(active ? pemBlocks(active.certificate) : [])]
  return `${[...new Set(blocks)].join('\n')}\n`
}

export async function readOriginPull(
  cf: CfContext,
  zoneId: string,
  hosts: HostSession[],
  env: Env,
): Promise<OriginPullState> {
  const listed = await call(cf, `list the origin-pull certificates of ${env.edge?.zone}`, async (c) => {
    const page = await c.originTLSClientAuth.list({ zone_id: zoneId })
    return page.result
  })
  const usable = listed
    .filter((c) => c.status === 'active' || c.status === 'pending_deployment' || c.status === 'initializing')
    .map((c) => ({ id: c.id ?? '', certificate: c.certificate ?? '', expiresOn: c.expires_on ?? '' }))
    .sort((a, b) => Date.parse(a.expiresOn) - Date.parse(b.expiresOn))
  const active = usable.pop()
  const reason = zoneCertReason(active, env.edge?.originCertRenewDays ?? 30)
  const installed: Record<string, string> = {}
  for (const host of hosts) {
    const out = await host.exec(catFile(tlsPaths(env.name).originPullCa), {
      probe: true,
      echo: false,
    })
    installed[host.name] = out.stdout
  }
  const want = active ? pemBlocks(active.certificate)[0] : undefined
  const untrusting = hosts
    .filter((h) => reason !== null || !want || !pemBlocks(installed[h.name] ?? '').includes(want))
    .map((h) => h.name)
  return { ...(active ? { active } : {}), reason, untrusting, installed }
}

/** A self-signed P-256 client certificate for the zone (10 years; renewed under origin_cert_renew_days). */
export async function makeZoneClientCert(zone: string, days = 3650): Promise<{ cert: string; key: string }> {
  const key = newKeyPem()
  const cert = await opensslWithKey(
    '-x509 -new -days "$1" -subj "$2" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,digitalSignature,keyCertSign" -addext "extendedKeyUsage=clientAuth"',
    [String(days), `/O=ConciliaExtrato/CN=origin-pull ${zone}`],
    key,
    'the origin-pull certificate',
  )
  new X509Certificate(cert) // a certificate, or this throws
  return { cert, key }
}

/** Installs the trusted file on a host, checks nginx and reloads it; the previous file is put back if nginx refuses. */
export async function installTrust(host: HostSession, env: Env, bundle: string): Promise<void> {
  const path = tlsPaths(env.name).originPullCa
  await installTlsFiles(
    host,
    env,
    [{ path, content: bundle, mode: '0644' }],
    "the zone's origin-pull certificate",
  )
}

/** Uploads the zone's certificate and key: from now on Cloudflare presents it to the origin. */
export async function uploadZoneCert(
  cf: CfContext,
  zoneId: string,
  made: { cert: string; key: string },
): Promise<void> {
  await call(cf, `upload the origin-pull certificate of ${cf.edge.zone}`, (c) =>
    c.originTLSClientAuth.create({ zone_id: zoneId, certificate: made.cert, private_key: made.key }),
  )
}

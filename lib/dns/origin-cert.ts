/**
 * The origin's certificate: a Cloudflare Origin CA certificate (ECC) for the env's hostnames. Its
 * private key is made here, in memory, and only ever written to the host (mode 0600). Renewed when
 * fewer than edge.origin_cert_renew_days remain.
 */
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto'
import { nginxTestAndReload } from '../commands/nginx.ts'
import { quote } from '../commands/shell.ts'
import type { Env } from '../env/load.ts'
import { tlsPaths } from '../env/tls-paths.ts'
import { runLocal } from '../host/local-run.ts'
import type { HostSession } from '../host/session.ts'
import { type CfContext, call } from './cloudflare.ts'

export interface OriginCertState {
  host: string
  /** Why a new certificate is needed, or null when the installed one is good. */
  reason: string | null
  installed?: { issuer: string; names: string[]; daysLeft: number }
}

/** Prints the installed certificate (PEM) or nothing. */
export function readCertCommand(env: string): string {
  return `cat ${quote(tlsPaths(env).cert)} 2>/dev/null || true`
}

export function assessCert(
  pem: string,
  names: string[],
  renewDays: number,
  now = Date.now(),
): Omit<OriginCertState, 'host'> {
  if (!pem.includes('BEGIN CERTIFICATE')) return { reason: 'no certificate installed' }
  const cert = new X509Certificate(pem)
  const sans = (cert.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim().replace(/^DNS:/, ''))
    .filter(Boolean)
  const daysLeft = Math.floor((Date.parse(cert.validTo) - now) / 86_400_000)
  const installed = { issuer: cert.issuer.replace(/\n/g, ', '), names: sans, daysLeft }
  if (!/CloudFlare Origin/i.test(cert.issuer))
    return {
      reason: 'the installed certificate is not from the Cloudflare Origin CA (a placeholder?)',
      installed,
    }
  const missing = names.filter((n) => !sans.includes(n))
  if (missing.length) return { reason: `it does not name ${missing.join(', ')}`, installed }
  if (daysLeft < renewDays)
    return { reason: `only ${daysLeft} day(s) left (renewing under ${renewDays})`, installed }
  return { reason: null, installed }
}

export async function checkOriginCert(host: HostSession, env: Env): Promise<OriginCertState> {
  const pem = (await host.exec(readCertCommand(env.name), { probe: true, echo: false })).stdout
  return {
    host: host.name,
    ...assessCert(pem, Object.values(env.domains), env.edge?.originCertRenewDays ?? 30),
  }
}

/** A P-256 key (PEM, in memory) and a CSR for `names` made by openssl with the key on stdin. */
export async function makeCsr(names: string[]): Promise<{ keyPem: string; csr: string }> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  // The key goes to openssl through a pipe (never a file): `<(cat)` turns our stdin into one
  // (openssl cannot open the socket Node gives a child as stdin).
  const csr = await run(
    'bash',
    [
      '-c',
      'openssl req -new -key <(cat) -subj "$1" -addext "$2"',
      'csr',
      `/CN=${names[0]}`,
      `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
    ],
    keyPem,
  )
  return { keyPem, csr }
}

/** Issues an Origin CA certificate and installs it on the host; nginx is checked and reloaded. */
export async function issueAndInstall(
  ctx: CfContext,
  host: HostSession,
  env: Env,
): Promise<{ expires: string }> {
  const names = Object.values(env.domains)
  const { keyPem, csr } = await makeCsr(names)
  const issued = (await call(ctx, `issue an Origin CA certificate for ${names.join(', ')}`, (cf) =>
    cf.originCACertificates.create({
      csr,
      hostnames: names,
      request_type: 'origin-ecc',
      // A year (edge.origin_cert_days), renewed under origin_cert_renew_days by the daily plan: a key
      // that leaked stops working within a year, and scanners rightly flag longer lifetimes.
      requested_validity: env.edge?.originCertDays ?? 365,
    }),
  )) as { certificate?: string; expires_on?: string }
  const cert = issued.certificate ?? ''
  if (
    !cert.includes('BEGIN CERTIFICATE') ||
    !new X509Certificate(cert).checkPrivateKey(createPrivateKey(keyPem))
  )
    throw new Error(
      'Cloudflare answered with a certificate that is not for the key this run made: nothing installed',
    )
  const paths = tlsPaths(env.name)
  const user = env.ssh.user
  await host.exec(`install -d -m 0700 -o ${quote(user)} -g ${quote(user)} ${quote(paths.dir)}`)
  // The old pair is kept until nginx accepted the new one.
  await host.exec(
    `for f in ${quote(paths.cert)} ${quote(paths.key)}; do [ ! -f "$f" ] || cp -p "$f" "$f.prev"; done`,
  )
  await host.upload(paths.key, keyPem, '0600', `${user}:${user}`)
  await host.upload(paths.cert, cert, '0644', `${user}:${user}`)
  const reload = await host.exec(nginxTestAndReload, { allowFail: true })
  if (reload.code !== 0) {
    await host.exec(
      `for f in ${quote(paths.cert)} ${quote(paths.key)}; do [ ! -f "$f.prev" ] || mv "$f.prev" "$f"; done`,
    )
    throw new Error(
      `nginx refused the new certificate on ${host.name} (the previous one is back): ${reload.stderr.trim()}`,
    )
  }
  await host.exec(`rm -f ${quote(`${paths.cert}.prev`)} ${quote(`${paths.key}.prev`)}`)
  return { expires: issued.expires_on ?? '' }
}

async function run(cmd: string, args: string[], input: string): Promise<string> {
  const r = await runLocal([cmd, ...args], { input })
  if (r.code !== 0) throw new Error(`${cmd} ${args[0]} failed (${r.code}): ${r.stderr.trim()}`)
  return r.stdout
}

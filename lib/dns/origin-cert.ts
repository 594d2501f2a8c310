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

/** A new P-256 private key, PEM, in memory only. */
export function newKeyPem(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
}

/**
 * `openssl req <args>` with `-key` reading `keyPem` through a pipe (never a file): `<(cat)` turns our
 * stdin into one (openssl cannot open the socket Node gives a child as stdin). `$1`... in `args` are
 * the `params`, passed as arguments rather than pasted into the script.
 */
export async function opensslWithKey(
  args: string,
  params: string[],
  keyPem: string,
  what: string,
): Promise<string> {
  const r = await runLocal(['bash', '-c', `openssl req -key <(cat) ${args}`, 'openssl', ...params], {
    input: keyPem,
  })
  if (r.code !== 0) throw new Error(`openssl could not make ${what} (${r.code}): ${r.stderr.trim()}`)
  return r.stdout
}

/** A P-256 key (PEM, in memory) and a CSR for `names` made by openssl with the key on stdin. */
export async function makeCsr(names: string[]): Promise<{ keyPem: string; csr: string }> {
  const keyPem = newKeyPem()
  const csr = await opensslWithKey(
    '-new -subj "$1" -addext "$2"',
    [`/CN=${names[0]}`, `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`],
    keyPem,
    'the CSR',
  )
  return { keyPem, csr }
}

/**
 * Writes TLS files into the env's TLS directory on a host, then `nginx -t` and a reload. The files
 * there before are kept until nginx took the new ones, and put back if it refused them.
 */
export async function installTlsFiles(
  host: HostSession,
  env: Env,
  files: { path: string; content: string; mode: string }[],
  what: string,
): Promise<void> {
  const user = env.ssh.user
  const paths = files.map((f) => quote(f.path)).join(' ')
  await host.exec(`install -d -m 0700 -o ${quote(user)} -g ${quote(user)} ${quote(tlsPaths(env.name).dir)}`)
  await host.exec(`for f in ${paths}; do [ ! -f "$f" ] || cp -p "$f" "$f.prev"; done`)
  for (const f of files) await host.upload(f.path, f.content, f.mode, `${user}:${user}`)
  const reload = await host.exec(nginxTestAndReload, { allowFail: true })
  if (reload.code !== 0) {
    await host.exec(`for f in ${paths}; do [ ! -f "$f.prev" ] || mv "$f.prev" "$f"; done`)
    throw new Error(
      `nginx refused ${what} on ${host.name} (the previous one is back): ${reload.stderr.trim()}`,
    )
  }
  await host.exec(`rm -f ${files.map((f) => quote(`${f.path}.prev`)).join(' ')}`)
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
  // The key first: nginx never sees the new certificate beside the old key.
  await installTlsFiles(
    host,
    env,
    [
      { path: paths.key, content: keyPem, mode: '0600' },
      { path: paths.cert, content: cert, mode: '0644' },
    ],
    'the new certificate',
  )
  return { expires: issued.expires_on ?? '' }
}

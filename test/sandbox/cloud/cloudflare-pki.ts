/**
 * The test PKI behind the Cloudflare double, built with the openssl CLI in a temp dir: the two Origin CA
 * roots (RSA and ECC) that sign origin certificates, and an "origin pull" CA whose client certificates
 * stand in for the one Cloudflare's edge presents to an origin with authenticated origin pulls.
 */

import { createPublicKey, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runLocal } from '../../../lib/host/local-run.ts'

export interface OpensslResult {
  code: number
  stdout: string
  stderr: string
}

export function openssl(args: string[], input?: string): Promise<OpensslResult> {
  return runLocal(['openssl', ...args], { input: input ?? '' })
}

async function mustOpenssl(args: string[], input?: string): Promise<string> {
  const run = await openssl(args, input)
  if (run.code !== 0) throw new Error(`openssl ${args[0]} failed: ${run.stderr.trim()}`)
  return run.stdout
}

export interface Ca {
  dir: string
  certPath: string
  keyPath: string
  pem: string
  /** openssl ca keeps an index and a serial file: one signature at a time. */
  queue: Promise<unknown>
}

const CA_REQ = `[ req ]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[ dn ]
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
`

function caConfig(dir: string): string {
  return `[ ca ]
default_ca = local
[ local ]
dir = ${dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
default_md = sha256
policy = anything
unique_subject = no
email_in_dn = no
copy_extensions = none
[ anything ]
commonName = optional
organizationName = optional
organizationalUnitName = optional
`
}

async function createCa(root: string, name: string, subject: string, key: 'rsa' | 'ec'): Promise<Ca> {
  const dir = join(root, name)
  mkdirSync(join(dir, 'newcerts'), { recursive: true })
  writeFileSync(join(dir, 'index.txt'), '')
  writeFileSync(join(dir, 'req.cnf'), CA_REQ)
  writeFileSync(join(dir, 'ca.cnf'), caConfig(dir))
  const certPath = join(dir, 'ca.pem')
  const keyPath = join(dir, 'ca.key')
  const keyArgs =
    key === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']
  await mustOpenssl([
    'req',
    '-x509',
    '-new',
    ...keyArgs,
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-subj',
    subject,
    '-days',
    '5475',
    '-config',
    join(dir, 'req.cnf'),
  ])
  return { dir, certPath, keyPath, pem: readFileSync(certPath, 'utf8'), queue: Promise.resolve() }
}

export interface Pki {
  root: string
  originRsa: Ca
  originEcc: Ca
  originPull: Ca
}

const LOCATION = '/C=US/ST=California/L=San Francisco/O=CloudFlare, Inc. (local test double)'

export async function createPki(): Promise<Pki> {
  const root = mkdtempSync(join(tmpdir(), 'cf-double-pki-'))
  const [originRsa, originEcc, originPull] = await Promise.all([
    createCa(root, 'origin-rsa', `${LOCATION}/OU=CloudFlare Origin SSL Certificate Authority`, 'rsa'),
    createCa(root, 'origin-ecc', `${LOCATION}/OU=CloudFlare Origin SSL ECC Certificate Authority`, 'ec'),
    createCa(root, 'origin-pull', `${LOCATION}/OU=Origin Pull/CN=origin-pull.cloudflare.net`, 'ec'),
  ])
  return { root, originRsa, originEcc, originPull }
}

export function removePki(pki: Pki): void {
  rmSync(pki.root, { recursive: true, force: true })
}

export type CsrCheck = { ok: true; keyType: string } | { ok: false; reason: string }

/** Parses a PEM CSR and verifies its self-signature (openssl 3.0 exits 0 on a bad signature). */
export async function checkCsr(pem: string): Promise<CsrCheck> {
  if (!/^-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(pem.trim()))
    return { ok: false, reason: 'not a PEM certificate request' }
  const run = await openssl(['req', '-noout', '-verify', '-pubkey'], pem)
  if (run.code !== 0) return { ok: false, reason: 'unable to parse the certificate request' }
  if (!/verify OK/i.test(run.stderr)) return { ok: false, reason: 'the request signature does not verify' }
  try {
    return { ok: true, keyType: createPublicKey(run.stdout).asymmetricKeyType ?? 'unknown' }
  } catch {
    return { ok: false, reason: 'unsupported public key' }
  }
}

/** 20 random bytes with the top bit clear: a positive serial, hex for openssl, decimal for the API id. */
export function newSerial(): { hex: string; decimal: string } {
  const bytes = randomBytes(20)
  bytes[0] = (bytes[0] ?? 0) & 0x7f
  const hex = bytes.toString('hex').toUpperCase()
  return { hex, decimal: BigInt(`0x${hex}`).toString(10) }
}

const asn1Time = (d: Date) => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`

export interface SignOptions {
  serialHex: string
  notBefore: Date
  notAfter: Date
  subject: string
  /** Lines of an openssl extension section. */
  extensions: string[]
}

export function signCsr(ca: Ca, csrPem: string, opts: SignOptions): Promise<string> {
  const work = async () => {
    const base = join(ca.dir, opts.serialHex)
    writeFileSync(join(ca.dir, 'serial'), `${opts.serialHex}\n`)
    writeFileSync(`${base}.csr`, csrPem)
    writeFileSync(`${base}.ext`, `[ v3 ]\n${opts.extensions.join('\n')}\n`)
    await mustOpenssl([
      'ca',
      '-batch',
      '-notext',
      '-config',
      join(ca.dir, 'ca.cnf'),
      '-cert',
      ca.certPath,
      '-keyfile',
      ca.keyPath,
      '-in',
      `${base}.csr`,
      '-out',
      `${base}.pem`,
      '-startdate',
      asn1Time(opts.notBefore),
      '-enddate',
      asn1Time(opts.notAfter),
      '-subj',
      opts.subject,
      '-extfile',
      `${base}.ext`,
      '-extensions',
      'v3',
    ])
    return readFileSync(`${base}.pem`, 'utf8')
  }
  const result = ca.queue.then(work, work)
  ca.queue = result.catch(() => undefined)
  return result
}

/** A fresh P-256 key and a client certificate for it, signed by `ca` (the origin-pull CA). */
export async function issueClientCertificate(
  ca: Ca,
  days = 365,
): Promise<{ certPem: string; keyPem: string }> {
  const keyPem = await mustOpenssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'])
  const keyPath = join(ca.dir, `client-${randomBytes(6).toString('hex')}.key`)
  writeFileSync(keyPath, keyPem, { mode: 0o600 })
  const csr = await mustOpenssl(['req', '-new', '-key', keyPath, '-subj', '/CN=origin-pull-client'])
  const now = Date.now()
  const certPem = await signCsr(ca, csr, {
    serialHex: newSerial().hex,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * 86_400_000),
    subject: '/O=CloudFlare, Inc. (local test double)/OU=Origin Pull/CN=origin-pull-client.cloudflare.net',
    extensions: [
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature',
      'extendedKeyUsage = clientAuth',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
    ],
  })
  return { certPem, keyPem }
}

/** A fresh P-256 key and a server certificate for `names`, signed by `ca` (the sandbox edge's CA). */
export async function issueServerCertificate(
  ca: Ca,
  names: string[],
  days = 90,
): Promise<{ certPem: string; keyPem: string }> {
  const keyPem = await mustOpenssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'])
  const keyPath = join(ca.dir, `server-${randomBytes(6).toString('hex')}.key`)
  writeFileSync(keyPath, keyPem, { mode: 0o600 })
  const csr = await mustOpenssl(['req', '-new', '-key', keyPath, '-subj', `/CN=${names[0]}`])
  const now = Date.now()
  const certPem = await signCsr(ca, csr, {
    serialHex: newSerial().hex,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * 86_400_000),
    subject: `/O=Sandbox edge (local test double)/CN=${names[0]}`,
    extensions: [
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature',
      'extendedKeyUsage = serverAuth',
      `subjectAltName = ${names.map((n) => `DNS:${n}`).join(', ')}`,
      // As a public CA's (Cloudflare's edge certificates carry both): where revocation is published.
      // .invalid names: nothing ever resolves them (testssl reads them, it does not fetch them).
      'authorityInfoAccess = OCSP;URI:http://ocsp.sandbox-edge.invalid',
      'crlDistributionPoints = URI:http://crl.sandbox-edge.invalid/edge.crl',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
    ],
  })
  return { certPem, keyPem }
}

/** A CA of its own (the sandbox edge's: the one a visitor's browser would trust), in `root`. */
export function createEdgeCa(root: string): Promise<Ca> {
  return createCa(root, 'edge', '/O=Sandbox edge CA (local test double)/CN=Sandbox edge root', 'ec')
}

/** A CA of its own for a sandbox service (the registry's), in `root`. */
export function createTestCa(root: string, name: string, cn: string): Promise<Ca> {
  return createCa(root, name, `/O=ConciliaExtrato sandbox (local test double)/CN=${cn}`, 'ec')
}

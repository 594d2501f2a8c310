/** Certificate packs (edge certificates) and the Origin CA of the Cloudflare API double. */
import { randomUUID } from 'node:crypto'
import {
  type CertificatePack,
  type CfAnswer,
  type CfContext,
  type CloudflareState,
  cfError,
  inZone,
  isCfId,
  isHostname,
  isObject,
  nowIso,
  type OriginCertificate,
  paginate,
  requireZone,
  type Zone,
} from './cloudflare-common.ts'
import { type Ca, checkCsr, newSerial, type Pki, signCsr } from './cloudflare-pki.ts'

const ISSUERS: Record<string, string> = {
  google: 'GoogleTrustServices',
  lets_encrypt: 'LetsEncrypt',
  ssl_com: 'SSLCom',
}
const VALIDITY_BY_CA: Record<string, number[]> = {
  google: [14, 30, 90],
  lets_encrypt: [90],
  ssl_com: [14, 30, 90, 365],
}

export function universalPack(zone: Zone): CertificatePack {
  return {
    id: randomUUID(),
    type: 'universal',
    hosts: [zone.name, `*.${zone.name}`],
    status: 'active',
    validation_method: 'txt',
    validity_days: 90,
    certificate_authority: 'google',
    cloudflare_branding: false,
    created_at: Date.now(),
    activate_at: null,
  }
}

function packView(zone: Zone, pack: CertificatePack) {
  if (pack.status === 'pending_validation' && pack.activate_at !== null && pack.activate_at <= Date.now())
    pack.status = 'active'
  const active = pack.status === 'active'
  const certId = pack.id.replace(/-/g, '').slice(0, 32)
  const at = new Date(pack.created_at)
  const validation = pack.hosts.map((host) => {
    const name = host.replace(/^\*\./, '')
    if (pack.validation_method === 'http')
      return {
        http_url: `http://${name}/.well-known/acme-challenge/${certId}`,
        http_body: certId,
        status: 'pending',
      }
    if (pack.validation_method === 'email') return { emails: [`admin@${zone.name}`], status: 'pending' }
    return { txt_name: `_acme-challenge.${name}`, txt_value: certId, status: 'pending' }
  })
  const { activate_at: _a, created_at: _c, ...fields } = pack
  return {
    ...fields,
    primary_certificate: active ? certId : undefined,
    certificates: active
      ? [
          {
            id: certId,
            hosts: pack.hosts,
            status: 'active',
            issuer: ISSUERS[pack.certificate_authority],
            signature: 'ECDSAWithSHA256',
            bundle_method: 'ubiquitous',
            zone_id: zone.id,
            uploaded_on: at.toISOString(),
            modified_on: at.toISOString(),
            expires_on: new Date(pack.created_at + pack.validity_days * 86_400_000).toISOString(),
            priority: 0,
          },
        ]
      : [],
    validation_records: active ? [] : validation,
    validation_errors: [],
  }
}

function orderError(message: string) {
  return cfError(400, 1210, message)
}

export function listPacks(ctx: CfContext): CfAnswer {
  const zone = requireZone(ctx)
  const all = ctx.query.get('status') === 'all'
  const views = [...zone.packs.values()]
    .map((p) => packView(zone, p))
    .filter((p) => all || p.status === 'active')
  const page = paginate(views, ctx.query, {
    defaultPerPage: 20,
    minPerPage: 5,
    maxPerPage: 50,
    emptyPages: 0,
  })
  return { result: page.items, result_info: page.info }
}

export function orderPack(ctx: CfContext): CfAnswer {
  const zone = requireZone(ctx)
  const body = ctx.body
  if (!isObject(body)) throw orderError('Invalid request body.')
  if (body.type !== 'advanced') throw orderError('Certificate pack type must be "advanced".')
  const ca = String(body.certificate_authority)
  if (!ISSUERS[ca]) throw orderError('certificate_authority must be one of google, lets_encrypt, ssl_com.')
  const method = String(body.validation_method)
  if (!['txt', 'http', 'email'].includes(method))
    throw orderError('validation_method must be txt, http or email.')
  const days = body.validity_days
  if (typeof days !== 'number' || !VALIDITY_BY_CA[ca]?.includes(days))
    throw orderError(`validity_days ${String(days)} is not offered by ${ca}.`)
  const hosts = body.hosts
  if (!Array.isArray(hosts) || hosts.length === 0 || hosts.length > 50)
    throw orderError('hosts must list between 1 and 50 hostnames.')
  const names = hosts.map((h) => (typeof h === 'string' ? h.trim().toLowerCase() : ''))
  for (const host of names)
    if (!isHostname(host) || !inZone(host, zone.name))
      throw orderError(`Host ${host} is not part of this zone.`)
  if (!names.includes(zone.name)) throw orderError(`hosts must contain the zone apex ${zone.name}.`)
  if (method === 'http' && names.some((h) => h.startsWith('*.')))
    throw orderError('HTTP validation cannot be used for wildcard hostnames.')
  const branding = body.cloudflare_branding ?? false
  if (typeof branding !== 'boolean') throw orderError('cloudflare_branding must be a boolean.')
  const ms = ctx.state.packActivationMs
  const pack: CertificatePack = {
    id: randomUUID(),
    type: 'advanced',
    hosts: names,
    status: 'pending_validation',
    validation_method: method,
    validity_days: days,
    certificate_authority: ca,
    cloudflare_branding: branding,
    created_at: Date.now(),
    activate_at: ms === null ? null : Date.now() + ms,
  }
  const view = packView(zone, { ...pack, activate_at: null })
  zone.packs.set(pack.id, pack)
  return { result: view }
}

function requirePack(ctx: CfContext): { zone: Zone; pack: CertificatePack } {
  const zone = requireZone(ctx)
  const pack = zone.packs.get(ctx.params.pack_id ?? '')
  if (!pack) throw cfError(404, 1404, 'Certificate pack not found.')
  return { zone, pack }
}

export function getPack(ctx: CfContext): CfAnswer {
  const { zone, pack } = requirePack(ctx)
  return { result: packView(zone, pack) }
}

export function deletePack(ctx: CfContext): CfAnswer {
  const { zone, pack } = requirePack(ctx)
  if (pack.type === 'universal')
    throw cfError(400, 1211, 'Universal certificate packs cannot be deleted; disable Universal SSL instead.')
  zone.packs.delete(pack.id)
  return { result: { id: pack.id } }
}

const REQUEST_VALIDITY = [7, 30, 90, 365, 730, 1095, 5475]

/** Go's time format, as the Origin CA API prints `expires_on`: `2041-11-22 10:09:21 +0000 UTC`. */
const goTime = (d: Date) => `${d.toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`

export interface OriginCa {
  create(ctx: CfContext): Promise<CfAnswer>
  list(ctx: CfContext): CfAnswer
  get(ctx: CfContext): CfAnswer
  revoke(ctx: CfContext): CfAnswer
  /** The next certificate issued expires this many seconds after issuance (negative: already expired);
   * undefined cancels. */
  expireNextIn(seconds: number | undefined): void
}

export function originCa(pki: Pki): OriginCa {
  let nextLifetimeS: number | undefined
  const badRequest = (code: number, message: string) => cfError(400, code, message)
  const zoneOf = (state: CloudflareState, host: string) =>
    [...state.zones.values()].find((z) => inZone(host, z.name))
  const requireCert = (ctx: CfContext) => {
    const cert = ctx.state.originCertificates.get(ctx.params.certificate_id ?? '')
    if (!cert) throw cfError(404, 1003, 'Certificate not found.')
    return cert
  }
  const view = (c: OriginCertificate) => ({ ...c })

  return {
    async create(ctx) {
      const body = ctx.body
      if (!isObject(body)) throw badRequest(1001, 'Invalid request body.')
      const type = body.request_type
      if (type !== 'origin-rsa' && type !== 'origin-ecc')
        throw badRequest(1011, 'request_type must be origin-rsa or origin-ecc.')
      const validity = body.requested_validity ?? 5475
      if (typeof validity !== 'number' || !REQUEST_VALIDITY.includes(validity))
        throw badRequest(1013, `requested_validity must be one of ${REQUEST_VALIDITY.join(', ')} days.`)
      const hostnames = body.hostnames
      if (!Array.isArray(hostnames) || hostnames.length === 0 || hostnames.length > 100)
        throw badRequest(1002, 'hostnames must list between 1 and 100 hostnames.')
      const hosts = hostnames.map((h) => (typeof h === 'string' ? h.trim().toLowerCase() : ''))
      for (const host of hosts) {
        if (!isHostname(host) || host.indexOf('*', 1) !== -1 || !zoneOf(ctx.state, host))
          throw badRequest(
            1010,
            `Failed to validate requested hostname ${host}: This zone is either not part of your account, ` +
              'or you do not have access to it.',
          )
      }
      if (typeof body.csr !== 'string' || body.csr.trim() === '')
        throw badRequest(1014, 'A certificate signing request (csr) is required.')
      const csr = await checkCsr(body.csr)
      if (!csr.ok) throw badRequest(1014, `Invalid certificate signing request: ${csr.reason}.`)
      const ca: Ca = type === 'origin-ecc' ? pki.originEcc : pki.originRsa
      const serial = newSerial()
      const issued = Date.now()
      const notAfter = new Date(issued + (nextLifetimeS ?? validity * 86_400) * 1000)
      nextLifetimeS = undefined
      const notBefore = new Date(Math.min(issued, notAfter.getTime() - 86_400_000))
      const certificate = await signCsr(ca, body.csr, {
        serialHex: serial.hex,
        notBefore,
        notAfter,
        subject: '/O=CloudFlare, Inc./OU=CloudFlare Origin CA/CN=CloudFlare Origin Certificate',
        extensions: [
          'basicConstraints = critical, CA:FALSE',
          'keyUsage = critical, digitalSignature, keyEncipherment',
          'extendedKeyUsage = serverAuth, clientAuth',
          'subjectKeyIdentifier = hash',
          'authorityKeyIdentifier = keyid',
          `subjectAltName = ${hosts.map((h) => `DNS:${h}`).join(', ')}`,
          'crlDistributionPoints = URI:http://crl.cloudflare.com/origin_ca.crl',
        ],
      })
      const cert: OriginCertificate = {
        id: serial.decimal,
        certificate,
        hostnames: hosts,
        expires_on: goTime(notAfter),
        request_type: type,
        requested_validity: validity,
        csr: body.csr,
      }
      ctx.state.originCertificates.set(cert.id, cert)
      return { result: view(cert) }
    },

    list(ctx) {
      const zoneId = ctx.query.get('zone_id')
      if (!zoneId)
        throw badRequest(
          1012,
          'Please provide a zone id when requesting a stored certificate, or fetch by serial number',
        )
      const zone = isCfId(zoneId) ? ctx.state.zones.get(zoneId) : undefined
      const certs = [...ctx.state.originCertificates.values()].filter(
        (c) => zone && !c.revoked_at && c.hostnames.some((h) => inZone(h, zone.name)),
      )
      const page = paginate(certs, ctx.query, {
        defaultPerPage: 20,
        minPerPage: 5,
        maxPerPage: 50,
        emptyPages: 0,
      })
      return { result: page.items.map(view), result_info: page.info }
    },

    get: (ctx) => ({ result: view(requireCert(ctx)) }),

    revoke(ctx) {
      const cert = requireCert(ctx)
      cert.revoked_at ??= nowIso()
      return { result: { id: cert.id, revoked_at: cert.revoked_at } }
    },

    expireNextIn(seconds) {
      nextLifetimeS = seconds
    },
  }
}

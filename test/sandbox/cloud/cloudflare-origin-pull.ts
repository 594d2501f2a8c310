/**
 * Zone-level authenticated origin pulls: the zone's own client certificate, uploaded with its key
 * (POST /zones/:id/origin_tls_client_auth); Cloudflare's edge then presents it to the origin instead
 * of the shared one. The key is never returned. Uploads turn active at once (the real API passes
 * through initializing and pending_deployment for a few minutes).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto'
import {
  type CfAnswer,
  type CfContext,
  cfError,
  cfId,
  isObject,
  nowIso,
  requireZone,
  type ZoneOriginPullCert,
} from './cloudflare-common.ts'

const view = (c: ZoneOriginPullCert) => {
  const { private_key: _key, ...rest } = c
  return { ...rest, enabled: c.status === 'active' }
}

export function listOriginPullCerts(ctx: CfContext): CfAnswer {
  const zone = requireZone(ctx)
  const all = [...zone.originPullCerts.values()].filter((c) => c.status !== 'deleted').map(view)
  return {
    result: all,
    result_info: {
      page: 1,
      per_page: all.length,
      count: all.length,
      total_count: all.length,
      total_pages: 1,
    },
  }
}

export function uploadOriginPullCert(ctx: CfContext): CfAnswer {
  const zone = requireZone(ctx)
  const body = isObject(ctx.body) ? ctx.body : {}
  const certificate = typeof body.certificate === 'string' ? body.certificate : ''
  const key = typeof body.private_key === 'string' ? body.private_key : ''
  if (!certificate || !key) throw cfError(400, 1400, 'certificate and private_key are required')
  let cert: X509Certificate
  try {
    cert = new X509Certificate(certificate)
  } catch {
    throw cfError(400, 1401, 'The certificate could not be parsed')
  }
  let matches = false
  try {
    matches = cert.checkPrivateKey(createPrivateKey(key))
  } catch {
    throw cfError(400, 1402, 'The private key could not be parsed')
  }
  if (!matches) throw cfError(400, 1403, 'The private key does not match the certificate')
  const entry: ZoneOriginPullCert = {
    id: cfId(),
    certificate,
    private_key: key,
    issuer: cert.issuer.replace(/\n/g, ', '),
    signature: 'ECDSAWithSHA256',
    expires_on: new Date(cert.validTo).toISOString(),
    uploaded_on: nowIso(),
    status: 'active',
  }
  zone.originPullCerts.set(entry.id, entry)
  return { result: view(entry) }
}

function requireCert(ctx: CfContext): ZoneOriginPullCert {
  const cert = requireZone(ctx).originPullCerts.get(ctx.params.certificate_id ?? '')
  if (!cert || cert.status === 'deleted') throw cfError(404, 1404, 'Certificate not found')
  return cert
}

export function getOriginPullCert(ctx: CfContext): CfAnswer {
  return { result: view(requireCert(ctx)) }
}

export function deleteOriginPullCert(ctx: CfContext): CfAnswer {
  const cert = requireCert(ctx)
  cert.status = 'deleted'
  return { result: view(cert) }
}

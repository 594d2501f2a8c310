/**
 * Cloudflare's edge, for the sandbox: what a visitor meets in front of the origin, driven by the
 * Cloudflare double's state, so `make dns` decides how it behaves.
 * - DNS: a UDP server answering A queries for the zone's records; a proxied record resolves to the
 *   edge's address (as Cloudflare's anycast addresses), an unproxied one to its content.
 * - HTTPS on <edge address>:443: a certificate for the name only when Universal SSL (apex and one
 *   level) or an active certificate pack covers it (else the handshake fails, as a browser's would);
 *   the zone's min_tls_version; then the request goes to the origin the record names, on 443, with
 *   the zone's SSL mode (strict: the Origin CA and the name are checked, else 526), presenting the
 *   zone's own origin-pull certificate when one was uploaded, else the shared one (tls_client_auth on).
 *   CF-Connecting-IP carries the visitor's address.
 * Everything listens on 127.0.0.0/8 only.
 */
import { createSocket, type Socket } from 'node:dgram'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createHttpsServer, request as httpsRequest, type Server } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls'
import type { CloudflareApi } from './cloudflare-api.ts'
import type { Zone } from './cloudflare-common.ts'
import { createEdgeCa, issueServerCertificate } from './cloudflare-pki.ts'

export interface EdgeRequest {
  host: string
  path: string
  status: number
  /** What the edge presented to the origin: 'zone' (its own certificate), 'shared', or 'none'. */
  clientCert: 'zone' | 'shared' | 'none'
}

export interface CloudflareEdge {
  /** The address proxied records resolve to (port 443). */
  address: string
  /** host:port of the DNS server, for health.edge_resolver. */
  resolver: string
  /** The edge CA (PEM file): a visitor trusts it (NODE_EXTRA_CA_CERTS). */
  caPath: string
  requests: EdgeRequest[]
  close(): Promise<void>
}

const TLS_VERSION = { '1.0': 'TLSv1', '1.1': 'TLSv1.1', '1.2': 'TLSv1.2', '1.3': 'TLSv1.3' } as const

function zoneOf(cf: CloudflareApi, name: string): Zone | undefined {
  return [...cf.state.zones.values()]
    .filter((z) => name === z.name || name.endsWith(`.${z.name}`))
    .sort((a, b) => b.name.length - a.name.length)[0]
}

function setting(zone: Zone, id: string): unknown {
  return zone.settings.get(id)?.value
}

/** Universal SSL (apex, one level) and every active certificate pack: does any cover `name`? */
function covered(zone: Zone, name: string): boolean {
  const hosts = [zone.name, `*.${zone.name}`]
  for (const pack of zone.packs.values()) {
    if (pack.status === 'pending_validation' && pack.activate_at !== null && pack.activate_at <= Date.now())
      pack.status = 'active'
    if (pack.status === 'active') hosts.push(...pack.hosts)
  }
  return hosts.some(
    (h) =>
      h === name ||
      (h.startsWith('*.') && name.endsWith(h.slice(1)) && !name.slice(0, -(h.length - 1)).includes('.')),
  )
}

function originOf(zone: Zone, name: string): { address: string; proxied: boolean } | undefined {
  const record = [...zone.records.values()].find(
    (r) => r.name === name && (r.type === 'A' || r.type === 'AAAA'),
  )
  return record ? { address: record.content, proxied: record.proxied } : undefined
}

/** A DNS answer for one question (A only; AAAA and others get an empty NOERROR for a known name). */
export function dnsAnswer(query: Buffer, lookup: (name: string) => string[] | undefined): Buffer {
  const id = query.readUInt16BE(0)
  let at = 12
  const labels: string[] = []
  while (at < query.length && query[at] !== 0) {
    const len = query[at] ?? 0
    labels.push(query.subarray(at + 1, at + 1 + len).toString('ascii'))
    at += len + 1
  }
  const qtype = query.readUInt16BE(at + 1)
  const question = query.subarray(12, at + 5)
  const name = labels.join('.').toLowerCase()
  const addrs = lookup(name)
  const answers = qtype === 1 ? (addrs ?? []).filter((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a)) : []
  const header = Buffer.alloc(12)
  header.writeUInt16BE(id, 0)
  header.writeUInt16BE(0x8180 | (addrs === undefined ? 3 : 0), 2) // response, RD, RA; NXDOMAIN when unknown
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(answers.length, 6)
  const rrs = answers.map((a) => {
    const rr = Buffer.alloc(16)
    rr.writeUInt16BE(0xc00c, 0) // the question's name
    rr.writeUInt16BE(1, 2) // A
    rr.writeUInt16BE(1, 4) // IN
    rr.writeUInt32BE(60, 6)
    rr.writeUInt16BE(4, 10)
    a.split('.').forEach((octet, i) => {
      rr[12 + i] = Number(octet)
    })
    return rr
  })
  return Buffer.concat([header, question, ...rrs])
}

export async function startCloudflareEdge(cf: CloudflareApi, address: string): Promise<CloudflareEdge> {
  const dir = mkdtempSync(join(tmpdir(), 'cf-edge-'))
  const ca = await createEdgeCa(dir)
  const caPath = join(dir, 'edge-ca.pem')
  writeFileSync(caPath, ca.pem)
  const shared = await cf.issueOriginPullClientCertificate()
  const originCas = [cf.originCaPem.ecc, cf.originCaPem.rsa]
  const requests: EdgeRequest[] = []
  const contexts = new Map<string, Promise<SecureContext | undefined>>()

  const context = (name: string): Promise<SecureContext | undefined> => {
    const zone = zoneOf(cf, name)
    if (!zone || !covered(zone, name)) return Promise.resolve(undefined)
    const key = name
    let made = contexts.get(key)
    if (!made) {
      made = issueServerCertificate(ca, [name]).then(({ certPem, keyPem }) =>
        createSecureContext({ cert: certPem, key: keyPem }),
      )
      contexts.set(key, made)
    }
    return made
  }

  const server: Server = createHttpsServer({
    SNICallback: (name, done) => {
      context(name.toLowerCase()).then(
        (c) => (c ? done(null, c) : done(new Error(`no certificate covers ${name}`))),
        (e: Error) => done(e),
      )
    },
  })
  // OpenSSL fixes the protocol range before SNI picks a context, so the zone's minimum is enforced
  // once the handshake says which version it got: below it, the connection is dropped.
  server.on('secureConnection', (socket: TLSSocket) => {
    const zone = zoneOf(cf, String(socket.servername ?? '').toLowerCase())
    const min = zone
      ? TLS_VERSION[String(setting(zone, 'min_tls_version')) as keyof typeof TLS_VERSION]
      : undefined
    const order = Object.values(TLS_VERSION) as string[]
    if (min && order.indexOf(String(socket.getProtocol())) < order.indexOf(min)) socket.destroy()
  })
  server.on('request', (req, res) => {
    const host =
      String(req.headers.host ?? '')
        .split(':')[0]
        ?.toLowerCase() ?? ''
    const zone = zoneOf(cf, host)
    const origin = zone && originOf(zone, host)
    const answer = (status: number, text: string, clientCert: EdgeRequest['clientCert'] = 'none') => {
      requests.push({ host, path: req.url ?? '', status, clientCert })
      res.writeHead(status, { 'content-type': 'text/plain', server: 'cloudflare' })
      res.end(text)
    }
    if (!zone || !origin?.proxied) return answer(530, 'error code: 1016 (origin DNS error)')
    const ssl = String(setting(zone, 'ssl'))
    const aop = setting(zone, 'tls_client_auth') === 'on' || zone.originPull.enabled
    const own = cf.zoneClientCertificate(zone.name)
    const client = aop ? (own ?? { cert: shared.certPem, key: shared.keyPem }) : undefined
    const presented: EdgeRequest['clientCert'] = !aop ? 'none' : own ? 'zone' : 'shared'
    const forward = httpsRequest(
      {
        host: origin.address,
        port: 443,
        method: req.method,
        path: req.url,
        servername: host,
        headers: {
          ...req.headers,
          'cf-connecting-ip': req.socket.remoteAddress ?? '',
          'x-forwarded-proto': 'https',
        },
        ...(client ? { cert: client.cert, key: client.key } : {}),
        ca: originCas,
        // full accepts any origin certificate; strict checks it and the name (526 otherwise).
        rejectUnauthorized: ssl === 'strict',
        timeout: 15_000,
        agent: false,
      },
      (upstream) => {
        requests.push({ host, path: req.url ?? '', status: upstream.statusCode ?? 0, clientCert: presented })
        res.writeHead(upstream.statusCode ?? 502, upstream.headers)
        upstream.pipe(res)
      },
    )
    forward.on('timeout', () => forward.destroy(new Error('timeout')))
    forward.on('error', (e: NodeJS.ErrnoException) => {
      if (res.headersSent) return res.destroy()
      if (
        /certificate|self.signed|altname|verify/i.test(e.message) ||
        e.code?.startsWith('ERR_TLS') ||
        e.code?.includes('CERT')
      )
        return answer(526, `error code: 526 (invalid SSL certificate at the origin: ${e.message})`, presented)
      if (e.message === 'timeout') return answer(522, 'error code: 522 (connection timed out)', presented)
      answer(521, `error code: 521 (web server is down: ${e.message})`, presented)
    })
    req.pipe(forward)
  })
  await new Promise<void>((ok, fail) => {
    server.once('error', fail)
    server.listen(443, address, () => ok())
  })

  const dns: Socket = createSocket('udp4')
  dns.on('message', (msg, peer) => {
    try {
      const reply = dnsAnswer(msg, (name) => {
        const zone = zoneOf(cf, name)
        const record = zone && originOf(zone, name)
        if (!record) return undefined
        return [record.proxied ? address : record.address]
      })
      dns.send(reply, peer.port, peer.address)
    } catch {
      // a query we cannot parse gets no answer (the client times out, as with a broken resolver)
    }
  })
  await new Promise<void>((ok) => dns.bind(0, address, () => ok()))
  const resolver = `${address}:${dns.address().port}`

  return {
    address,
    resolver,
    caPath,
    requests,
    async close() {
      dns.close()
      await new Promise<void>((ok) => server.close(() => ok()))
      server.closeAllConnections?.()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

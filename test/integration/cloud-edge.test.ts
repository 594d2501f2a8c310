// Listens on port 443 of loopback addresses (root, as on the CI machine): with the integration tests.
import { spawnSync } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { Resolver } from 'node:dns/promises'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, request, type Server } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Cloudflare from 'cloudflare'
import * as assert from 'uvu/assert'
import { makeZoneClientCert } from '../../lib/dns/origin-pull.ts'
import { suite } from '../harness.ts'
import { type CloudflareApi, startCloudflareApi } from '../sandbox/cloud/cloudflare-api.ts'
import { type CloudflareEdge, dnsAnswer, startCloudflareEdge } from '../sandbox/cloud/cloudflare-edge.ts'

// The sandbox's stand-in for Cloudflare's edge, driven by the double's zone: DNS, certificate
// coverage, minimum TLS, and the client certificate it presents to the origin (an origin here on
// another loopback address records what it was shown).
const test = suite('cloudflare edge double: DNS, coverage, min TLS, origin pulls', { timeoutS: 60 })
const TOKEN = 'cfTestToken_0123456789abcdefghijklmnopqrstuv'
const ZONE = 'example.com'
const loopback = () => `127.${randomInt(16, 250)}.${randomInt(1, 250)}.${randomInt(2, 250)}`
let api: CloudflareApi
let cf: Cloudflare
let edge: CloudflareEdge
let origin: Server
let originAddress: string
const seen: string[] = []

function selfSigned(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ce-edge-origin-'))
  const [cert, key] = [join(dir, 'c.pem'), join(dir, 'k.pem')]
  const r = spawnSync('openssl', [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'],
    ...['-subj', '/CN=origin', '-keyout', key, '-out', cert],
  ])
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`)
  const pair = { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') }
  rmSync(dir, { recursive: true })
  return pair
}

function get(
  name: string,
  opts: { maxVersion?: 'TLSv1.2' | 'TLSv1.3' } = {},
): Promise<{ status: number; body: string } | Error> {
  return new Promise((done) => {
    const req = request(
      {
        host: edge.address,
        port: 443,
        servername: name,
        headers: { host: name },
        path: '/',
        ca: [],
        rejectUnauthorized: false,
        agent: false,
        ...opts,
      },
      (res) => {
        let body = ''
        res.on('data', (c) => {
          body += c
        })
        res.on('end', () => done({ status: res.statusCode ?? 0, body }))
      },
    )
    req.on('error', (e) => done(e))
    req.end()
  })
}

test.before(async () => {
  api = await startCloudflareApi({ tokens: [TOKEN], zones: [ZONE], allowPrivateProxiedTargets: true })
  cf = new Cloudflare({ apiToken: TOKEN, baseURL: api.apiBase, maxRetries: 0 })
  originAddress = loopback()
  const pair = selfSigned()
  origin = createServer({ ...pair, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate()
    seen.push(peer?.subject ? String(peer.subject.CN) : 'none')
    res.end(`origin saw ${req.headers.host} from ${req.headers['cf-connecting-ip']}`)
  })
  await new Promise<void>((ok) => origin.listen(443, originAddress, () => ok()))
  edge = await startCloudflareEdge(api, loopback())
  const zone_id = api.zoneId(ZONE)
  for (const name of [`app.${ZONE}`, `api.qa.${ZONE}`])
    await cf.dns.records.create({ zone_id, type: 'A', name, content: originAddress, proxied: true, ttl: 1 })
  await cf.dns.records.create({
    zone_id,
    type: 'A',
    name: `direct.${ZONE}`,
    content: '192.0.2.7',
    proxied: false,
    ttl: 1,
  })
  await cf.zones.settings.edit('ssl', { zone_id, value: 'full' } as never)
})

test.after(async () => {
  await edge?.close()
  await new Promise<void>((ok) => (origin ? origin.close(() => ok()) : ok()))
  await api?.close()
})

test('DNS: a proxied name resolves to the edge, an unproxied one to its content, an unknown one is NXDOMAIN', async () => {
  const r = new Resolver()
  r.setServers([edge.resolver])
  assert.equal(await r.resolve4(`app.${ZONE}`), [edge.address])
  assert.equal(await r.resolve4(`direct.${ZONE}`), ['192.0.2.7'])
  const missing = await r.resolve4(`nope.${ZONE}`).catch((e: NodeJS.ErrnoException) => e.code)
  assert.is(missing, 'ENOTFOUND')
  // The wire format, by hand: id kept, one question, one answer.
  const name = Buffer.concat(['app', 'example', 'com'].map((l) => Buffer.from([l.length, ...Buffer.from(l)])))
  const q = Buffer.concat([
    Buffer.from('abcd01000001000000000000', 'hex'),
    name,
    Buffer.from('0000010001', 'hex'),
  ])
  const a = dnsAnswer(q, () => ['10.1.2.3'])
  assert.is(a.readUInt16BE(0), 0xabcd)
  assert.is(a.readUInt16BE(6), 1)
  assert.equal([...a.subarray(a.length - 4)], [10, 1, 2, 3])
})

test('coverage: one level is served, two levels fail the handshake until a pack covers them', async () => {
  const ok = await get(`app.${ZONE}`)
  assert.ok(!(ok instanceof Error), String(ok))
  assert.is((ok as { status: number }).status, 200)
  assert.match((ok as { body: string }).body, `origin saw app.${ZONE} from 127.`)
  assert.instance(await get(`api.qa.${ZONE}`), Error)
  await cf.ssl.certificatePacks.create({
    zone_id: api.zoneId(ZONE),
    type: 'advanced',
    hosts: [ZONE, `*.${ZONE}`, `*.qa.${ZONE}`],
    validation_method: 'txt',
    validity_days: 90,
    certificate_authority: 'lets_encrypt',
  } as never)
  const later = await get(`api.qa.${ZONE}`)
  assert.is((later as { status: number }).status, 200)
})

test('min_tls_version 1.3 refuses a TLS 1.2 visitor; the origin is shown no certificate, the shared one, then the zone own', async () => {
  const zone_id = api.zoneId(ZONE)
  assert.is(((await get(`app.${ZONE}`, { maxVersion: 'TLSv1.2' })) as { status: number }).status, 200)
  await cf.zones.settings.edit('min_tls_version', { zone_id, value: '1.3' } as never)
  assert.instance(await get(`app.${ZONE}`, { maxVersion: 'TLSv1.2' }), Error)
  seen.length = 0
  await get(`app.${ZONE}`)
  await cf.zones.settings.edit('tls_client_auth', { zone_id, value: 'on' } as never)
  await get(`app.${ZONE}`)
  const own = await makeZoneClientCert(ZONE)
  await cf.originTLSClientAuth.create({ zone_id, certificate: own.cert, private_key: own.key })
  await get(`app.${ZONE}`)
  assert.equal(seen, ['none', 'origin-pull-client.cloudflare.net', `origin-pull ${ZONE}`])
  assert.equal(
    edge.requests.slice(-3).map((r) => r.clientCert),
    ['none', 'shared', 'zone'],
  )
})

test('strict SSL: an origin certificate not from the Origin CA is a 526', async () => {
  await cf.zones.settings.edit('ssl', { zone_id: api.zoneId(ZONE), value: 'strict' } as never)
  const r = await get(`app.${ZONE}`)
  assert.is((r as { status: number }).status, 526)
})

test.run()

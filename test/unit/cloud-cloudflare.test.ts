import { spawnSync } from 'node:child_process'
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Cloudflare from 'cloudflare'
import * as assert from 'uvu/assert'
import { suite } from '../harness.ts'
import { type CloudflareApi, startCloudflareApi } from '../sandbox/cloud/cloudflare-api.ts'

const test = suite('cloudflare api double', { timeoutS: 60 })
const TOKEN = 'cfTestToken_0123456789abcdefghijklmnopqrstuv'
const ZONE = 'conciliaextrato.com'
let api: CloudflareApi
let cf: Cloudflare
let zoneId: string
let work: string

type ErrorBody = { errors: Array<{ code: number; message: string; error_chain?: Array<{ code: number }> }> }

/** Awaits a rejection of the given SDK error class and returns it. */
async function rejects<E extends InstanceType<typeof Cloudflare.APIError>>(
  promise: Promise<unknown>,
  kind: abstract new (...args: never[]) => E,
): Promise<E & { error: ErrorBody }> {
  const outcome = await promise.then(
    () => undefined,
    (err: unknown) => err,
  )
  assert.ok(outcome instanceof kind, `expected ${kind.name}, got ${String(outcome)}`)
  return outcome as E & { error: ErrorBody }
}

const code = (err: { error: ErrorBody }) => err.error.errors[0]?.code

function openssl(args: string[], input?: string): string {
  const run = spawnSync('openssl', args, { input, encoding: 'utf8' })
  if (run.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${run.stderr}`)
  return run.stdout
}

/** A CSR and its key from the openssl CLI (`ec` = P-256, `rsa` = 2048 bits). */
function csr(kind: 'ec' | 'rsa', cn = ZONE): { csr: string; keyPath: string } {
  const keyPath = join(work, `${kind}-${Math.random().toString(36).slice(2)}.key`)
  const keyArgs =
    kind === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048']
  const pem = openssl(['req', '-new', ...keyArgs, '-nodes', '-keyout', keyPath, '-subj', `/CN=${cn}`])
  return { csr: pem, keyPath }
}

test.before(async () => {
  work = mkdtempSync(join(tmpdir(), 'cf-double-test-'))
  api = await startCloudflareApi({ tokens: [TOKEN], zones: [ZONE, 'conciliaextrato.com.br'] })
  cf = new Cloudflare({ apiToken: TOKEN, baseURL: api.apiBase, maxRetries: 0 })
  zoneId = api.zoneId(ZONE)
})

test.beforeEach(() => api.reset())

test.after(async () => {
  await api?.close()
  if (work) rmSync(work, { recursive: true, force: true })
})

test('the token verifies; a wrong, malformed or missing token gets the real envelopes', async () => {
  const verified = await cf.user.tokens.verify()
  assert.is(verified.status, 'active')

  const wrong = new Cloudflare({ apiToken: `x${TOKEN.slice(1)}`, baseURL: api.apiBase, maxRetries: 0 })
  const denied = await rejects(wrong.zones.list(), Cloudflare.PermissionDeniedError)
  assert.equal(denied.error, {
    success: false,
    errors: [{ code: 10000, message: 'Authentication error' }],
    messages: [],
    result: null,
  })
  assert.is(code(await rejects(wrong.user.tokens.verify(), Cloudflare.AuthenticationError)), 1000)

  const malformed = new Cloudflare({ apiToken: 'short', baseURL: api.apiBase, maxRetries: 0 })
  const bad = await rejects(malformed.zones.list(), Cloudflare.BadRequestError)
  assert.is(code(bad), 6003)
  assert.is(bad.error.errors[0]?.error_chain?.[0]?.code, 6111)

  const bare = await fetch(`${api.apiBase}/zones`)
  assert.is(bare.status, 400)
  assert.is(bare.headers.get('content-type'), 'application/json')
  assert.is(((await bare.json()) as ErrorBody).errors[0]?.code, 9106)
})

test('zones list by name and by id; an unknown zone id does not route', async () => {
  const page = await cf.zones.list({ name: ZONE })
  assert.equal(
    page.result.map((z) => [z.id, z.name, z.status]),
    [[zoneId, ZONE, 'active']],
  )
  assert.equal(page.result_info, { page: 1, per_page: 20, count: 1, total_count: 1, total_pages: 1 })
  assert.is((await cf.zones.list({ name: 'starts_with:conciliaextrato' })).result.length, 2)
  assert.is((await cf.zones.list({ name: 'example.org' })).result.length, 0)
  assert.is((await cf.zones.get({ zone_id: zoneId })).name, ZONE)
  const unknown = await rejects(cf.zones.get({ zone_id: 'f'.repeat(32) }), Cloudflare.BadRequestError)
  assert.is(code(unknown), 7003)
  assert.match(
    unknown.error.errors[0]?.message ?? '',
    `Could not route to /client/v4/zones/${'f'.repeat(32)}`,
  )
})

test('DNS records: create (relative names become FQDNs), filter, edit, overwrite, delete', async () => {
  const a = await cf.dns.records.create({
    zone_id: zoneId,
    type: 'A',
    name: 'app',
    content: '203.0.113.10',
    ttl: 1,
  })
  assert.is(a.name, `app.${ZONE}`)
  assert.is(a.proxiable, true)
  assert.is(a.proxied, false)
  assert.match(a.id, /^[0-9a-f]{32}$/)
  assert.ok(a.created_on && a.modified_on)
  const apex = await cf.dns.records.create({
    zone_id: zoneId,
    type: 'AAAA',
    name: '@',
    content: '2001:DB8:0:0::1',
    ttl: 300,
  })
  assert.equal([apex.name, apex.content], [ZONE, '2001:db8::1'])

  const found = await cf.dns.records.list({ zone_id: zoneId, name: { exact: `app.${ZONE}` }, type: 'A' })
  assert.equal(
    found.result.map((r) => r.id),
    [a.id],
  )
  const edited = await cf.dns.records.edit(a.id, {
    zone_id: zoneId,
    content: '203.0.113.11',
    proxied: true,
  } as never)
  assert.equal(
    [edited.content, edited.proxied, edited.ttl, edited.name],
    ['203.0.113.11', true, 1, `app.${ZONE}`],
  )
  const replaced = await cf.dns.records.update(a.id, {
    zone_id: zoneId,
    type: 'CNAME',
    name: `app.${ZONE}`,
    content: 'origin.conciliaextrato.com.',
    ttl: 120,
  })
  assert.equal(
    [replaced.type, replaced.content, replaced.proxied, replaced.ttl],
    ['CNAME', 'origin.conciliaextrato.com', false, 120],
  )
  assert.equal(await cf.dns.records.delete(a.id, { zone_id: zoneId }), { id: a.id })
  assert.is(
    code(await rejects(cf.dns.records.get(a.id, { zone_id: zoneId }), Cloudflare.NotFoundError)),
    81044,
  )
})

test('auto-pagination walks 120 TXT records in pages of 50 and stops on the empty page', async () => {
  for (let i = 0; i < 120; i++)
    await cf.dns.records.create({ zone_id: zoneId, type: 'TXT', name: `t${i}`, content: `"v=${i}"`, ttl: 1 })
  const first = await cf.dns.records.list({ zone_id: zoneId, type: 'TXT', per_page: 50 })
  assert.equal(first.result_info, { page: 1, per_page: 50, count: 50, total_count: 120, total_pages: 3 })
  const seen = new Set<string>()
  for await (const record of cf.dns.records.list({ zone_id: zoneId, type: 'TXT', per_page: 50 }))
    seen.add(record.id)
  assert.is(seen.size, 120)
  const pages = api.requests
    .filter((r) => r.method === 'GET' && r.path.endsWith('/dns_records'))
    .map((r) => r.query.page)
  assert.equal(pages, [undefined, undefined, '2', '3', '4'])
})

test('record validation answers with the real error codes', async () => {
  const create = (body: Record<string, unknown>) =>
    rejects(cf.dns.records.create({ zone_id: zoneId, ttl: 1, ...body } as never), Cloudflare.BadRequestError)
  assert.is(code(await create({ type: 'A', name: 'x', content: '203.0.113.300' })), 9005)
  assert.is(code(await create({ type: 'AAAA', name: 'x', content: '203.0.113.3' })), 9006)
  const ttl = await create({ type: 'A', name: 'x', content: '203.0.113.3', ttl: 30 })
  assert.equal([code(ttl), ttl.error.errors[0]?.error_chain?.[0]?.code], [1004, 9021])
  assert.is(code(await create({ type: 'A', name: 'bad name!', content: '203.0.113.3' })), 9000)
  assert.is(code(await create({ type: 'SPF', name: 'x', content: 'v=spf1 -all' })), 1004)
  assert.is(code(await create({ type: 'TXT', name: 'x', content: 'hello', proxied: true })), 9004)
  assert.is(code(await create({ type: 'A', name: 'x', content: '127.0.0.1', proxied: true })), 9003)

  await cf.dns.records.create({ zone_id: zoneId, type: 'A', name: 'www', content: '203.0.113.3', ttl: 1 })
  assert.is(code(await create({ type: 'A', name: `www.${ZONE}`, content: '203.0.113.3' })), 81058)
  assert.is(code(await create({ type: 'CNAME', name: 'www', content: ZONE })), 81053)
  await cf.dns.records.create({ zone_id: zoneId, type: 'CNAME', name: 'cdn', content: ZONE, ttl: 1 })
  assert.is(code(await create({ type: 'A', name: 'cdn', content: '203.0.113.4' })), 81054)
  // Like the real API, a name outside the zone is taken as relative: the zone is appended, nothing fails.
  const outside = await cf.dns.records.create({
    zone_id: zoneId,
    type: 'A',
    name: 'api.example.org',
    content: '203.0.113.5',
    ttl: 1,
  })
  assert.is(outside.name, `api.example.org.${ZONE}`)
})

test('zone settings: read, edit, partial HSTS edit, invalid value, unknown setting', async () => {
  type Setting = { id: string; value: unknown; editable?: boolean; modified_on?: string | null }
  const get = async (id: string) => (await cf.zones.settings.get(id, { zone_id: zoneId })) as Setting
  const edit = async (id: string, value: unknown) =>
    (await cf.zones.settings.edit(id, { zone_id: zoneId, value })) as Setting
  const ssl = await get('ssl')
  assert.equal([ssl.id, ssl.value, ssl.editable, ssl.modified_on], ['ssl', 'flexible', true, null])
  const strict = await edit('ssl', 'strict')
  assert.is(strict.value, 'strict')
  assert.ok(strict.modified_on)
  assert.is((await get('ssl')).value, 'strict')
  const values = { min_tls_version: '1.2', tls_1_3: 'zrt', always_use_https: 'on', tls_client_auth: 'on' }
  for (const [id, value] of Object.entries(values)) assert.is((await edit(id, value)).value, value)
  const hsts = { enabled: true, max_age: 31536000, include_subdomains: true, preload: false, nosniff: true }
  await edit('security_header', { strict_transport_security: hsts })
  const partial = await edit('security_header', { strict_transport_security: { preload: true } })
  assert.equal(partial.value, { strict_transport_security: { ...hsts, preload: true } })
  const invalid = await rejects(edit('ssl', 'full_strict'), Cloudflare.BadRequestError)
  assert.equal(invalid.error.errors, [{ code: 1007, message: 'Invalid value for zone setting ssl' }])
  const badHsts = edit('security_header', { strict_transport_security: { max_age: -1 } })
  assert.is(code(await rejects(badHsts, Cloudflare.BadRequestError)), 1007)
  assert.is(code(await rejects(get('ssl_mode'), Cloudflare.BadRequestError)), 1006)
})

test('certificate packs: the universal pack, an advanced order turning active, bad orders', async () => {
  const packs = await cf.ssl.certificatePacks.list({ zone_id: zoneId })
  assert.equal(
    packs.result.map((p) => [p.type, p.status, p.hosts]),
    [['universal', 'active', [ZONE, `*.${ZONE}`]]],
  )
  api.state.packActivationMs = null
  const order: Parameters<typeof cf.ssl.certificatePacks.create>[0] = {
    zone_id: zoneId,
    type: 'advanced',
    hosts: [ZONE, `*.${ZONE}`],
    validation_method: 'txt',
    validity_days: 90,
    certificate_authority: 'lets_encrypt',
  }
  const pack = await cf.ssl.certificatePacks.create(order)
  assert.is(pack.status, 'pending_validation')
  assert.equal(
    pack.validation_records?.map((v) => v.txt_name),
    [`_acme-challenge.${ZONE}`, `_acme-challenge.${ZONE}`],
  )
  assert.is(
    (await cf.ssl.certificatePacks.list({ zone_id: zoneId })).result.length,
    1,
    'pending packs are not listed',
  )
  assert.is((await cf.ssl.certificatePacks.list({ zone_id: zoneId, status: 'all' })).result.length, 2)
  api.activateCertificatePack(pack.id)
  const active = (await cf.ssl.certificatePacks.list({ zone_id: zoneId })).result.find(
    (p) => p.id === pack.id,
  )
  assert.equal([active?.status, active?.certificates[0]?.issuer], ['active', 'LetsEncrypt'])
  const invalid = cf.ssl.certificatePacks.create({ ...order, validity_days: 365 })
  assert.match(
    (await rejects(invalid, Cloudflare.BadRequestError)).message,
    'validity_days 365 is not offered by lets_encrypt',
  )
  const outside = cf.ssl.certificatePacks.create({ ...order, hosts: [ZONE, 'example.org'] })
  assert.match(
    (await rejects(outside, Cloudflare.BadRequestError)).message,
    'example.org is not part of this zone',
  )
})

test('Origin CA issues a real certificate for an ECC CSR, lists, gets and revokes it', async () => {
  const request = csr('ec')
  const issued = await cf.originCACertificates.create({
    csr: request.csr,
    hostnames: [ZONE, `*.${ZONE}`],
    request_type: 'origin-ecc',
    requested_validity: 5475,
  })
  const cert = new X509Certificate(issued.certificate ?? '')
  const ca = new X509Certificate(api.originCaPem.ecc)
  assert.ok(cert.verify(ca.publicKey), 'signed by the ECC Origin CA')
  assert.ok(cert.checkIssued(ca))
  assert.is(cert.subjectAltName, `DNS:${ZONE}, DNS:*.${ZONE}`)
  const key = createPublicKey(readFileSync(request.keyPath, 'utf8'))
  assert.ok(cert.publicKey.equals(key), 'certifies the CSR key')
  const years = (Date.parse(cert.validTo) - Date.now()) / (365.25 * 86_400_000)
  assert.ok(years > 14.9 && years < 15.1, `15 years, got ${years}`)
  assert.match(issued.expires_on ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$/)
  writeFileSync(join(work, 'ca.pem'), api.originCaPem.ecc)
  writeFileSync(join(work, 'leaf.pem'), issued.certificate ?? '')
  assert.match(openssl(['verify', '-CAfile', join(work, 'ca.pem'), join(work, 'leaf.pem')]), ': OK')

  const listed = await cf.originCACertificates.list({ zone_id: zoneId })
  assert.equal(
    listed.result.map((c) => c.id),
    [issued.id],
  )
  assert.is((await cf.originCACertificates.get(issued.id ?? '')).certificate, issued.certificate)
  const revoked = await cf.originCACertificates.delete(issued.id ?? '')
  assert.is(revoked.id, issued.id)
  assert.ok(revoked.revoked_at)
  assert.is((await cf.originCACertificates.list({ zone_id: zoneId })).result.length, 0)
})

test('Origin CA: RSA requests, bad CSRs, foreign hostnames, and a soon-expiring certificate', async () => {
  const rsa = await cf.originCACertificates.create({
    csr: csr('rsa').csr,
    hostnames: [`api.${ZONE}`],
    request_type: 'origin-rsa',
  })
  assert.ok(
    new X509Certificate(rsa.certificate ?? '').verify(new X509Certificate(api.originCaPem.rsa).publicKey),
  )
  assert.is(rsa.requested_validity, 5475)

  const create = (body: Record<string, unknown>) =>
    rejects(
      cf.originCACertificates.create({ hostnames: [ZONE], request_type: 'origin-ecc', ...body } as never),
      Cloudflare.BadRequestError,
    )
  assert.is(code(await create({ csr: 'not a csr' })), 1014)
  const der = Buffer.from(csr('ec').csr.replace(/-----[^-]+-----|\s/g, ''), 'base64')
  der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 1
  const pem = (b64: string) =>
    `-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n`
  const tampered = pem(der.toString('base64'))
  assert.match((await create({ csr: tampered })).message, 'signature does not verify')
  assert.is(code(await create({ csr: csr('ec').csr, hostnames: ['example.org'] })), 1010)
  assert.is(code(await create({ csr: csr('ec').csr, requested_validity: 10 })), 1013)
  assert.is(code(await rejects(cf.originCACertificates.list({} as never), Cloudflare.BadRequestError)), 1012)

  api.expireNextOriginCertificateIn(3600)
  const short = await cf.originCACertificates.create({
    csr: csr('ec').csr,
    hostnames: [ZONE],
    request_type: 'origin-ecc',
  })
  const validTo = Date.parse(new X509Certificate(short.certificate ?? '').validTo)
  const left = validTo - Date.now()
  assert.ok(left > 3_500_000 && left <= 3_600_000, `expires in an hour, got ${left}ms`)
  assert.is(Date.parse(`${short.expires_on?.slice(0, 19).replace(' ', 'T')}Z`), validTo)
})

test('authenticated origin pulls: the zone switch and a client certificate from the pull CA', async () => {
  assert.equal(await cf.originTLSClientAuth.settings.get({ zone_id: zoneId }), { enabled: false })
  assert.equal(await cf.originTLSClientAuth.settings.update({ zone_id: zoneId, enabled: true }), {
    enabled: true,
  })
  assert.equal(await cf.originTLSClientAuth.settings.get({ zone_id: zoneId }), { enabled: true })
  const bad = cf.originTLSClientAuth.settings.update({ zone_id: zoneId, enabled: 'yes' } as never)
  assert.instance(await rejects(bad, Cloudflare.BadRequestError), Cloudflare.BadRequestError)

  const client = await api.issueOriginPullClientCertificate()
  const cert = new X509Certificate(client.certPem)
  assert.ok(cert.verify(new X509Certificate(api.originPullCaPem).publicKey))
  assert.equal(cert.keyUsage, ['1.3.6.1.5.5.7.3.2'])
  assert.ok(cert.checkPrivateKey(createPrivateKey(client.keyPem)))
})

test('ips: the published ranges with an etag that changes with them; no auth needed', async () => {
  const ips = await cf.ips.list()
  assert.ok(ips.ipv4_cidrs?.includes('173.245.48.0/20'))
  assert.ok(ips.ipv6_cidrs?.includes('2606:4700::/32'))
  assert.match(ips.etag ?? '', /^[0-9a-f]{32}$/)
  api.setIps(['198.51.100.0/24'], ['2001:db8::/32'])
  const changed = (await (await fetch(`${api.apiBase}/ips`)).json()) as { result: typeof ips }
  assert.equal(changed.result.ipv4_cidrs, ['198.51.100.0/24'])
  assert.is.not(changed.result.etag, ips.etag)
  assert.is(await (await fetch(`${api.url}/ips-v6`)).text(), '2001:db8::/32')
})

test('fault injection: 429 and 5xx surface as SDK error classes; a retrying client succeeds', async () => {
  api.faults.add({ status: 429, path: '/dns_records', retryAfterS: 7 })
  const limited = await rejects(cf.dns.records.list({ zone_id: zoneId }), Cloudflare.RateLimitError)
  assert.is(limited.headers.get('retry-after'), '7')
  assert.is((await cf.dns.records.list({ zone_id: zoneId })).result.length, 0, 'the fault was consumed')
  api.faults.add({ status: 500, method: 'GET' })
  assert.is((await rejects(cf.zones.list(), Cloudflare.InternalServerError)).status, 500)
  api.faults.add({ status: 503 })
  const retrying = new Cloudflare({ apiToken: TOKEN, baseURL: api.apiBase, maxRetries: 1 })
  assert.is((await retrying.zones.list()).result.length, 2)
  assert.equal(
    api.requests.slice(-2).map((r) => r.status),
    [503, 200],
  )
})

test('malformed bodies, wrong content types and unknown routes get error envelopes', async () => {
  const post = (body: string, type = 'application/json') =>
    fetch(`${api.apiBase}/zones/${zoneId}/dns_records`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': type },
      body,
    })
  const malformed = await post('{"type": "A",')
  assert.is(malformed.status, 400)
  assert.equal(await malformed.json(), {
    success: false,
    errors: [{ code: 6007, message: 'Malformed JSON in request body' }],
    messages: [],
    result: null,
  })
  const text = (await (await post('type=A', 'application/x-www-form-urlencoded')).json()) as ErrorBody
  assert.is(text.errors[0]?.error_chain?.[0]?.code, 6105)
  const nowhere = await fetch(`${api.apiBase}/zones/${zoneId}/nothing`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  })
  assert.is(nowhere.status, 404)
  assert.is(((await nowhere.json()) as ErrorBody).errors[0]?.code, 7000)
  assert.equal(api.requests[0]?.body, '{"type": "A",')
})

test.run()

import { execFile } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { liveColourProbe, TLS_PROFILES } from '../../lib/commands/nginx.ts'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { dns } from '../../runbooks/dns.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { suite } from '../harness.ts'
import { startCloudflareApi } from '../sandbox/cloud/cloudflare-api.ts'
import { createPki, issueClientCertificate, type Pki, removePki } from '../sandbox/cloud/cloudflare-pki.ts'
import { buildFixtureImages } from '../sandbox/fixtures.ts'
import {
  createTestBed,
  destroyTestBed,
  FIXTURE_DOMAINS,
  onDroplet,
  runCaptured,
  type TestBed,
  writeManagedEnv,
} from '../support/test-bed.ts'

// The edge half of nginx on a sandbox droplet: TLS on 443 (placeholder certificate), Mozilla profiles
// checked with testssl, security headers on 200/404/502, authenticated origin pulls, LGPD access logs.
const test = suite('edge: nginx TLS, headers, origin pulls and logs on a sandbox droplet', { timeoutS: 300 })
let bed: TestBed
let web: SandboxDroplet
let pki: Pki
let dir: string
const certs = { ca: { cert: '', key: '' }, stranger: { cert: '', key: '' } }

const REQUIRED_HEADERS = [
  'strict-transport-security',
  'content-security-policy',
  'x-content-type-options',
  'referrer-policy',
  'permissions-policy',
  'x-frame-options',
  'x-served-by-colour',
]
const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']
const ACCESS_LOG = '/var/log/nginx/it-access.log'

/** env/it.yaml with an edge: section; this machine (the docker gateway) plays Cloudflare's edge. */
function writeEdgeEnv(edge: Record<string, unknown>): void {
  writeManagedEnv(bed, 'it', {
    health: { path: '/health', timeout_s: 20 },
    secrets: ['POSTGRES_PASSWORD', 'REDIS_PASSWORD', 'CLOUDFLARE_API_TOKEN'],
    setup: {
      deploy_keys: [{ file: `${bed.keyPath}.pub` }],
      fail2ban_ignore: [`${bed.gateway}/32`],
      firewall: { http_from: 'anywhere', cloudflare_ips: [`${bed.gateway}/32`] },
    },
    edge: {
      zone: 'conciliaextrato.localhost',
      origin_pull_ca: pki.originPull.certPath,
      hsts_max_age_s: 63072000,
      log: { ip: 'truncated', retention_days: 7 },
      ...edge,
    },
  })
}

interface Reply {
  code: number
  status: number
  headers: Record<string, string>
  body: string
}

function run(
  cmd: string,
  args: string[],
  env = process.env,
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((done) => {
    execFile(cmd, args, { env, maxBuffer: 16 * 1024 * 1024, timeout: 600_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      done({ code, out: stdout.toString(), err: stderr.toString() })
    })
  })
}

/** An HTTPS request from this machine to the droplet's 443 (published on 127.0.0.1), with SNI. */
async function https(
  domain: string,
  path: string,
  opts: { cert?: { cert: string; key: string }; headers?: string[] } = {},
): Promise<Reply> {
  const port = web.ports.https
  const args = ['-sk', '-m', '10', '--resolve', `${domain}:${port}:127.0.0.1`, '-D', '-']
  if (opts.cert) args.push('--cert', opts.cert.cert, '--key', opts.cert.key)
  for (const h of opts.headers ?? []) args.push('-H', h)
  args.push(`https://${domain}:${port}${path}`)
  return parseCurl(await run('curl', args))
}

/** A plain HTTP request to the droplet's port 80 (published on 127.0.0.1), with a Host header. */
async function http(domain: string, path: string): Promise<Reply> {
  return parseCurl(
    await run('curl', [
      '-s',
      '-m',
      '10',
      '-D',
      '-',
      '-H',
      `Host: ${domain}`,
      `http://127.0.0.1:${web.ports.http}${path}`,
    ]),
  )
}

function parseCurl(r: { code: number; out: string }): Reply {
  const [head = '', ...rest] = r.out.split(/\r\n\r\n/)
  const lines = head.split('\r\n')
  const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0)
  const headers: Record<string, string> = {}
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':')
    if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
  }
  return { code: r.code, status, headers, body: rest.join('\r\n\r\n') }
}

function assertHeaders(reply: Reply, what: string, csp: RegExp): void {
  for (const h of REQUIRED_HEADERS)
    assert.ok(reply.headers[h], `${what}: no ${h} in ${JSON.stringify(reply.headers)}`)
  assert.is(reply.headers['x-content-type-options'], 'nosniff', what)
  assert.is(reply.headers['x-frame-options'], 'DENY', what)
  assert.is(reply.headers['strict-transport-security'], 'max-age=63072000', what)
  assert.match(reply.headers['content-security-policy'] ?? '', csp, what)
}

/** testssl.sh, protocols and ciphers per protocol only, never leaving this machine (no DNS, no CRL/OCSP). */
async function testssl(domain: string): Promise<{ offered: string[]; ciphers: string[] }> {
  const json = join(dir, `testssl-${Date.now()}.json`)
  const args = [
    ...['--quiet', '--color', '0', '--warnings', 'off', '--nodns', 'none', '--ip', '127.0.0.1'],
    ...['--connect-timeout', '10', '--openssl-timeout', '10', '-p', '-E', '--jsonfile', json],
    `${domain}:${web.ports.https}`,
  ]
  // NXCONNECT: testssl probes its openssl with `-connect invalid.`, a DNS lookup; a closed local port instead.
  const r = await run('testssl', args, { ...process.env, NXCONNECT: '127.0.0.1:0' })
  if (!existsSync(json)) throw new Error(`testssl wrote no ${json} (exit ${r.code}):\n${r.out}\n${r.err}`)
  const findings = JSON.parse(readFileSync(json, 'utf8')) as { id: string; finding: string }[]
  const protocols = ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1', 'TLS1_2', 'TLS1_3']
  const offered = findings
    .filter((f) => protocols.includes(f.id) && f.finding.startsWith('offered'))
    .map((f) => f.id)
  for (const p of protocols)
    assert.ok(
      findings.some((f) => f.id === p),
      `testssl said nothing about ${p}: ${r.out}`,
    )
  const ciphers = findings
    .filter((f) => f.id.startsWith('cipher-'))
    .map(
      (f) =>
        `${f.id.replace(/^cipher-/, '').replace(/_x[0-9a-f]+$/, '')} ${f.finding.trim().split(/\s+/)[3]}`,
    )
  return { offered, ciphers }
}

async function accessLog(): Promise<string[]> {
  return (await onDroplet(web, `cat ${ACCESS_LOG}`)).trim().split('\n')
}

/**
 * The access-log lines a test's own requests added (those for `path`): the watchdog's health
 * probes through nginx land in the same log at any moment, so never "the last N lines".
 */
async function linesSince(before: number, path: string): Promise<string[]> {
  return (await accessLog()).slice(before).filter((l) => l.includes(` ${path} `))
}

async function deployOk(release: string): Promise<string> {
  const { code, out } = await runCaptured(deploy, ['--env', 'it', '--release', release])
  assert.is(code, 0, out)
  return out
}

test.before(async () => {
  await buildFixtureImages()
  bed = await createTestBed('edge', ['web-1'], { image: 'provisioned' })
  web = bed.droplets[0] as SandboxDroplet
  dir = join(bed.envDir, '..')
  pki = await createPki()
  // A client certificate from the origin-pull CA (Cloudflare's edge, here) and one from another CA.
  for (const [name, ca] of [
    ['ca', pki.originPull],
    ['stranger', pki.originEcc],
  ] as const) {
    const { certPem, keyPem } = await issueClientCertificate(ca)
    const files = { cert: join(dir, `${name}-client.crt`), key: join(dir, `${name}-client.key`) }
    writeFileSync(files.cert, certPem)
    writeFileSync(files.key, keyPem, { mode: 0o600 })
    certs[name] = files
  }
  process.env.CLOUDFLARE_API_TOKEN ??= 'not-used-by-deploy'
  writeEdgeEnv({ tls_profile: 'intermediate', origin_pulls: 'optional', http: 'redirect' })
  const setup = await runCaptured(setupServer, ['--env', 'it'])
  if (setup.code !== 0) throw new Error(`setup-server failed:\n${setup.out}`)
})

test.after(async () => {
  if (pki) removePki(pki)
  await destroyTestBed(bed)
})

test('setup-server: nginx keeps its logs edge.log.retention_days days; Debian nginx has the realip module', async () => {
  const rotate = await onDroplet(
    web,
    'cat /etc/logrotate.d/nginx; logrotate -d /etc/logrotate.d/nginx 2>&1 | tail -3',
  )
  assert.match(rotate, /\trotate 7\n\tmaxage 7\n/)
  assert.not.match(rotate, /error:/)
  assert.match(await onDroplet(web, 'nginx -V 2>&1'), '--with-http_realip_module')
})

test('deploy v1 with an edge: placeholder certificate made on the host, CA uploaded, nginx -t; port 80 redirects visitors while the gates pass', async () => {
  const out = await deployOk('v1')
  assert.match(out, 'no origin certificate yet: a self-signed placeholder')
  const modes = await onDroplet(
    web,
    'cd /etc/nginx/conciliaextrato/tls && stat -c "%n %a %U:%G" . it-origin.crt it-origin.key it-origin-pull-ca.pem',
  )
  assert.is(
    modes.trim(),
    '. 700 deploy:deploy\nit-origin.crt 644 deploy:deploy\nit-origin.key 600 deploy:deploy\nit-origin-pull-ca.pem 644 deploy:deploy',
  )
  assert.is(
    await onDroplet(web, 'cat /etc/nginx/conciliaextrato/tls/it-origin-pull-ca.pem'),
    readFileSync(pki.originPull.certPath, 'utf8'),
  )
  const cert = await onDroplet(
    web,
    'openssl x509 -noout -subject -ext subjectAltName -in /etc/nginx/conciliaextrato/tls/it-origin.crt',
  )
  assert.match(cert, 'placeholder until make dns ENV=it')
  assert.match(
    cert,
    'DNS:conciliaextrato.localhost, DNS:app.conciliaextrato.localhost, DNS:api.conciliaextrato.localhost',
  )
  assert.match(await onDroplet(web, 'nginx -t 2>&1'), 'test is successful')
  // A visitor on port 80 goes to HTTPS (path and query kept); the host itself is still served.
  const visitor = await http(FIXTURE_DOMAINS.saas, '/version?x=1')
  assert.is(visitor.status, 301)
  assert.is(visitor.headers.location, 'https://app.conciliaextrato.localhost/version?x=1')
  assert.ok(visitor.headers['x-served-by-colour'])
  const local = await onDroplet(web, `curl -s -H 'Host: ${FIXTURE_DOMAINS.api}' http://127.0.0.1/version`)
  assert.is(local.trim(), 'v1')
  // A second deploy changes none of it: the certificate is kept.
  const before = await onDroplet(web, 'sha256sum /etc/nginx/conciliaextrato/tls/it-origin.key')
  await deployOk('v1')
  assert.is(await onDroplet(web, 'sha256sum /etc/nginx/conciliaextrato/tls/it-origin.key'), before)
})

test('every security header on a 200, a 404 and nginx’s own 502; unknown names are refused at the handshake', async () => {
  for (const domain of Object.values(FIXTURE_DOMAINS)) {
    const ok = await https(domain, '/version')
    assert.is(ok.status, 200, domain)
    assert.is(ok.body.trim(), 'v1')
    assertHeaders(
      ok,
      `200 from ${domain}`,
      domain.startsWith('api.') ? /^default-src 'none'/ : /^default-src 'self'/,
    )
  }
  const missing = await https(FIXTURE_DOMAINS.site, '/no-such-page')
  assert.is(missing.status, 404)
  assertHeaders(missing, '404', /^default-src 'self'/)
  const live = (await onDroplet(web, liveColourProbe('it'))).trim()
  const api = `docker ps -aq --filter label=com.docker.compose.project=ce-it-${live} --filter label=com.docker.compose.service=api`
  await onDroplet(web, `docker stop $(${api}) >/dev/null`)
  try {
    const down = await https(FIXTURE_DOMAINS.api, '/version')
    assert.is(down.status, 502)
    assert.match(down.body, '<center>nginx</center>') // nginx's own error page
    assertHeaders(down, '502', /^default-src 'none'/)
  } finally {
    await onDroplet(
      web,
      `docker start $(${api}) >/dev/null && for i in $(seq 1 50); do curl -fs -o /dev/null -H 'Host: ${FIXTURE_DOMAINS.api}' http://127.0.0.1/health && exit 0; sleep 0.2; done; exit 1`,
    )
  }
  const unknown = await https('other.localhost', '/')
  assert.is(unknown.code, 35, `curl exit ${unknown.code}`) // handshake failure
})

test('origin pulls optional: served with or without a client certificate; the log says whether it verified', async () => {
  const before = (await accessLog()).length
  const none = await https(FIXTURE_DOMAINS.site, '/version?case=none')
  const good = await https(FIXTURE_DOMAINS.site, '/version?case=good', { cert: certs.ca })
  const bad = await https(FIXTURE_DOMAINS.site, '/version?case=bad', { cert: certs.stranger })
  assert.equal([none.status, good.status, bad.status], [200, 200, 200])
  const lines = await linesSince(before, '/version')
  assert.is(lines.length, 3, lines.join('\n'))
  assert.match(lines[0] ?? '', 'origin_pull=NONE')
  assert.match(lines[1] ?? '', 'origin_pull=SUCCESS')
  assert.match(lines[2] ?? '', 'origin_pull=FAILED:')
})

test('access log (LGPD): no query string, truncated addresses, CF-Connecting-IP trusted only from Cloudflare', async () => {
  const before = (await accessLog()).length
  const r = await https(FIXTURE_DOMAINS.api, '/version?token=s3cr3t-query', {
    headers: ['CF-Connecting-IP: 203.0.113.77'],
  })
  assert.is(r.status, 200)
  // From the host itself (not a Cloudflare range), the header is ignored.
  await onDroplet(
    web,
    `curl -sk -o /dev/null --resolve ${FIXTURE_DOMAINS.api}:443:127.0.0.1 -H 'CF-Connecting-IP: 198.51.100.9' 'https://${FIXTURE_DOMAINS.api}/version?token=other-s3cr3t'`,
  )
  const log = await accessLog()
  const ours = await linesSince(before, '/version')
  assert.is(ours.length, 2, ours.join('\n'))
  const [fromEdge, fromHost] = ours
  assert.match(fromEdge ?? '', /^203\.0\.113\.0 \[/)
  assert.match(fromEdge ?? '', '"GET /version HTTP/2.0" 200 ')
  assert.match(fromHost ?? '', /^127\.0\.0\.0 \[/)
  const all = log.join('\n')
  assert.not.match(all, 's3cr3t')
  assert.not.match(all, '?')
  assert.not.match(all, /203\.0\.113\.77|198\.51\.100\.9/)
  assert.not.match(all, new RegExp(`(^|[^\\d.])${bed.gateway.replace(/\./g, '\\.')}([^\\d.]|$)`, 'm'))
})

test(
  'testssl: intermediate offers TLS 1.2 and 1.3 only, with ECDHE AEAD ciphers only',
  async () => {
    const { offered, ciphers } = await testssl(FIXTURE_DOMAINS.saas)
    assert.equal(offered.sort(), ['TLS1_2', 'TLS1_3'])
    assert.ok(ciphers.length > 0, 'testssl listed no cipher')
    const allowed = [
      ...TLS_PROFILES.intermediate.ciphers.map((c) => `tls1_2 ${c}`),
      ...TLS13_SUITES.map((c) => `tls1_3 ${c}`),
    ]
    for (const c of ciphers) assert.ok(allowed.includes(c), `weak or unexpected cipher offered: ${c}`)
  },
  { timeoutS: 600 },
)

test(
  're-deploy with modern, origin pulls on, port 80 serve: no verified certificate, no service (but the host itself)',
  async () => {
    writeEdgeEnv({ tls_profile: 'modern', origin_pulls: 'on', http: 'serve' })
    await deployOk('v2')
    assert.match(await onDroplet(web, 'nginx -t 2>&1'), 'test is successful')
    assert.match(
      await onDroplet(web, 'head -1 /etc/nginx/conciliaextrato/00-default-tls.conf'),
      '# Managed by deploy for env it: TLS profile modern',
    )
    const before = (await accessLog()).length
    // Refused (nginx's 403, with the headers) without a certificate the origin-pull CA verifies.
    const none = await https(FIXTURE_DOMAINS.saas, '/version')
    assert.is(none.status, 403)
    assert.match(none.body, '403 Forbidden')
    assertHeaders(none, '403', /^default-src 'self'/)
    const bad = await https(FIXTURE_DOMAINS.saas, '/version', { cert: certs.stranger })
    assert.is(bad.status, 403)
    // Claiming to be the host itself through CF-Connecting-IP changes nothing: the peer counts.
    const spoof = await https(FIXTURE_DOMAINS.saas, '/version', { headers: ['CF-Connecting-IP: 127.0.0.1'] })
    assert.is(spoof.status, 403)
    const good = await https(FIXTURE_DOMAINS.saas, '/version', { cert: certs.ca })
    assert.is(good.status, 200)
    assert.is(good.body.trim(), 'v2')
    // The host itself (deploy's gates, make health) is served over HTTPS without a certificate.
    const local = await onDroplet(
      web,
      `curl -sk -w ' %{http_code}' --resolve ${FIXTURE_DOMAINS.api}:443:127.0.0.1 https://${FIXTURE_DOMAINS.api}/version`,
    )
    assert.is(local.replace(/\s+/g, ' ').trim(), 'v2 200')
    const ours = await linesSince(before, '/version')
    assert.is(ours.length, 5, ours.join('\n'))
    const verdicts = ours.map((l) => /origin_pull=(\S+)/.exec(l)?.[1])
    assert.is(verdicts[0], 'NONE')
    assert.match(verdicts[1] ?? '', /^FAILED:/)
    assert.equal(verdicts.slice(2), ['NONE', 'SUCCESS', 'NONE'])
    // Port 80 serves visitors too (edge.http: serve), with the headers (HSTS only over HTTPS).
    const plain = await http(FIXTURE_DOMAINS.site, '/version')
    assert.is(plain.status, 200)
    assert.is(plain.body.trim(), 'v2')
    assert.is(plain.headers['x-frame-options'], 'DENY')
    assert.is(plain.headers['strict-transport-security'], undefined)
  },
  { timeoutS: 300 },
)

test(
  'testssl: modern offers TLS 1.3 only',
  async () => {
    const { offered, ciphers } = await testssl(FIXTURE_DOMAINS.api)
    assert.equal(offered, ['TLS1_3'])
    assert.ok(ciphers.length > 0, 'testssl listed no cipher')
    for (const c of ciphers) assert.ok(TLS13_SUITES.map((s) => `tls1_3 ${s}`).includes(c), c)
  },
  { timeoutS: 600 },
)

test(
  "origin pulls with the zone's own certificate: refused until make dns installs it, then only this zone's client passes",
  async () => {
    const token = 'cfTEST_token_0123456789abcdefghijklmnopqrstuvwxyz'
    const cf = await startCloudflareApi({
      tokens: [token],
      zones: ['conciliaextrato.localhost'],
      allowPrivateProxiedTargets: true,
    })
    process.env.CLOUDFLARE_API_TOKEN = token
    try {
      writeEdgeEnv({
        tls_profile: 'modern',
        origin_pulls: 'on',
        origin_pull_ca: 'zone',
        http: 'serve',
        api_base: cf.apiBase,
      })
      const out = await deployOk('v2')
      assert.match(out, "the zone's origin-pull certificate is not here yet: Cloudflare's requests get 403")
      assert.match(
        await onDroplet(
          web,
          'openssl x509 -noout -subject -in /etc/nginx/conciliaextrato/tls/it-origin-pull-ca.pem',
        ),
        'nobody holds this key',
      )
      // Before make dns: even Cloudflare's shared certificate is refused.
      assert.is((await https(FIXTURE_DOMAINS.saas, '/version', { cert: certs.ca })).status, 403)

      const plan = await runCaptured(dns, ['--env', 'it'])
      assert.is(plan.code, 0, plan.out)
      assert.match(
        plan.out,
        /origin-pull-cert\s+conciliaextrato\.localhost\s+\(none\)\s+new, this zone's own/,
      )
      assert.match(plan.out, /origin-pull-trust\s+web-1\s+another certificate/)
      assert.is(cf.zoneClientCertificate('conciliaextrato.localhost'), undefined)
      const applied = await runCaptured(dns, ['--env', 'it', '--apply'])
      assert.is(applied.code, 0, applied.out)
      assert.match(applied.out, "web-1: trusts the zone's origin-pull certificate; nginx reloaded")
      assert.match(applied.out, 'the zone matches the env file')
      assert.not.match(applied.out, 'PRIVATE KEY')
      const zone = cf.zoneClientCertificate('conciliaextrato.localhost')
      assert.ok(zone, 'nothing uploaded to Cloudflare')
      const installed = await onDroplet(web, 'cat /etc/nginx/conciliaextrato/tls/it-origin-pull-ca.pem')
      assert.is(installed.trim(), zone?.cert.trim())
      assert.not.match(installed, 'PRIVATE KEY')

      const files = { cert: join(dir, 'zone-client.crt'), key: join(dir, 'zone-client.key') }
      writeFileSync(files.cert, zone?.cert ?? '')
      writeFileSync(files.key, zone?.key ?? '', { mode: 0o600 })
      const ours = await https(FIXTURE_DOMAINS.saas, '/version', { cert: files })
      assert.is(ours.status, 200)
      assert.is(ours.body.trim(), 'v2')
      // Cloudflare's shared certificate: a request through ANOTHER Cloudflare account. Refused.
      assert.is((await https(FIXTURE_DOMAINS.saas, '/version', { cert: certs.ca })).status, 403)
      assert.is((await https(FIXTURE_DOMAINS.saas, '/version')).status, 403)
      // A new droplet (or a lost file) gets the zone's certificate back from Cloudflare: no new one is made.
      await onDroplet(web, 'rm /etc/nginx/conciliaextrato/tls/it-origin-pull-ca.pem')
      const again = await runCaptured(dns, ['--env', 'it', '--apply'])
      assert.is(again.code, 0, again.out)
      assert.not.match(again.out, 'origin-pull certificate uploaded')
      assert.is(
        (await onDroplet(web, 'cat /etc/nginx/conciliaextrato/tls/it-origin-pull-ca.pem')).trim(),
        zone?.cert.trim(),
      )
      assert.is((await https(FIXTURE_DOMAINS.saas, '/version', { cert: files })).status, 200)
      const quiet = await runCaptured(dns, ['--env', 'it'])
      assert.match(quiet.out, 'no changes')
    } finally {
      await cf.close()
    }
  },
  { timeoutS: 300 },
)

test.run()

import * as assert from 'uvu/assert'
import { NGINX_LOGROTATE_PATH, nginxLogrotate } from '../../lib/commands/host-config.ts'
import {
  accessLogPath,
  DEFAULT_TLS_PATH,
  defaultTlsPlan,
  parseDefaultTls,
  renderDefaultTls,
  renderSites,
  TLS_PROFILES,
} from '../../lib/commands/nginx.ts'
import {
  certificatePresent,
  placeholderCertificate,
  tlsDirCheck,
  tlsDirEnsure,
} from '../../lib/commands/tls.ts'
import { DEFAULT_CSP, type EdgeConfig } from '../../lib/env/edge.ts'
import type { Env } from '../../lib/env/load.ts'
import { tlsPaths } from '../../lib/env/tls-paths.ts'
import { suite } from '../harness.ts'

const test = suite('edge: nginx TLS, headers, real IP, logs; TLS files on the host')

const CLOUDFLARE = ['173.245.48.0/20', '103.21.244.0/22', '2400:cb00::/32']

function edgeEnv(edge: Partial<EdgeConfig> = {}, name = 'qa-1', ranges = CLOUDFLARE): Env {
  return {
    name,
    domains: {
      site: 'qa.conciliaextrato.com',
      saas: 'app.qa.conciliaextrato.com',
      api: 'api.qa.conciliaextrato.com',
    },
    setup: { firewall: { httpFrom: 'cloudflare', cloudflareIps: ranges, sshFrom: [] } },
    edge: {
      zone: 'conciliaextrato.com',
      tokenSecret: 'CLOUDFLARE_API_TOKEN',
      apiBase: 'https://api.cloudflare.com/client/v4',
      tlsProfile: 'intermediate',
      originPulls: 'off',
      originPullCa: '/repo/nginx/cloudflare-origin-pull-ca.pem',
      http: 'redirect',
      hstsMaxAgeS: 31536000,
      csp: { ...DEFAULT_CSP, api: "default-src 'none'; frame-ancestors 'none'" },
      log: { ip: 'truncated', retentionDays: 14 },
      advancedCertificate: false,
      originCertRenewDays: 30,
      ...edge,
    },
  } as unknown as Env
}

/** The server blocks of a rendered file, each with its listen line and body. */
function servers(conf: string): { listen: string; name: string; body: string }[] {
  return conf
    .split(/^server \{$/m)
    .slice(1)
    .map((body) => ({
      listen: /^ {4}listen ([^;]+);/m.exec(body)?.[1] ?? '',
      name: /^ {4}server_name ([^;]+);/m.exec(body)?.[1] ?? '',
      body,
    }))
}

const locations = (body: string) => body.match(/^ {4}location [^{]+\{[\s\S]*?^ {4}\}/gm) ?? []

test('without an edge: section the sites stay plain HTTP on port 80 (with the maintenance check)', () => {
  const env = edgeEnv()
  delete (env as { edge?: EdgeConfig }).edge
  const conf = renderSites(env)
  assert.is(servers(conf).length, 3)
  assert.ok(servers(conf).every((s) => s.listen === '80'))
  assert.not.match(conf, /ssl|443|Strict-Transport|log_format|real_ip/)
  assert.match(
    conf,
    'server {\n    listen 80;\n    server_name qa.conciliaextrato.com;\n    # The live colour: green while /etc/nginx/conciliaextrato/qa-1-live-green exists, else blue (read per request).\n    set $ce_qa_1_colour blue;',
  )
  assert.match(
    conf,
    "location @maintenance {\n        default_type text/html;\n        return 503 '<!doctype html>",
  )
  assert.match(conf, '    }\n    location / {\n        proxy_pass http://ce_qa_1_site_$ce_qa_1_colour;')
  assert.match(conf, '# Maintenance (site)')
})

test('with an edge: every domain gets 443 (ssl http2, valid on nginx 1.22 and 1.24) and port 80; the colour header on both', () => {
  const conf = renderSites(edgeEnv())
  const all = servers(conf)
  assert.is(all.length, 6)
  for (const domain of [
    'qa.conciliaextrato.com',
    'app.qa.conciliaextrato.com',
    'api.qa.conciliaextrato.com',
  ]) {
    const mine = all.filter((s) => s.name === domain)
    assert.equal(mine.map((s) => s.listen).sort(), ['443 ssl http2', '80'])
    for (const s of mine) {
      assert.match(s.body, '    add_header X-Served-By-Colour $ce_qa_1_colour always;')
      // The colour is set before any return (redirect, origin-pull 403, maintenance): those answers say it too.
      const set = s.body.indexOf('    set $ce_qa_1_colour blue;')
      assert.ok(set >= 0 && set < s.body.indexOf('return '), s.body)
    }
  }
  assert.not.match(conf, 'http2 on;')
  const tls = tlsPaths('qa-1')
  assert.match(conf, `    ssl_certificate ${tls.cert};\n    ssl_certificate_key ${tls.key};`)
})

test('TLS profiles: intermediate is TLS 1.2 + 1.3 with ECDHE AEAD ciphers only; modern is TLS 1.3 only', () => {
  const intermediate = renderSites(edgeEnv({ tlsProfile: 'intermediate' }))
  for (const s of servers(intermediate).filter((x) => x.listen.startsWith('443'))) {
    assert.match(s.body, '    ssl_protocols TLSv1.2 TLSv1.3;\n')
    const ciphers = /ssl_ciphers ([^;]+);/.exec(s.body)?.[1]?.split(':') ?? []
    assert.equal(ciphers, TLS_PROFILES.intermediate.ciphers)
    for (const c of ciphers)
      assert.match(c, /^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/)
    assert.match(s.body, '    ssl_prefer_server_ciphers off;\n')
    assert.match(s.body, '    ssl_session_tickets off;\n')
  }
  assert.not.match(intermediate, /TLSv1(\.1)?[ ;]|SSLv|(?<!EC)DHE-|CBC|SHA1|RC4|3DES/)
  const modern = renderSites(edgeEnv({ tlsProfile: 'modern' }))
  const tls443 = servers(modern).filter((x) => x.listen.startsWith('443'))
  assert.is(tls443.length, 3)
  for (const s of tls443) {
    assert.match(s.body, '    ssl_protocols TLSv1.3;\n')
    assert.not.match(s.body, 'ssl_ciphers')
  }
})

test("port 443's default server carries the profile for the whole host, refuses unknown names, says whose it is", () => {
  const conf = renderDefaultTls('production', 'modern')
  assert.match(conf, /^# Managed by deploy for env production: TLS profile modern\n/)
  const [server] = servers(conf)
  assert.is(server?.listen, '443 ssl http2 default_server')
  assert.match(server?.body ?? '', '    ssl_reject_handshake on;\n')
  assert.match(server?.body ?? '', '    ssl_protocols TLSv1.3;\n')
  assert.not.match(server?.body ?? '', 'ssl_certificate')
  assert.equal(parseDefaultTls(conf), { env: 'production', profile: 'modern' })
  assert.is(DEFAULT_TLS_PATH, '/etc/nginx/conciliaextrato/00-default-tls.conf')
})

test("port 443's default server: written when absent or the env's own, kept when another env agrees, refused otherwise", () => {
  assert.equal(defaultTlsPlan('', 'staging', 'intermediate'), { action: 'write' })
  const staging = renderDefaultTls('staging', 'intermediate')
  assert.equal(defaultTlsPlan(staging, 'staging', 'modern'), { action: 'write' })
  assert.equal(defaultTlsPlan(staging, 'demo', 'intermediate'), { action: 'keep' })
  const conflict = defaultTlsPlan(staging, 'demo', 'modern')
  assert.is(conflict.action, 'conflict')
  assert.match(
    'problem' in conflict ? conflict.problem : '',
    'env staging on this host serves TLS profile intermediate and this env asks for modern',
  )
})

test('security headers: all with always, at server level only (no location drops them), CSP per service, HSTS on 443', () => {
  const env = edgeEnv({ hstsMaxAgeS: 63072000 })
  const all = servers(renderSites(env))
  const required = [
    'X-Content-Type-Options "nosniff"',
    'Referrer-Policy "strict-origin-when-cross-origin"',
    'Permissions-Policy "camera=(), microphone=(), geolocation=(), payment=(), usb=()"',
    'X-Frame-Options "DENY"',
  ]
  for (const s of all) {
    for (const h of required) assert.match(s.body, `    add_header ${h} always;\n`)
    for (const loc of locations(s.body)) assert.not.match(loc, 'add_header')
    for (const line of s.body.split('\n').filter((l) => l.trim().startsWith('add_header')))
      assert.match(line, / always;$/, line)
    const service = s.name.startsWith('app.') ? 'saas' : s.name.startsWith('api.') ? 'api' : 'site'
    assert.match(s.body, `    add_header Content-Security-Policy "${env.edge?.csp[service]}" always;\n`)
    const hsts = '    add_header Strict-Transport-Security "max-age=63072000" always;\n'
    if (s.listen.startsWith('443')) assert.match(s.body, hsts)
    else assert.not.match(s.body, 'Strict-Transport-Security "') // browsers ignore it over HTTP
    assert.match(s.body, '    proxy_hide_header Content-Security-Policy;\n')
  }
  assert.throws(
    () => renderSites(edgeEnv({ csp: { ...DEFAULT_CSP, site: 'default-src "self"' } })),
    /edge.csp.site cannot contain "/,
  )
  assert.throws(() => renderSites(edgeEnv({ csp: { ...DEFAULT_CSP, api: "script-src 'nonce-$x'" } })), /\$/)
})

test("real client address: CF-Connecting-IP only from Cloudflare's ranges, on 80 and 443", () => {
  const all = servers(renderSites(edgeEnv()))
  for (const s of all) {
    const from = [...s.body.matchAll(/^ {4}set_real_ip_from ([^;]+);$/gm)].map((m) => m[1])
    assert.equal(from, CLOUDFLARE)
    assert.match(s.body, '    real_ip_header CF-Connecting-IP;\n')
    assert.not.match(s.body, 'real_ip_recursive')
  }
  const none = renderSites(edgeEnv({}, 'qa-1', []))
  assert.not.match(none, /set_real_ip_from|real_ip_header/)
})

test('access logs (LGPD): no query string, no referer, truncated address by default, env-prefixed names', () => {
  const conf = renderSites(edgeEnv())
  const format = /^log_format (\S+) '([^']+)';$/m.exec(conf)
  assert.is(format?.[1], 'ce_qa_1_edge')
  const fields = format?.[2] ?? ''
  assert.match(fields, '"$request_method $uri $server_protocol"')
  const variables: string[] = fields.match(/\$\w+/g) ?? []
  for (const banned of [
    '$request',
    '$request_uri',
    '$args',
    '$query_string',
    '$http_referer',
    '$remote_addr',
  ])
    assert.not.ok(variables.includes(banned), banned)
  assert.not.ok(variables.some((v) => v.startsWith('$arg_')))
  assert.match(fields, /^\$ce_qa_1_client_address /)
  assert.match(fields, 'origin_pull=$ssl_client_verify')
  assert.match(conf, 'map $remote_addr $ce_qa_1_client_address {')
  assert.match(conf, '    "~^(\\d+\\.\\d+\\.\\d+)\\.\\d+$" "$1.0";\n')
  for (const s of servers(conf))
    assert.match(s.body, `    access_log ${accessLogPath('qa-1')} ce_qa_1_edge;\n`)
  assert.is(accessLogPath('qa-1'), '/var/log/nginx/qa-1-access.log')
  const full = renderSites(edgeEnv({ log: { ip: 'full', retentionDays: 7 } }))
  assert.match(/^log_format \S+ '([^']+)';$/m.exec(full)?.[1] ?? '', /^\$remote_addr /)
  assert.not.match(full, 'map $remote_addr')
  // Two envs on one host: every http-level name is the env's own.
  const other = renderSites(edgeEnv({}, 'production'))
  const names = (c: string) => [...c.matchAll(/^(?:log_format|map \S+|geo \S+) (\S+)/gm)].map((m) => m[1])
  assert.equal(names(other), [
    '$ce_production_client_address',
    'ce_production_edge',
    '$ce_production_from_host',
  ])
  assert.ok(names(conf).every((n) => !names(other).includes(n)))
})

test('authenticated origin pulls per mode: off asks nothing; optional asks and logs; on refuses with 403 but the host itself', () => {
  const ca = tlsPaths('qa-1').originPullCa
  const tlsBodies = (mode: EdgeConfig['originPulls']) =>
    servers(renderSites(edgeEnv({ originPulls: mode })))
      .filter((s) => s.listen.startsWith('443'))
      .map((s) => s.body)
  const verify = `    ssl_client_certificate ${ca};\n    ssl_verify_client optional_no_ca;\n`
  const refuse = '    if ($ce_qa_1_origin_pull_refused) {\n        return 403;\n    }\n'
  for (const body of tlsBodies('off')) assert.not.match(body, /ssl_verify_client|ssl_client_certificate/)
  for (const body of tlsBodies('optional')) {
    assert.match(body, verify)
    assert.not.match(body, 'return 403')
  }
  assert.not.match(renderSites(edgeEnv({ originPulls: 'optional' })), 'map "$ssl_client_verify')
  for (const body of tlsBodies('on')) {
    assert.match(body, verify + refuse)
    // The refusal sits at server level, before any location: nothing is proxied for a refused client.
    assert.ok(body.indexOf(refuse) < body.indexOf('    location /'))
  }
  // Refused unless the certificate verified, or the peer (not CF-Connecting-IP) is the host itself.
  assert.match(
    renderSites(edgeEnv({ originPulls: 'on' })),
    'map "$ssl_client_verify $ce_qa_1_from_host" $ce_qa_1_origin_pull_refused {\n    default 1;\n    "~^SUCCESS " 0;\n    "~ 1$" 0;\n}',
  )
  // Port 80 never asks for a certificate.
  const plain = servers(renderSites(edgeEnv({ originPulls: 'on' }))).filter((s) => s.listen === '80')
  for (const s of plain) assert.not.match(s.body, /ssl_|return 403/)
})

test('port 80: redirect sends visitors to HTTPS and keeps serving the host itself (deploy gates); serve serves', () => {
  const redirect = renderSites(edgeEnv({ http: 'redirect' }))
  assert.match(
    redirect,
    'geo $realip_remote_addr $ce_qa_1_from_host {\n    default 0;\n    127.0.0.0/8 1;\n    ::1/128 1;\n}',
  )
  for (const s of servers(redirect).filter((x) => x.listen === '80')) {
    assert.match(
      s.body,
      '    if ($ce_qa_1_from_host = 0) {\n        return 301 https://$host$request_uri;\n    }\n',
    )
    assert.match(s.body, '    location / {\n        proxy_pass http://ce_qa_1_')
  }
  const serve = renderSites(edgeEnv({ http: 'serve' }))
  assert.not.match(serve, 'return 301')
  for (const s of servers(serve)) assert.match(s.body, '    location / {\n        proxy_pass http://ce_qa_1_')
})

test('TLS files: the directory (deploy, 0700), a placeholder made on the host, never over half a pair', () => {
  const env = edgeEnv()
  const p = tlsPaths('qa-1')
  assert.is(
    tlsDirCheck('qa-1', 'deploy'),
    `[ "$(stat -c '%U:%G %a' ${p.dir} 2>/dev/null)" = 'deploy:deploy 700' ]`,
  )
  assert.is(
    tlsDirEnsure('qa-1', 'deploy'),
    `mkdir -p ${p.dir} && chown deploy:deploy ${p.dir} && chmod 0700 ${p.dir}`,
  )
  assert.is(certificatePresent('qa-1'), `test -s ${p.cert} && test -s ${p.key}`)
  const make = placeholderCertificate(env)
  assert.match(make, /^set -e; /)
  assert.match(make, `if [ -e ${p.cert} ] || [ -e ${p.key} ]; then echo `)
  assert.match(make, 'exit 3; fi; umask 077; ')
  assert.match(
    make,
    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj '/O=ConciliaExtrato placeholder until make dns ENV=qa-1/CN=qa.conciliaextrato.com' -addext subjectAltName=DNS:qa.conciliaextrato.com,DNS:app.qa.conciliaextrato.com,DNS:api.qa.conciliaextrato.com",
  )
  assert.match(make, 'chmod 0600 "$tmp/key"; chmod 0644 "$tmp/crt"; ')
  assert.match(make, `mv -f "$tmp/key" ${p.key}; mv -f "$tmp/crt" ${p.cert}; `)
  // The key is made where it is used: nothing of it goes to stdout.
  assert.not.match(make, /-keyout -|-keyout \/dev\/stdout|cat "\$tmp\/key"/)
})

test("nginx's logs: kept edge.log.retention_days days by logrotate (daily, even when empty)", () => {
  const conf = nginxLogrotate(7)
  assert.is(NGINX_LOGROTATE_PATH, '/etc/logrotate.d/nginx')
  assert.match(conf, '/var/log/nginx/*.log {\n\tdaily\n')
  assert.match(conf, '\trotate 7\n\tmaxage 7\n')
  assert.match(conf, '\tpostrotate\n\t\tinvoke-rc.d nginx rotate >/dev/null 2>&1\n\tendscript\n')
  assert.not.match(conf, 'notifempty')
})

test.run()

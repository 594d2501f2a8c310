import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { originPullTrustPresent, placeholderOriginPullTrust } from '../../lib/commands/tls.ts'
import {
  covers,
  desiredRecords,
  desiredSettings,
  settingMatches,
  uncoveredNames,
} from '../../lib/dns/desired.ts'
import { withRanges } from '../../lib/dns/ips.ts'
import { assessCert, makeCsr } from '../../lib/dns/origin-cert.ts'
import { pemBlocks, trustBundle, usesZoneCert, zoneCertReason } from '../../lib/dns/origin-pull.ts'
import { applyChanges, type Change } from '../../lib/dns/plan.ts'
import type { Env } from '../../lib/env/load.ts'
import { RunbookError } from '../../lib/report/errors.ts'
import { setSinks } from '../../lib/report/output.ts'
import { suite } from '../harness.ts'

const test = suite('dns: desired state, coverage, certificates, apply')
const ZONE = 'conciliaextrato.com'

const env = {
  domains: { site: ZONE, saas: `app.${ZONE}`, api: `api.${ZONE}` },
  hosts: [
    { name: 'a', address: '203.0.113.10', roles: ['web', 'data'] },
    { name: 'b', address: '2001:db8::10', roles: ['web'] },
    { name: 'db', address: '203.0.113.99', roles: ['data'] },
  ],
  edge: { hstsMaxAgeS: 31536000, originPulls: 'optional', ssl: 'strict', minTlsVersion: '1.3' },
} as unknown as Env

test('records: every domain at every web host, A or AAAA by address; data-only hosts are not published', () => {
  const records = desiredRecords(env)
  assert.is(records.length, 6)
  assert.equal(records.slice(0, 2), [
    { name: ZONE, type: 'A', content: '203.0.113.10' },
    { name: ZONE, type: 'AAAA', content: '2001:db8::10' },
  ])
  assert.not.ok(records.some((r) => r.content === '203.0.113.99'))
})

test('settings: strict TLS, TLS 1.3, HTTPS only, HSTS, origin pulls as the env says; compared by the fields set', () => {
  const s = desiredSettings(env)
  assert.equal(
    [s.ssl, s.min_tls_version, s.tls_1_3, s.always_use_https, s.automatic_https_rewrites, s.tls_client_auth],
    ['strict', '1.3', 'on', 'on', 'on', 'on'],
  )
  const hsts = (s.security_header as { strict_transport_security: Record<string, unknown> })
    .strict_transport_security
  assert.equal(
    [hsts.enabled, hsts.max_age, hsts.include_subdomains, hsts.nosniff],
    [true, 31536000, true, true],
  )
  assert.ok(settingMatches({ strict_transport_security: { ...hsts, extra: 1 } }, s.security_header))
  assert.not.ok(settingMatches({ strict_transport_security: { ...hsts, max_age: 1 } }, s.security_header))
  assert.is(
    desiredSettings({ ...env, edge: { ...env.edge, originPulls: 'off' } } as Env).tls_client_auth,
    'off',
  )
})

test('coverage: Universal SSL covers the apex and one level; deeper names need another certificate', () => {
  const qa = [`qa.${ZONE}`, `app.qa.${ZONE}`, `api.qa.${ZONE}`]
  assert.equal(
    uncoveredNames(qa, ZONE).map((p) => [p.name, p.wildcard]),
    [
      [`app.qa.${ZONE}`, `*.qa.${ZONE}`],
      [`api.qa.${ZONE}`, `*.qa.${ZONE}`],
    ],
  )
  assert.equal(uncoveredNames(qa, ZONE, [[ZONE, `*.qa.${ZONE}`]]), [])
  assert.equal(uncoveredNames([ZONE, `app.${ZONE}`], ZONE), [])
  assert.ok(covers(`*.qa.${ZONE}`, `app.qa.${ZONE}`))
  assert.not.ok(covers(`*.${ZONE}`, `app.qa.${ZONE}`))
  assert.not.ok(covers(`*.qa.${ZONE}`, `qa.${ZONE}`))
})

function selfSigned(days: number, subject: string, names: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'ce-cert-'))
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      join(dir, 'k'),
      '-out',
      join(dir, 'c'),
      '-days',
      String(days),
      '-subj',
      subject,
      '-addext',
      `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
    ],
    { stdio: 'ignore' },
  )
  return readFileSync(join(dir, 'c'), 'utf8')
}

test('origin certificate: renewed when missing, a placeholder, missing a name, or near expiry', () => {
  const names = Object.values(env.domains)
  const origin = '/O=CloudFlare, Inc./OU=CloudFlare Origin CA/CN=CloudFlare Origin Certificate'
  assert.is(assessCert('', names, 30).reason, 'no certificate installed')
  assert.match(
    assessCert(selfSigned(365, '/CN=placeholder', names), names, 30).reason ?? '',
    'not from the Cloudflare Origin CA',
  )
  assert.match(
    assessCert(selfSigned(365, origin, names.slice(0, 2)), names, 30).reason ?? '',
    `does not name api.${ZONE}`,
  )
  assert.match(
    assessCert(selfSigned(10, origin, names), names, 30).reason ?? '',
    /only (9|10) day\(s\) left \(renewing under 30\)/,
  )
  const good = assessCert(selfSigned(5475, origin, names), names, 30)
  assert.is(good.reason, null)
  assert.ok((good.installed?.daysLeft ?? 0) > 5400)
})

test('CSR: made with a fresh P-256 key that stays in memory, naming every host', async () => {
  const { keyPem, csr } = await makeCsr([ZONE, `app.${ZONE}`])
  assert.match(keyPem, 'BEGIN PRIVATE KEY')
  const text = execFileSync('openssl', ['req', '-noout', '-text', '-verify'], {
    input: csr,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  assert.match(text, `DNS:${ZONE}, DNS:app.${ZONE}`)
  assert.match(text, 'prime256v1')
})

test('cloudflare_ips rewritten in the env file with its comments kept', () => {
  const text =
    '# production\nsetup:\n  firewall:\n    http_from: cloudflare # only the edge\n    cloudflare_ips:\n      - 1.2.3.0/24\n'
  const out = withRanges(text, ['198.51.100.0/24', '2001:db8::/32'])
  assert.match(out, '# production')
  assert.match(out, 'http_from: cloudflare # only the edge')
  assert.match(out, '- 198.51.100.0/24\n      - 2001:db8::/32')
  assert.not.match(out, '1.2.3.0/24')
})

test('apply: a failure undoes the changes already made, newest first, and says so', async () => {
  setSinks(() => {})
  const log: string[] = []
  const change = (name: string, fail = false): Change => {
    const c: Change = {
      kind: 'setting',
      target: name,
      from: 'a',
      to: 'b',
      async apply() {
        if (fail) throw new RunbookError(`${name} refused`, 1)
        log.push(`apply ${name}`)
        c.undo = async () => {
          log.push(`undo ${name}`)
        }
      },
    }
    return c
  }
  try {
    await applyChanges([change('one'), change('two'), change('three', true), change('four')])
    assert.unreachable('should have thrown')
  } catch (err) {
    assert.instance(err, RunbookError)
    assert.match(
      (err as Error).message,
      'three refused\nThe 2 change(s) made before it were undone: two, one.',
    )
  } finally {
    setSinks(
      (t) => process.stdout.write(t),
      (t) => process.stderr.write(t),
    )
  }
  assert.equal(log, ['apply one', 'apply two', 'undo two', 'undo one'])
})

const PEM_A = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'
const PEM_B = '-----BEGIN CERTIFICATE-----\r\nBBBB\r\n-----END CERTIFICATE-----'

test("the zone's origin-pull certificate: made when missing or expiring; hosts trust the new one beside the one in use", () => {
  const now = Date.parse('2026-12-02T00:00:00Z')
  assert.is(zoneCertReason(undefined, 30, now), 'the zone has no origin-pull certificate of its own yet')
  const active = { id: 'x', certificate: PEM_B, expiresOn: '2026-12-22T00:00:00Z' }
  assert.is(
    zoneCertReason(active, 30, now),
    "the zone's origin-pull certificate has 20 day(s) left (renewing under 30)",
  )
  assert.is(zoneCertReason({ ...active, expiresOn: '2036-01-01T00:00:00Z' }, 30, now), null)
  // During a change both are trusted: the new (uploaded next) and the one Cloudflare presents now.
  assert.is(
    trustBundle(active, PEM_A),
    `${PEM_A}\n-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n`,
  )
  assert.is(trustBundle(active), '-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n')
  assert.equal(pemBlocks(`junk\n${PEM_A}\n${PEM_A}\n`), [PEM_A, PEM_A])
})

test('the placeholder trust file: a certificate whose key is never written; deploy uses it only for edge.origin_pull_ca: zone', () => {
  const cmd = placeholderOriginPullTrust({ name: 'production' } as Env)
  assert.match(cmd, '-keyout /dev/null')
  assert.match(cmd, 'mv -f "$tmp" /etc/nginx/conciliaextrato/tls/production-origin-pull-ca.pem')
  assert.match(cmd, 'nobody holds this key')
  assert.is(
    originPullTrustPresent('production', 'conciliaextrato.com'),
    "test -s /etc/nginx/conciliaextrato/tls/production-origin-pull-ca.pem && openssl x509 -noout -subject -in /etc/nginx/conciliaextrato/tls/production-origin-pull-ca.pem 2>/dev/null | grep -qF -e 'origin-pull conciliaextrato.com' -e 'nobody holds this key'",
  )
  const zone = { edge: { originPulls: 'on', originPullCa: 'zone' } } as Env
  assert.ok(usesZoneCert(zone))
  assert.not.ok(usesZoneCert({ edge: { originPulls: 'off', originPullCa: 'zone' } } as Env))
  assert.not.ok(usesZoneCert({ edge: { originPulls: 'on', originPullCa: '/x/ca.pem' } } as Env))
})

test.run()

import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Cloudflare from 'cloudflare'
import * as assert from 'uvu/assert'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { dns } from '../../runbooks/dns.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { suite } from '../harness.ts'
import { type CloudflareApi, startCloudflareApi } from '../sandbox/cloud/cloudflare-api.ts'
import {
  createTestBed,
  destroyTestBed,
  onDroplet,
  runCaptured,
  type TestBed,
  writeManagedEnv,
} from '../support/test-bed.ts'

// make dns against the local Cloudflare API, with a sandbox droplet receiving the origin certificate.
const test = suite('dns: plan, apply, plan on the local Cloudflare API', { timeoutS: 240 })
const TOKEN = 'cfTEST_token_0123456789abcdefghijklmnopqrstuvwxyz'
const ZONE = 'conciliaextrato.com'
const PROD_DOMAINS = { site: ZONE, saas: `app.${ZONE}`, api: `api.${ZONE}` }
let bed: TestBed
let web: SandboxDroplet
let cf: CloudflareApi
let client: Cloudflare

function edge(extra: Record<string, unknown> = {}) {
  return { zone: ZONE, api_base: cf.apiBase, origin_pulls: 'optional', ...extra }
}

function writeDnsEnv(name: string, overrides: Record<string, unknown> = {}) {
  writeManagedEnv(bed, name, {
    domains: PROD_DOMAINS,
    secrets: ['POSTGRES_PASSWORD', 'REDIS_PASSWORD', 'CLOUDFLARE_API_TOKEN'],
    edge: edge(),
    ...overrides,
  })
}

/** Everything the runbook manages in the zone, to compare before and after. */
async function zoneSnapshot(): Promise<string> {
  const id = cf.zoneId(ZONE)
  const records = []
  for await (const r of client.dns.records.list({ zone_id: id }))
    records.push(`${r.type} ${r.name} ${r.content} ${r.proxied}`)
  const settings = []
  for (const s of [
    'ssl',
    'min_tls_version',
    'tls_1_3',
    'always_use_https',
    'automatic_https_rewrites',
    'security_header',
    'tls_client_auth',
  ])
    settings.push(
      `${s}=${JSON.stringify(((await client.zones.settings.get(s, { zone_id: id })) as { value: unknown }).value)}`,
    )
  const aop = await client.originTLSClientAuth.settings.get({ zone_id: id })
  return [...records.sort(), ...settings, `aop=${JSON.stringify(aop)}`].join('\n')
}

const mutations = () => cf.requests.filter((r) => r.method !== 'GET').length

test.before(async () => {
  bed = await createTestBed('dns', ['web-1'], { image: 'provisioned' })
  web = bed.droplets[0] as SandboxDroplet
  cf = await startCloudflareApi({
    tokens: [TOKEN],
    zones: [ZONE, 'example.org'],
    allowPrivateProxiedTargets: true,
  })
  client = new Cloudflare({ apiToken: TOKEN, baseURL: cf.apiBase, maxRetries: 0 })
  process.env.CLOUDFLARE_API_TOKEN = TOKEN
  process.env.CE_CACHE_DIR = mkdtempSync(join(tmpdir(), 'ce-cache-'))
  writeDnsEnv('edge')
  const setup = await runCaptured(setupServer, ['--env', 'edge'])
  if (setup.code !== 0) throw new Error(`setup-server failed:\n${setup.out}`)
})

test.after(async () => {
  await cf?.close()
  await destroyTestBed(bed)
})

test('the plan lists every change and changes nothing', async () => {
  const before = await zoneSnapshot()
  const { code, out } = await runCaptured(dns, ['--env', 'edge'])
  assert.is(code, 0, out)
  for (const d of Object.values(PROD_DOMAINS))
    assert.match(
      out,
      new RegExp(`record\\s+A ${d.replace(/\./g, '\\.')}\\s+\\(none\\)\\s+127\\.0\\.0\\.1 proxied`),
    )
  // The double's zone starts like a new Cloudflare zone: these differ from what the env wants
  // (tls_1_3 and automatic_https_rewrites are already on there, so they are not listed).
  for (const s of ['ssl', 'min_tls_version', 'always_use_https', 'security_header', 'tls_client_auth'])
    assert.match(out, new RegExp(`setting\\s+${s}\\s`))
  assert.not.match(out, /setting\s+tls_1_3\s/)
  assert.match(out, /origin-pulls\s+authenticated origin pulls \(zone\)\s+off\s+on/)
  assert.match(
    out,
    /origin-cert\s+web-1\s+.*new Origin CA certificate: the installed certificate is not from the Cloudflare Origin CA|origin-cert\s+web-1\s+\(none\)/,
  )
  assert.match(out, 'run again with APPLY=1 to make them')
  assert.is(await zoneSnapshot(), before)
  assert.is(mutations(), 0)
})

test('apply makes them: origin certificate installed on the host (key 0600), zone as the env says; a new plan is empty', async () => {
  const { code, out } = await runCaptured(dns, ['--env', 'edge', '--apply'])
  assert.is(code, 0, out)
  assert.match(out, 'new Origin CA certificate installed')
  assert.match(out, 'the zone matches the env file')
  const modes = await onDroplet(
    web,
    'stat -c "%a %U %n" /etc/nginx/conciliaextrato/tls/edge-origin.key /etc/nginx/conciliaextrato/tls/edge-origin.crt',
  )
  assert.match(modes, '600 deploy /etc/nginx/conciliaextrato/tls/edge-origin.key')
  const dir = mkdtempSync(join(tmpdir(), 'ce-dns-'))
  writeFileSync(join(dir, 'ca.pem'), cf.originCaPem.ecc)
  writeFileSync(
    join(dir, 'leaf.pem'),
    await onDroplet(web, 'cat /etc/nginx/conciliaextrato/tls/edge-origin.crt'),
  )
  assert.match(
    execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'leaf.pem')], {
      encoding: 'utf8',
    }),
    ': OK',
  )
  // The private key never touched this machine's disk: it is not in the run's output either.
  assert.not.match(out, 'PRIVATE KEY')
  const snap = await zoneSnapshot()
  assert.match(snap, `A app.${ZONE} 127.0.0.1 true`)
  assert.match(snap, 'ssl="strict"')
  assert.match(snap, 'aop={"enabled":true}')
  const again = await runCaptured(dns, ['--env', 'edge'])
  assert.is(again.code, 0, again.out)
  assert.match(again.out, 'no changes')
  const count = mutations()
  const reapply = await runCaptured(dns, ['--env', 'edge', '--apply'])
  assert.is(reapply.code, 0, reapply.out)
  assert.is(mutations(), count, 'a second apply changes nothing')
})

test('two-level staging names are flagged with the fix; with advanced certificates allowed, an order is planned', async () => {
  const qa = { site: `qa.${ZONE}`, saas: `app.qa.${ZONE}`, api: `api.qa.${ZONE}` }
  writeDnsEnv('qa', { domains: qa })
  const { code, out } = await runCaptured(dns, ['--env', 'qa'])
  assert.is(code, 3, out)
  assert.match(
    out,
    `app.qa.${ZONE} is two or more levels below ${ZONE}: Cloudflare's Universal SSL does not cover it`,
  )
  assert.match(out, `api.qa.${ZONE} is two or more levels below`)
  assert.not.match(out, `- qa.${ZONE} is two`)
  assert.match(out, `rename it one level deep (e.g. qa-app.${ZONE})`)
  writeDnsEnv('qa', { domains: qa, edge: edge({ advanced_certificate: true }) })
  const allowed = await runCaptured(dns, ['--env', 'qa'])
  assert.is(allowed.code, 0, allowed.out)
  assert.match(
    allowed.out,
    new RegExp(`certificate-pack\\s+advanced certificate.*\\*\\.qa\\.${ZONE.replace('.', '\\.')}`),
  )
})

test('a bad token and an unknown zone get clear errors, without the token', async () => {
  process.env.CLOUDFLARE_API_TOKEN = `x${TOKEN.slice(1)}`
  try {
    const bad = await runCaptured(dns, ['--env', 'edge'])
    assert.is(bad.code, 3, bad.out)
    assert.match(bad.out, 'Cloudflare refused the token in CLOUDFLARE_API_TOKEN')
    assert.not.match(bad.out, TOKEN.slice(1))
  } finally {
    process.env.CLOUDFLARE_API_TOKEN = TOKEN
  }
  writeDnsEnv('other', { edge: edge({ zone: 'example.net' }) })
  const unknown = await runCaptured(dns, ['--env', 'other'])
  assert.is(unknown.code, 3, unknown.out)
  assert.match(unknown.out, 'zone example.net is not in this Cloudflare account')
})

test('429 is waited out; a failure mid-apply undoes what was applied (nothing half applied)', async () => {
  // Turning origin pulls off and HSTS down makes three changes: two settings and the zone's AOP.
  writeDnsEnv('edge', { edge: edge({ origin_pulls: 'off', hsts_max_age_s: 600 }) })
  const before = await zoneSnapshot()
  cf.faults.add({ status: 500, count: 10, path: '/origin_tls_client_auth/settings', method: 'PUT' })
  const failed = await runCaptured(dns, ['--env', 'edge', '--apply'])
  assert.is(failed.code, 1, failed.out)
  assert.match(failed.out, /Cloudflare failed set authenticated origin pulls \(HTTP 500/)
  assert.match(failed.out, /The 2 change\(s\) made before it were undone: tls_client_auth, security_header/)
  assert.is(await zoneSnapshot(), before)
  cf.faults.clear()
  cf.faults.add({ status: 429, count: 1, path: '/settings/security_header', method: 'PATCH', retryAfterS: 1 })
  const ok = await runCaptured(dns, ['--env', 'edge', '--apply'])
  assert.is(ok.code, 0, ok.out)
  assert.is(cf.requests.filter((r) => r.status === 429).length, 1)
  assert.match(await zoneSnapshot(), '"max_age":600')
})

test('new Cloudflare ranges are written into the env file (comments kept) when the firewall uses them', async () => {
  writeDnsEnv('edge', {
    edge: edge({ origin_pulls: 'off', hsts_max_age_s: 600 }),
    setup: {
      deploy_keys: [{ file: `${bed.keyPath}.pub` }],
      fail2ban_ignore: [`${bed.gateway}/32`],
      firewall: { http_from: 'cloudflare', cloudflare_ips: ['173.245.48.0/20'] },
    },
  })
  const file = join(bed.envDir, 'edge.yaml')
  writeFileSync(file, `# the edge test env\n${readFileSync(file, 'utf8')}`)
  cf.setIps(['198.51.100.0/24', '173.245.48.0/20'], ['2001:db8::/32'])
  const plan = await runCaptured(dns, ['--env', 'edge'])
  assert.match(
    plan.out,
    /setup\.firewall\.cloudflare_ips in .*edge\.yaml\s+1 ranges\s+\+ 198\.51\.100\.0\/24 2001:db8::\/32/,
  )
  const applied = await runCaptured(dns, ['--env', 'edge', '--apply'])
  assert.is(applied.code, 0, applied.out)
  const text = readFileSync(file, 'utf8')
  assert.match(text, '# the edge test env')
  assert.match(text, '- 198.51.100.0/24')
  assert.match(text, '- 2001:db8::/32')
  assert.match(applied.out, 'make setup-server ENV=edge applies them to the firewall')
})

test.run()

import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { parse as parseYaml } from 'yaml'
import {
  createDroplet,
  createRequest,
  doClient,
  dropletsByTag,
  waitActive,
} from '../../lib/emergency/digitalocean.ts'
import { describeChange, withNewHost } from '../../lib/emergency/env-change.ts'
import { cloudInitUserData, generateHostKey } from '../../lib/emergency/host-key.ts'
import { type EmergencyState, newState, resumePoint, spentS } from '../../lib/emergency/state.ts'
import { compareToBackup } from '../../lib/emergency/verify.ts'
import type { DropletConfig } from '../../lib/env/droplet.ts'
import { loadEnv } from '../../lib/env/load.ts'
import { InputError } from '../../lib/report/errors.ts'
import { suite } from '../harness.ts'
import { type DigitalOceanApi, startDigitalOceanApi } from '../sandbox/cloud/digitalocean-api.ts'
import { PUBLIC_YAML } from './ci-env.ts'

const test = suite(
  'emergency: droplet section, DigitalOcean client, host key, state, env change, data check',
  {
    timeoutS: 60,
  },
)
const TOKEN = 'dop_v1_unit0123456789abcdef0123456789abcdef0123456789abcdef0123456789'
const KEY = 'SHA256:JLMaqh8HJyBKDSUOY+IsmHSIiD8khfb1+x5vqEYo7eA'
const PUB = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMkoayiSR6OjDO0KqyFDNGgH9jJGJnz3f1jko/vri05n ana@laptop'

const envText = (
  droplet: string,
  secrets = '[POSTGRES_PASSWORD, DIGITALOCEAN_TOKEN, CLOUDFLARE_API_TOKEN, TEAM_WEBHOOK_URL]',
) => `# production, one droplet
name: prod
kind: production
confirm: true
branch: main
hosts:
  - name: prod-1 # the droplet that died
    address: 203.0.113.10
    host_key: ${KEY}
ssh: { user: deploy, key: { file: /dev/null } }
domains: { site: example.com, saas: app.example.com, api: api.example.com }
images: { site: o/site, saas: o/saas, api: o/api, postgres: postgres:15, redis: redis:7 }
secrets: ${secrets}
setup: { deploy_keys: ['${PUB}'], firewall: { http_from: anywhere } }
${PUBLIC_YAML}
${droplet}
`
function load(text: string) {
  const dir = mkdtempSync(join(tmpdir(), 'ce-em-env-'))
  writeFileSync(join(dir, 'prod.yaml'), text)
  return loadEnv('prod', dir)
}
function problems(text: string): string {
  try {
    load(text)
  } catch (err) {
    assert.instance(err, InputError)
    return (err as Error).message
  }
  throw new Error('expected an InputError')
}

const SECTION = `droplet:
  region: fra1
  size: s-2vcpu-4gb
  image: debian-12-x64
  ssh_keys: [512189, "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"]
  tags: [conciliaextrato, production]`

test('droplet: read with defaults (token secret, API base, name prefix, monitoring)', () => {
  const d = load(envText(SECTION)).droplet as DropletConfig
  assert.equal(d, {
    tokenSecret: 'DIGITALOCEAN_TOKEN',
    apiBase: 'https://api.digitalocean.com',
    namePrefix: 'ce-prod',
    region: 'fra1',
    size: 's-2vcpu-4gb',
    image: 'debian-12-x64',
    sshKeys: ['512189', '3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa'],
    tags: ['conciliaextrato', 'production'],
    ipv6: false,
    monitoring: true,
    activeTimeoutS: 300,
    imagesKeep: 3,
  })
})

test('droplet: every bad field is named; the token must be a listed secret', () => {
  const msg = problems(
    envText(
      'droplet: { region: FRA 1, size: s-1vcpu-1gb, image: debian-12-x64, ssh_keys: [], tags: [has space] }',
      '[POSTGRES_PASSWORD, CLOUDFLARE_API_TOKEN, TEAM_WEBHOOK_URL]',
    ),
  )
  assert.match(msg, 'droplet.region')
  assert.match(msg, 'droplet.ssh_keys: expected at least 1 item(s)')
  assert.match(msg, 'droplet.tags[0]')
  assert.match(msg, 'droplet.token_secret: DIGITALOCEAN_TOKEN must also be listed under secrets')
})

test('createRequest: numeric key ids become numbers, the run tag is added once, user_data passes through', () => {
  const d = load(envText(SECTION)).droplet as DropletConfig
  const req = createRequest(d, 'ce-prod-261126-0300', 'ce-emergency-prod-1', '#cloud-config\n')
  assert.equal(req, {
    name: 'ce-prod-261126-0300',
    region: 'fra1',
    size: 's-2vcpu-4gb',
    image: 'debian-12-x64',
    ssh_keys: [512189, '3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa'],
    tags: ['conciliaextrato', 'production', 'ce-emergency-prod-1'],
    user_data: '#cloud-config\n',
    ipv6: false,
    monitoring: true,
  })
})

test('host key: cloud-config installs exactly the generated ed25519 key, whose fingerprint is known', () => {
  const key = generateHostKey('test')
  assert.match(key.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/)
  const text = cloudInitUserData(key)
  assert.ok(text.startsWith('#cloud-config\n'))
  const parsed = parseYaml(text) as Record<string, unknown> & { ssh_keys: Record<string, string> }
  assert.is(parsed.ssh_deletekeys, true)
  assert.equal(parsed.ssh_genkeytypes, [])
  assert.is(parsed.ssh_keys.ed25519_private?.trim(), key.privateKey.trim())
  assert.is(parsed.ssh_keys.ed25519_public, key.publicKey)
  assert.is.not(generateHostKey('test').fingerprint, key.fingerprint)
})

test('state: resumes from the first phase that did not finish; time spent adds up', () => {
  const s: EmergencyState = newState('prod', new Date('2026-11-26T03:04:05Z'))
  assert.is(s.runId, 'ce-emergency-prod-20261126-030405')
  assert.is(resumePoint(s), 'create')
  s.phases.create = { status: 'done', s: 40, at: '' }
  s.phases.setup = { status: 'done', s: 60.5, at: '' }
  s.phases.deploy = { status: 'failed', s: 12, at: '' }
  assert.is(resumePoint(s), 'deploy')
  assert.is(spentS(s), 112.5)
  for (const p of ['deploy', 'restore', 'health', 'dns', 'verify'] as const)
    s.phases[p] = { status: 'done', s: 1, at: '' }
  assert.is(resumePoint(s), null)
})

test('env change: hosts: names only the new host; comments and every other line are kept', () => {
  const text = envText(SECTION)
  const entry = {
    name: 'ce-prod-261126',
    address: '198.51.100.7',
    ssh_port: 22,
    host_key: KEY,
    roles: ['web', 'data'],
  }
  const out = withNewHost(text, entry)
  assert.match(out, '# production, one droplet')
  assert.match(out, 'address: 198.51.100.7')
  assert.not.match(out, '203.0.113.10')
  const { hosts: _new, ...rest } = parseYaml(out) as Record<string, unknown>
  const { hosts: _old, ...before } = parseYaml(text) as Record<string, unknown>
  assert.equal(rest, before)
  const env = load(out)
  assert.equal(
    env.hosts.map((h) => [h.name, h.address]),
    [['ce-prod-261126', '198.51.100.7']],
  )
  const lines = describeChange('env/prod.yaml', load(text).hosts, entry)
  assert.match(lines.join('\n'), '(replacing prod-1 at 203.0.113.10')
})

test('data check: rows beyond the backup are not loss; missing rows and tables are', () => {
  assert.equal(compareToBackup({ a: 10, b: 5 }, { a: 12, b: 5, c: 1 }), {
    rowsVerified: 15,
    dataLost: 0,
    problems: [],
  })
  assert.equal(compareToBackup({ a: 10, b: 5 }, { a: 7 }), {
    rowsVerified: 7,
    dataLost: 8,
    problems: ['a: 7 rows, the backup had 10', 'b: missing (the backup had 5 rows)'],
  })
})

let api: DigitalOceanApi
const config = (): DropletConfig => ({
  tokenSecret: 'DIGITALOCEAN_TOKEN',
  apiBase: api.url,
  namePrefix: 'ce-unit',
  region: 'nyc3',
  size: 's-1vcpu-1gb',
  image: 'debian-12-x64',
  sshKeys: [String(api.sshKeys[0]?.id)],
  tags: ['unit'],
  ipv6: false,
  monitoring: true,
  activeTimeoutS: 10,
  imagesKeep: 2,
})

test('DigitalOcean client: create, found again by its run tag, active with a public IPv4', async () => {
  let release: () => void = () => {}
  api = await startDigitalOceanApi({
    tokens: [TOKEN],
    sshKeys: [{ name: 'oncall', publicKey: PUB }],
    onCreate: () => new Promise((done) => (release = () => done({ ip: '198.51.100.23' }))),
  })
  try {
    const c = doClient(config(), { DIGITALOCEAN_TOKEN: TOKEN }, 10)
    const made = await createDroplet(c, createRequest(config(), 'ce-unit-1', 'ce-emergency-unit-1', ''))
    assert.is(made.status, 'new')
    assert.is(made.ip, null)
    const found = await dropletsByTag(c, 'ce-emergency-unit-1')
    assert.equal(
      found.map((d) => d.id),
      [made.id],
    )
    assert.equal(await dropletsByTag(c, 'ce-emergency-other'), [])
    const seen: string[] = []
    setTimeout(() => release(), 100)
    const active = await waitActive(c, made.id, 10, 20, (d) => seen.push(d.status))
    assert.is(active.ip, '198.51.100.23')
    assert.is(seen[0], 'new')
    assert.is(seen.at(-1), 'active')
  } finally {
    await api.close()
  }
})

test('DigitalOcean client: 429 and 5xx are retried; a bad token and a bad size are clear, without the token', async () => {
  api = await startDigitalOceanApi({ tokens: [TOKEN], sshKeys: [{ name: 'oncall', publicKey: PUB }] })
  try {
    const c = doClient(config(), { DIGITALOCEAN_TOKEN: TOKEN }, 10)
    api.faults.add({ status: 429, path: '/v2/droplets', count: 1, retryAfterS: 0 })
    api.faults.add({ status: 503, path: '/v2/droplets', count: 1 })
    const made = await createDroplet(c, createRequest(config(), 'ce-unit-2', 'ce-emergency-unit-2', ''))
    assert.ok(made.id > 0)
    const bad = doClient(config(), { DIGITALOCEAN_TOKEN: `${TOKEN.slice(0, -4)}XXXX` }, 10)
    const denied = await createDroplet(bad, createRequest(config(), 'x', 't', '')).catch((e: Error) => e)
    assert.instance(denied, InputError)
    assert.match((denied as Error).message, 'DigitalOcean refused the token (401)')
    assert.not.match((denied as Error).message, TOKEN.slice(10))
    const size = await createDroplet(c, { ...createRequest(config(), 'y', 't', ''), size: 'huge' }).catch(
      (e: Error) => e,
    )
    assert.match((size as Error).message, 'DigitalOcean refused create droplet y (422)')
    assert.match((size as InputError).next ?? '', 'droplet: section')
    const missing = (() => {
      try {
        doClient(config(), {})
      } catch (e) {
        return (e as Error).message
      }
    })()
    assert.match(missing ?? '', 'secret DIGITALOCEAN_TOKEN (the DigitalOcean API token) is not set')
  } finally {
    await api.close()
  }
})

test.run()

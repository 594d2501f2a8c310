import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { suite } from '../harness.ts'
import {
  type DigitalOceanApi,
  type DropletSpec,
  startDigitalOceanApi,
} from '../sandbox/cloud/digitalocean-api.ts'

const test = suite('digitalocean api double', { timeoutS: 30 })
const TOKEN = 'dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'
let api: DigitalOceanApi
let work: string
let publicKey: string
let md5: string
const created: DropletSpec[] = []
const deleted: DropletSpec[] = []
/** Each onCreate waits for its gate: the test decides when provisioning finishes. */
const gates = new Map<string, () => void>()
let failNext = false

type Json = Record<string, unknown>
type DropletJson = {
  id: number
  name: string
  status: string
  tags: string[]
  networks: { v4: Array<{ ip_address: string; type: string }>; v6: unknown[] }
}

async function call(method: string, path: string, body?: unknown, token = TOKEN) {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, json: (text ? JSON.parse(text) : undefined) as Json }
}

const spec = (name: string, extra: Json = {}) => ({
  name,
  region: 'nyc3',
  size: 's-1vcpu-1gb',
  image: 'ubuntu-24-04-x64',
  ...extra,
})

/** Creates a droplet; its provisioning finishes at once unless `pending`. */
async function createDroplet(name: string, extra: Json = {}, pending = false): Promise<DropletJson> {
  const res = await call('POST', '/v2/droplets', spec(name, extra))
  assert.is(res.status, 202, JSON.stringify(res.json))
  if (!pending) gates.get(name)?.()
  return res.json.droplet as DropletJson
}

/** What a runbook does: poll until the droplet is active. */
async function waitActive(id: number): Promise<DropletJson> {
  for (let i = 0; i < 200; i++) {
    const droplet = (await call('GET', `/v2/droplets/${id}`)).json.droplet as DropletJson
    if (droplet.status === 'active') return droplet
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`droplet ${id} never became active`)
}

test.before(async () => {
  work = mkdtempSync(join(tmpdir(), 'do-double-test-'))
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'oncall', '-f', join(work, 'id')])
  publicKey = readFileSync(join(work, 'id.pub'), 'utf8').trim()
  md5 =
    execFileSync('ssh-keygen', ['-l', '-E', 'md5', '-f', join(work, 'id.pub')], { encoding: 'utf8' }).split(
      ' ',
    )[1] ?? ''
  api = await startDigitalOceanApi({
    tokens: [TOKEN],
    sshKeys: [{ name: 'oncall', publicKey }],
    onCreate: async (droplet) => {
      created.push(droplet)
      if (failNext) {
        failNext = false
        throw new Error('no capacity for the sandbox droplet')
      }
      await new Promise<void>((resolve) => gates.set(droplet.name, resolve))
      return { ip: '127.0.0.1' }
    },
    onDelete: async (droplet) => {
      deleted.push(droplet)
    },
  })
})

test.after(async () => {
  for (const open of gates.values()) open()
  await api?.idle()
  await api?.close()
  if (work) rmSync(work, { recursive: true, force: true })
})

test('the account keys carry the MD5 fingerprints ssh-keygen prints', async () => {
  const res = await call('GET', '/v2/account/keys')
  assert.is(res.status, 200)
  assert.equal(res.json, {
    ssh_keys: [
      {
        id: api.sshKeys[0]?.id,
        name: 'oncall',
        public_key: publicKey,
        fingerprint: md5.replace(/^MD5:/, ''),
      },
    ],
    links: {},
    meta: { total: 1 },
  })
})

test('create answers 202 with a new droplet, active with the hook IP once the hook resolves', async () => {
  const res = await call(
    'POST',
    '/v2/droplets',
    spec('emergency-1', { ssh_keys: [api.sshKeys[0]?.fingerprint], tags: ['ce', 'emergency'] }),
  )
  assert.is(res.status, 202)
  const droplet = res.json.droplet as DropletJson
  assert.equal([droplet.name, droplet.status, droplet.networks], ['emergency-1', 'new', { v4: [], v6: [] }])
  assert.equal(droplet.tags, ['ce', 'emergency'])
  const links = res.json.links as { actions: Array<{ id: number; rel: string; href: string }> }
  assert.equal(
    links.actions.map((a) => [a.rel, a.href]),
    [['create', `${api.url}/v2/actions/${links.actions[0]?.id}`]],
  )

  const hooked = created.at(-1)
  assert.equal(
    [hooked?.id, hooked?.region, hooked?.size, hooked?.image],
    [droplet.id, 'nyc3', 's-1vcpu-1gb', 'ubuntu-24-04-x64'],
  )
  assert.is(hooked?.sshKeys[0]?.public_key, publicKey)
  assert.is(((await call('GET', `/v2/droplets/${droplet.id}`)).json.droplet as DropletJson).status, 'new')
  assert.is(
    ((await call('GET', `/v2/actions/${links.actions[0]?.id}`)).json.action as Json).status,
    'in-progress',
  )

  gates.get('emergency-1')?.()
  const active = await waitActive(droplet.id)
  const pub = active.networks.v4.find((n) => n.type === 'public')
  assert.equal(pub, {
    ip_address: '127.0.0.1',
    netmask: '255.255.240.0',
    gateway: '127.0.0.1',
    type: 'public',
  })
  assert.ok(active.networks.v4.some((n) => n.type === 'private'))
  assert.is(
    ((await call('GET', `/v2/actions/${links.actions[0]?.id}`)).json.action as Json).status,
    'completed',
  )
})

test('create validates the request like the API: 422 unprocessable_entity, 400 for bad JSON', async () => {
  const before = api.requests.length
  const invalid = async (body: Json, message: string) => {
    const res = await call('POST', '/v2/droplets', body)
    assert.is(res.status, 422, JSON.stringify(body))
    assert.is(res.json.id, 'unprocessable_entity')
    assert.match(String(res.json.message), message)
    assert.type(res.json.request_id, 'string')
  }
  const { name: _n, ...noName } = spec('x')
  await invalid(noName, 'Name is required')
  await invalid(spec('bad_name!'), 'Only valid hostname characters are allowed')
  await invalid(spec('x', { size: 's-64vcpu-1tb' }), 'invalid size')
  const { image: _i, ...noImage } = spec('x')
  await invalid(noImage, 'Image is required')
  await invalid(spec('x', { region: 'mars1' }), 'invalid region')
  await invalid(spec('x', { ssh_keys: ['00:11:22'] }), 'SSH key 00:11:22 could not be found')
  await invalid(spec('x', { tags: ['has space'] }), 'tags must be')
  await invalid(spec('x', { ipv6: 'yes' }), 'ipv6 must be a boolean')
  const bad = await call('POST', '/v2/droplets', '{"name": "x",')
  assert.equal([bad.status, bad.json.id], [400, 'bad_request'])
  assert.ok(
    api.requests.slice(before).every((r) => r.status !== 202),
    'nothing was created',
  )
})

test('list by tag paginates with links.pages and meta.total', async () => {
  const ids: number[] = []
  for (let i = 0; i < 5; i++) ids.push((await createDroplet(`web-${i}`, { tags: ['web'] })).id)
  await createDroplet('db-0', { tags: ['db'] })
  const first = await call('GET', '/v2/droplets?tag_name=web&per_page=2')
  assert.equal(first.json.meta, { total: 5 })
  assert.equal(first.json.links, {
    pages: {
      next: `${api.url}/v2/droplets?page=2&per_page=2&tag_name=web`,
      last: `${api.url}/v2/droplets?page=3&per_page=2&tag_name=web`,
    },
  })
  const seen = (first.json.droplets as DropletJson[]).map((d) => d.id)
  let next = (first.json.links as { pages: { next?: string } }).pages.next
  while (next) {
    const page = await call('GET', next.slice(api.url.length))
    seen.push(...(page.json.droplets as DropletJson[]).map((d) => d.id))
    next = (page.json.links as { pages?: { next?: string } }).pages?.next
    if (!next) assert.equal(Object.keys((page.json.links as { pages: Json }).pages), ['first', 'prev'])
  }
  assert.equal(seen, ids)
})

test('delete answers 204, calls onDelete once creation settled, and the droplet is gone', async () => {
  const droplet = await createDroplet('doomed', {}, true)
  const res = await call('DELETE', `/v2/droplets/${droplet.id}`)
  assert.equal([res.status, res.json], [204, undefined])
  const gone = await call('GET', `/v2/droplets/${droplet.id}`)
  assert.is(gone.status, 404)
  assert.equal(
    { id: gone.json.id, message: gone.json.message },
    {
      id: 'not_found',
      message: 'The resource you requested could not be found.',
    },
  )
  assert.not.ok(
    deleted.some((d) => d.id === droplet.id),
    'waits for the pending creation',
  )
  gates.get('doomed')?.()
  await api.idle()
  assert.ok(deleted.some((d) => d.id === droplet.id && d.name === 'doomed'))

  const byTag = await call('DELETE', '/v2/droplets?tag_name=web')
  assert.is(byTag.status, 204)
  assert.is(((await call('GET', '/v2/droplets?tag_name=web')).json.meta as Json).total, 0)
})

test('a failing provisioner leaves the droplet new and its action errored', async () => {
  failNext = true
  const res = await call('POST', '/v2/droplets', spec('unlucky'))
  const actionId = (res.json.links as { actions: Array<{ id: number }> }).actions[0]?.id
  await api.idle()
  assert.is(((await call('GET', `/v2/actions/${actionId}`)).json.action as Json).status, 'errored')
  assert.is(
    ((await call('GET', `/v2/droplets/${(res.json.droplet as DropletJson).id}`)).json.droplet as DropletJson)
      .status,
    'new',
  )
  assert.match(api.hookErrors.at(-1)?.error ?? '', 'no capacity')
})

test('auth, unknown droplets, rate limits and server errors answer like the API', async () => {
  for (const token of ['', 'dop_v1_wrong']) {
    const res = await call('GET', '/v2/droplets', undefined, token)
    assert.is(res.status, 401)
    assert.equal(
      { id: res.json.id, message: res.json.message },
      { id: 'Unauthorized', message: 'Unable to authenticate you' },
    )
  }
  assert.is((await fetch(`${api.url}/v2/droplets`)).status, 401, 'no Authorization header')
  assert.is((await call('GET', '/v2/droplets/999')).status, 404)
  assert.is((await call('GET', '/v2/nothing')).status, 404)
  const ok = await call('GET', '/v2/account')
  assert.is(ok.headers.get('ratelimit-limit'), '5000')
  assert.ok(Number(ok.headers.get('ratelimit-remaining')) < 5000)

  api.faults.add({ status: 429, path: '/v2/droplets', retryAfterS: 3 })
  const limited = await call('GET', '/v2/droplets')
  assert.equal(
    [limited.status, limited.json.id, limited.json.message],
    [429, 'too_many_requests', 'API Rate limit exceeded.'],
  )
  assert.equal([limited.headers.get('ratelimit-remaining'), limited.headers.get('retry-after')], ['0', '3'])
  assert.ok(Number(limited.headers.get('ratelimit-reset')) > Date.now() / 1000)
  api.faults.add({ status: 500 })
  assert.equal((await call('GET', '/v2/droplets')).json.id, 'server_error')
  assert.is((await call('GET', '/v2/droplets')).status, 200)
})

test.run()

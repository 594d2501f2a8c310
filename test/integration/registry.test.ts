import * as assert from 'uvu/assert'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { parseReleases } from '../../lib/stack/releases.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { rollback } from '../../runbooks/rollback.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { suite } from '../harness.ts'
import { sh } from '../sandbox/engine.ts'
import { buildFixtureImages, DATA_IMAGES } from '../sandbox/fixtures.ts'
import { pushImage, registryDigest, type SandboxRegistry, startRegistry } from '../sandbox/registry.ts'
import {
  auditRecords,
  createTestBed,
  destroyTestBed,
  FIXTURE_DOMAINS,
  onDroplet,
  runCaptured,
  type TestBed,
  writeManagedEnv,
} from '../support/test-bed.ts'

// Registry delivery: the droplet pulls the release from a real registry (Debian's docker-registry)
// on the test network; the release records the registry digests it ran.
const test = suite('deploy with images pulled from a registry', { timeoutS: 300 })
let bed: TestBed
let web: SandboxDroplet
let registry: SandboxRegistry

test.before(async () => {
  await buildFixtureImages()
  bed = await createTestBed('registry', ['web-1', 'prod-1'], { image: 'provisioned' })
  web = bed.droplets[0] as SandboxDroplet
  registry = await startRegistry(bed.group.id, bed.group.network)
  // v1 and the data images are pushed; v2 is not (a release CI never built).
  for (const image of ['site', 'saas', 'api'].map((s) => `conciliaextrato/${s}:v1`))
    await pushImage(registry, image)
  const postgres = await pushImage(registry, DATA_IMAGES.postgres)
  const redis = await pushImage(registry, DATA_IMAGES.redis)
  writeManagedEnv({ ...bed, droplets: [web] }, 'reg', {
    images: {
      site: `${registry.server}/conciliaextrato/site`,
      saas: `${registry.server}/conciliaextrato/saas`,
      api: `${registry.server}/conciliaextrato/api`,
      postgres,
      redis,
      delivery: 'registry',
      registry: { server: registry.server, insecure: true },
    },
    health: { path: '/health', timeout_s: 20 },
  })
  const setup = await runCaptured(setupServer, ['--env', 'reg'])
  if (setup.code !== 0) throw new Error(`setup-server failed:\n${setup.out}`)
})

test.after(async () => {
  await destroyTestBed(bed)
})

test('setup-server trusts the plain-HTTP sandbox registry (insecure-registries) and keeps the log limits', async () => {
  const daemon = JSON.parse(await onDroplet(web, 'cat /etc/docker/daemon.json'))
  assert.equal(daemon['insecure-registries'], [registry.server])
  assert.is(daemon['log-opts']['max-size'], '10m')
})

test('a release whose images are not in the registry is refused before any change, naming each image', async () => {
  const { code, out } = await runCaptured(deploy, ['--env', 'reg', '--release', 'v2'])
  assert.is(code, 3, out)
  for (const s of ['site', 'saas', 'api'])
    assert.match(out, `image ${registry.server}/conciliaextrato/${s}:v2 is not in the registry`)
  assert.not.match(out, 'postgres:15 is not in the registry')
  assert.is((await onDroplet(web, 'docker ps -q | wc -l')).trim(), '0')
  assert.is((await onDroplet(web, 'docker images -q | wc -l')).trim(), '0')
})

test('deploy v1 pulls from the registry on the host; the release records the registry digests', async () => {
  const { code, out } = await runCaptured(deploy, ['--env', 'reg', '--release', 'v1'])
  assert.is(code, 0, out)
  const served = await onDroplet(
    web,
    Object.values(FIXTURE_DOMAINS)
      .map((d) => `curl -fsS -H 'Host: ${d}' http://127.0.0.1/version`)
      .join('; '),
  )
  assert.equal(served.trim().split('\n'), ['v1', 'v1', 'v1'])
  const [record] = parseReleases(await onDroplet(web, 'cat /srv/conciliaextrato/reg/releases.jsonl'))
  assert.ok(record, 'a release record')
  for (const s of ['site', 'saas', 'api']) {
    const digest = await registryDigest(registry, `conciliaextrato/${s}`, 'v1')
    assert.match(digest, /^sha256:[0-9a-f]{64}$/)
    assert.is(record.repo_digests?.[s], `${registry.server}/conciliaextrato/${s}@${digest}`)
  }
  // No registry credentials or throwaway Docker configs are left on the host.
  assert.is((await onDroplet(web, 'ls -d /tmp/tmp.* 2>/dev/null | wc -l')).trim(), '0')
})

const SERVICES = ['site', 'saas', 'api'] as const

/** Pushes a local image to the registry under `repoTag` (an overwritten tag, when it is already there). */
async function pushAs(image: string, repoTag: string): Promise<void> {
  const target = `${registry.local}/${repoTag}`
  await sh`docker tag ${image} ${target}`
  await sh`docker push -q ${target}`
  await sh`docker rmi ${target}`.nothrow()
}

async function served(on = web): Promise<string[]> {
  return (
    await onDroplet(
      on,
      Object.values(FIXTURE_DOMAINS)
        .map((d) => `curl -fsS -H 'Host: ${d}' http://127.0.0.1/version`)
        .join('; '),
    )
  )
    .trim()
    .split('\n')
}

const digestsArg = (digests: Record<string, string>) => SERVICES.map((s) => `${s}=${digests[s]}`).join(',')
const v2Digests: Record<string, string> = {}

test('DIGESTS pins the images: a v2 tag overwritten in the registry (with v1) cannot change what runs', async () => {
  for (const s of SERVICES) {
    await pushAs(`conciliaextrato/${s}:v2`, `conciliaextrato/${s}:v2`)
    v2Digests[s] = await registryDigest(registry, `conciliaextrato/${s}`, 'v2')
    // Someone (or a re-run of an old build) pushes other content under the same tag.
    await pushAs(`conciliaextrato/${s}:v1`, `conciliaextrato/${s}:v2`)
    assert.is.not(await registryDigest(registry, `conciliaextrato/${s}`, 'v2'), v2Digests[s])
  }
  const bad = await runCaptured(deploy, ['--env', 'reg', '--release', 'v2', '--digests', 'site=sha256:abc'])
  assert.is(bad.code, 2, bad.out)
  assert.match(bad.out, 'DIGESTS is not usable')
  assert.match(bad.out, 'DIGESTS: saas is missing')
  // A digest the registry does not hold: refused before any change, naming the image.
  const unknown = { ...v2Digests, api: `sha256:${'0'.repeat(64)}` }
  const refused = await runCaptured(deploy, [
    '--env',
    'reg',
    '--release',
    'v2',
    '--digests',
    digestsArg(unknown),
  ])
  assert.is(refused.code, 3, refused.out)
  assert.match(
    refused.out,
    `image ${registry.server}/conciliaextrato/api@sha256:${'0'.repeat(64)} is not in the registry`,
  )
  assert.equal(await served(), ['v1', 'v1', 'v1'])

  const { code, out } = await runCaptured(deploy, [
    '--env',
    'reg',
    '--release',
    'v2',
    '--digests',
    digestsArg(v2Digests),
  ])
  assert.is(code, 0, out)
  assert.match(out, 'images pinned by digest: site sha256:')
  assert.equal(await served(), ['v2', 'v2', 'v2'])
  const record = parseReleases(await onDroplet(web, 'cat /srv/conciliaextrato/reg/releases.jsonl')).at(-1)
  for (const s of SERVICES)
    assert.is(record?.repo_digests?.[s], `${registry.server}/conciliaextrato/${s}@${v2Digests[s]}`)
})

test("a rollback to a release whose images the host lost pulls them by the record's digests, not the moved tag", async () => {
  // v1's containers and images gone from the host; the registry's v1 tag now holds v2's content.
  const refs = SERVICES.map((s) => `${registry.server}/conciliaextrato/${s}:v1`)
  await onDroplet(
    web,
    `${refs.map((r) => `docker ps -aq --filter ancestor=${r} | xargs -r docker rm -f >/dev/null`).join('; ')}; docker rmi ${refs.join(' ')} >/dev/null`,
  )
  for (const s of SERVICES) await pushAs(`conciliaextrato/${s}:v2`, `conciliaextrato/${s}:v1`)
  const { code, out } = await runCaptured(rollback, ['--env', 'reg', '--to', 'v1', '--yes'])
  assert.is(code, 0, out)
  assert.match(out, `pulled ${registry.server}/conciliaextrato/site@sha256:`)
  assert.equal(await served(), ['v1', 'v1', 'v1'])
})

test('production promotes only what went live on staging, pinned to the digests it ran there', async () => {
  // prd promotes from reg (production from staging), reading reg's history through reg's checker login.
  const prod = bed.droplets[1] as SandboxDroplet
  const images = {
    site: `${registry.server}/conciliaextrato/site`,
    saas: `${registry.server}/conciliaextrato/saas`,
    api: `${registry.server}/conciliaextrato/api`,
    postgres: `${registry.server}/${DATA_IMAGES.postgres}`,
    redis: `${registry.server}/${DATA_IMAGES.redis}`,
    delivery: 'registry',
    registry: { server: registry.server, insecure: true },
  }
  writeManagedEnv({ ...bed, droplets: [prod] }, 'prd', {
    images,
    health: { path: '/health', timeout_s: 20 },
    promote_from: { env: 'reg', checker_key: { file: bed.checkerKeyPath } },
  })
  const setup = await runCaptured(setupServer, ['--env', 'prd'])
  assert.is(setup.code, 0, setup.out)

  const never = await runCaptured(deploy, ['--env', 'prd', '--release', 'broken'])
  assert.is(never.code, 3, never.out)
  assert.match(never.out, 'broken never went live on reg (promote_from of')
  assert.match(never.out, 'live there: v1, v2')
  const other = { ...v2Digests, site: `sha256:${'1'.repeat(64)}` }
  const differ = await runCaptured(deploy, [
    '--env',
    'prd',
    '--release',
    'v2',
    '--digests',
    digestsArg(other),
  ])
  assert.is(differ.code, 2, differ.out)
  assert.match(differ.out, 'DIGESTS differ from what went live on reg for v2: site')
  // ALLOW_UNSTAGED=1 skips the check (and says so); the registry check still stops a release never pushed.
  const unstaged = await runCaptured(deploy, ['--env', 'prd', '--release', 'broken', '--allow-unstaged'])
  assert.is(unstaged.code, 3, unstaged.out)
  assert.match(unstaged.out, 'ALLOW_UNSTAGED=1: broken is not checked against reg')
  assert.match(unstaged.out, 'conciliaextrato/api:broken is not in the registry')
  assert.is((await onDroplet(prod, 'docker ps -q | wc -l')).trim(), '0', 'nothing ran on prod-1')

  // The registry's v2 tag holds v1's content since the test above: by tag, prod-1 would run v1.
  const { code, out } = await runCaptured(deploy, ['--env', 'prd', '--release', 'v2'])
  assert.is(code, 0, out)
  assert.match(out, 'v2 went live on reg at ')
  assert.equal(await served(prod), ['v2', 'v2', 'v2'])
  const record = parseReleases(await onDroplet(prod, 'cat /srv/conciliaextrato/prd/releases.jsonl')).at(-1)
  for (const s of SERVICES)
    assert.is(record?.repo_digests?.[s], `${registry.server}/conciliaextrato/${s}@${v2Digests[s]}`)
  const audit = auditRecords(bed).at(-1) as { runbook: string; events?: string[] }
  assert.ok(
    audit.events?.some((e) => e.startsWith('promoted v2 from reg')),
    JSON.stringify(audit),
  )
})

test.run()

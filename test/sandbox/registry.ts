import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { LABEL } from './droplets.ts'
import { sh } from './engine.ts'
import { buildMinbaseImage, defaultLog, recipeHash } from './images.ts'

// A real registry (Debian's docker-registry) on a test network: droplets pull from it at its address
// on that network; this machine pushes to it through a port published on 127.0.0.1 (loopback
// registries need no TLS for the local engine). Same storage, so the same digests.

const IMAGES_DIR = resolve(import.meta.dirname, 'images')
export const REGISTRY_IMAGE = 'conciliaextrato-sandbox/registry:2.8'

export interface SandboxRegistry {
  container: string
  /** host:port as the droplets reach it (on the test network). */
  server: string
  /** 127.0.0.1:port as this machine pushes to it. */
  local: string
}

export async function buildRegistryImage(log = defaultLog): Promise<string> {
  const base = await buildMinbaseImage(log)
  const recipe = recipeHash(
    base,
    ...['registry.Dockerfile', 'registry-config.yml'].map((f) => readFileSync(join(IMAGES_DIR, f), 'utf8')),
  )
  const have =
    await sh`docker image inspect -f ${'{{index .Config.Labels "conciliaextrato.recipe"}}'} ${REGISTRY_IMAGE}`.nothrow()
  if (have.exitCode !== 0 || have.stdout.trim() !== recipe) {
    log(`building ${REGISTRY_IMAGE} from Debian's docker-registry`)
    await sh`docker build -q -f ${join(IMAGES_DIR, 'registry.Dockerfile')} --build-arg ${`BASE=${base}`} --label ${`conciliaextrato.recipe=${recipe}`} -t ${REGISTRY_IMAGE} ${IMAGES_DIR}`
  }
  return REGISTRY_IMAGE
}

export async function startRegistry(groupId: string, network: string): Promise<SandboxRegistry> {
  const image = await buildRegistryImage()
  const container = `ce-${groupId}-registry`
  await sh`docker rm -f ${container}`.nothrow()
  await sh`docker run -d --name ${container} --label ${`${LABEL}=${groupId}`} --network ${network} -p 127.0.0.1::5000 ${image}`
  const ip = (
    await sh`docker inspect -f ${'{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'} ${container}`
  ).stdout.trim()
  const port = (await sh`docker port ${container} 5000/tcp`).stdout.trim().split('\n')[0]?.split(':').pop()
  const registry = { container, server: `${ip}:5000`, local: `127.0.0.1:${port}` }
  for (let i = 0; i < 60; i++) {
    const up = await fetch(`http://${registry.local}/v2/`).then(
      (r) => r.status === 200,
      () => false,
    )
    if (up) return registry
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`registry ${container} did not answer on http://${registry.local}/v2/ within 15 s`)
}

/** Tags a local image into the registry and pushes it; returns the name the droplets pull. */
export async function pushImage(registry: SandboxRegistry, image: string): Promise<string> {
  const local = `${registry.local}/${image}`
  await sh`docker tag ${image} ${local}`
  await sh`docker push -q ${local}`
  await sh`docker rmi ${local}`.nothrow()
  return `${registry.server}/${image}`
}

/** The registry's digest of a tag (Docker-Content-Digest), asked over HTTP. */
export async function registryDigest(registry: SandboxRegistry, repo: string, tag: string): Promise<string> {
  const res = await fetch(`http://${registry.local}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  })
  return res.headers.get('docker-content-digest') ?? ''
}

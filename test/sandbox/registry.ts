import { readFileSync, writeFileSync } from 'node:fs'
import { get as httpGet } from 'node:http'
import { get as httpsGet } from 'node:https'
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

/**
 * A registry, by default plain HTTP and anonymous. With `secure`: HTTPS with a certificate for its
 * container name (a sandbox CA the droplets are told to trust) and htpasswd logins, as GHCR asks;
 * the droplets reach it by name on the test network (Docker's DNS).
 */
export async function startRegistry(
  groupId: string,
  network: string,
  secure?: { dir: string; certPem: string; keyPem: string; username: string; password: string },
): Promise<SandboxRegistry> {
  const image = await buildRegistryImage()
  const container = `ce-${groupId}-registry`
  await sh`docker rm -f ${container}`.nothrow()
  const tls: string[] = []
  if (secure) {
    writeFileSync(join(secure.dir, 'server.pem'), secure.certPem)
    writeFileSync(join(secure.dir, 'server.key'), secure.keyPem, { mode: 0o644 })
    const line = await sh({
      input: secure.password,
    })`docker run --rm -i --entrypoint htpasswd ${image} -niB ${secure.username}`
    writeFileSync(join(secure.dir, 'htpasswd'), line.stdout)
    tls.push(
      ...['-v', `${secure.dir}:/certs:ro`],
      ...[
        '-e',
        'REGISTRY_HTTP_TLS_CERTIFICATE=/certs/server.pem',
        '-e',
        'REGISTRY_HTTP_TLS_KEY=/certs/server.key',
      ],
      ...['-e', 'REGISTRY_AUTH=htpasswd', '-e', 'REGISTRY_AUTH_HTPASSWD_REALM=sandbox'],
      ...['-e', 'REGISTRY_AUTH_HTPASSWD_PATH=/certs/htpasswd'],
    )
  }
  await sh`docker run -d --name ${container} --label ${`${LABEL}=${groupId}`} --network ${network} ${tls} -p 127.0.0.1::5000 ${image}`
  const ip = (
    await sh`docker inspect -f ${'{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'} ${container}`
  ).stdout.trim()
  const port = (await sh`docker port ${container} 5000/tcp`).stdout.trim().split('\n')[0]?.split(':').pop()
  const registry = {
    container,
    server: secure ? `${container}:5000` : `${ip}:5000`,
    local: `127.0.0.1:${port}`,
  }
  for (let i = 0; i < 60; i++) {
    // Up: 200 anonymous, 401 when it asks for a login.
    const up = await probe(`${secure ? 'https' : 'http'}://${registry.local}/v2/`)
    if (up === 200 || (secure && up === 401)) return registry
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`registry ${container} did not answer on ${registry.local}/v2/ within 15 s`)
}

function probe(url: string): Promise<number> {
  return new Promise((done) => {
    const req = (url.startsWith('https') ? httpsGet : httpGet)(
      url,
      { rejectUnauthorized: false, timeout: 2000 },
      (res) => {
        res.resume()
        done(res.statusCode ?? 0)
      },
    )
    req.on('error', () => done(0))
    req.on('timeout', () => req.destroy())
  })
}

/** Logs this machine's engine in (a throwaway config dir) and pushes `image` as <repo>:<tag>. */
export async function pushImageWithLogin(
  registry: SandboxRegistry,
  image: string,
  login: { username: string; password: string; configDir: string },
): Promise<string> {
  const local = `${registry.local}/${image}`
  await sh({
    input: login.password,
  })`docker --config ${login.configDir} login ${registry.local} -u ${login.username} --password-stdin`
  await sh`docker tag ${image} ${local}`
  await sh`docker --config ${login.configDir} push -q ${local}`
  // The push recorded the registry's manifest digest on the image (what CI's build step outputs).
  const repo = local.replace(/:[^:/]+$/, '')
  const digests = (await sh`docker image inspect -f ${'{{range .RepoDigests}}{{println .}}{{end}}'} ${image}`)
    .stdout
  await sh`docker rmi ${local}`.nothrow()
  const digest = digests
    .split('\n')
    .find((d) => d.startsWith(`${repo}@`))
    ?.split('@')[1]
  if (!digest)
    throw new Error(`no registry digest for ${local} after the push (RepoDigests: ${digests.trim()})`)
  return digest
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

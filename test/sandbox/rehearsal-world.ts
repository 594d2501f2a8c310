/**
 * The world a rehearsal of the COMMITTED env files runs in: one droplet per env, Cloudflare's API and
 * edge, the Spaces store (s3rver), a registry behind TLS with a login, a webhook receiver, and an
 * override per env (CE_ENV_OVERRIDE with `{env}`) that changes only where things are: the host's
 * address and key, the API endpoints, the registry's address, the edge's resolver and addresses, and
 * who reads the secrets file. Used by `make rehearse` (test/sandbox/rehearsal.ts) and
 * `make rehearse-pipeline` (test/sandbox/pipeline-rehearsal.ts).
 */
import { randomBytes, randomInt } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { generateX25519Identity, identityToRecipient } from 'age-encryption'
import { stringify } from 'yaml'
import { generateBackupKey } from '../../lib/backup/keys.ts'
import { type Env, loadEnv } from '../../lib/env/load.ts'
import { OVERRIDE_VAR } from '../../lib/env/override.ts'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { ageFile, encryptSecretsText } from '../../lib/env/secrets-age.ts'
import { quoteValue } from '../../lib/secrets/edit.ts'
import { type CloudflareApi, startCloudflareApi } from './cloud/cloudflare-api.ts'
import { type CloudflareEdge, startCloudflareEdge } from './cloud/cloudflare-edge.ts'
import { createTestCa, issueServerCertificate } from './cloud/cloudflare-pki.ts'
import { ensureRootKey, group, removeGroup, startDroplet } from './droplets.ts'
import { ensureDockerEngine, sh } from './engine.ts'
import { DATA_IMAGES } from './fixtures.ts'
import { type HealthchecksStandIn, startHealthchecks } from './healthchecks.ts'
import { buildDropletImage, buildProvisionedImage } from './images.ts'
import { type SandboxRegistry, startRegistry } from './registry.ts'
import { enableVersioning, S3RVER_SECRETS, startS3Server } from './s3.ts'
import { type SentryStandIn, startSentry } from './sentry.ts'
import { type Receiver, startReceiver } from './webhook-receiver.ts'

const ROOT = resolve(import.meta.dirname, '..', '..')
const CF_TOKEN = 'cfREHEARSAL_token_0123456789abcdefghijklmnopqrstuvwxyz'
const REGISTRY_USER = 'conciliaextrato-deploy'
let worlds = 0

export interface RehearsalWorld {
  dir: string
  /** The committed env files as loaded with this world's overrides, by name. */
  envs: Record<string, Env>
  droplets: Record<string, SandboxDroplet>
  cf: CloudflareApi
  edge: CloudflareEdge
  registry: SandboxRegistry
  /** The registry's login (GHCR_TOKEN is its password) and a Docker config dir of this machine's. */
  login: { username: string; password: string; configDir: string }
  receiver: Receiver
  /** The Healthchecks.io stand-in the committed envs' heartbeat: points at. */
  heartbeats: HealthchecksStandIn
  /** The Sentry-compatible service (error_tracking): deploys mark their releases there. */
  sentry: SentryStandIn
  /** The operator's environment: overrides, the age identity, every secret but the data passwords. */
  operator: NodeJS.ProcessEnv
  /** The data passwords (in each env's age file; CI holds them in its GitHub environment). */
  data: { POSTGRES_PASSWORD: string; REDIS_PASSWORD: string }
  identity: string
  envDir: string
  close(keep?: boolean): Promise<void>
}

/** Loads `name` from the world's copies with the world's overrides, as every runbook run of it does. */
function loadWithOverride(name: string, envDir: string, pattern: string): Env {
  const saved = process.env[OVERRIDE_VAR]
  process.env[OVERRIDE_VAR] = pattern
  try {
    return loadEnv(name, envDir)
  } finally {
    if (saved === undefined) delete process.env[OVERRIDE_VAR]
    else process.env[OVERRIDE_VAR] = saved
  }
}

/**
 * Starts the world for `names` (the committed env files; each gets its own droplet). `full`: droplets
 * from a bare image (setup-server installs everything), else from the provisioned golden image.
 */
export async function startRehearsalWorld(
  names: string[],
  opts: { full: boolean; tag: string; log: (l: string) => void },
): Promise<RehearsalWorld> {
  const { log } = opts
  const cleanups: (() => Promise<unknown>)[] = []
  const close = async (keep = false) => {
    for (const c of cleanups.reverse()) if (!keep) await c().catch(() => undefined)
  }
  try {
    const committed = names.map((n) => loadEnv(n, join(ROOT, 'env')))
    await ensureDockerEngine()
    const image = opts.full ? await buildDropletImage(log) : await buildProvisionedImage(log)
    const dir = mkdtempSync(join(tmpdir(), `ce-${opts.tag}-`))
    worlds += 1
    const g = group(`r${process.pid}-${worlds}`, dir)
    cleanups.push(() => removeGroup(g.id))
    const keys = await ensureRootKey(dir)
    const droplets: Record<string, SandboxDroplet> = {}
    for (const env of committed)
      droplets[env.name] = await startDroplet(g, env.hosts[0]?.name ?? `${env.name}-1`, image)
    const gateway = (
      await sh`docker network inspect -f ${'{{(index .IPAM.Config 0).Gateway}}'} ${g.network}`
    ).stdout.trim()
    for (const env of committed)
      log(
        `  droplet ${env.name}/${droplets[env.name]?.name} at ${droplets[env.name]?.ip} (operator and edge: ${gateway})`,
      )

    const cf = await startCloudflareApi({
      tokens: [CF_TOKEN],
      zones: [...new Set(committed.map((e) => e.edge?.zone ?? 'conciliaextrato.com'))],
      allowPrivateProxiedTargets: true,
      ips: { ipv4: [`${gateway}/32`], ipv6: [] },
    })
    cleanups.push(() => cf.close())
    const edge = await startCloudflareEdge(
      cf,
      `127.${randomInt(16, 250)}.${randomInt(1, 250)}.${randomInt(2, 250)}`,
    )
    cleanups.push(() => edge.close())
    const buckets = committed.map((e) => (e.backup?.store.type === 's3' ? e.backup.store.bucket : 'b'))
    // On the droplets' gateway: the data host's WAL shipper reaches the store itself.
    // The status page's public Space (status_page.store), on the same server: no versioning, replaced per run.
    const pages = committed.flatMap((e) =>
      e.statusPage?.store.type === 's3' ? [e.statusPage.store.bucket] : [],
    )
    const s3 = await startS3Server({ buckets: [...new Set([...buckets, ...pages])], address: gateway })
    cleanups.push(() => s3.close())
    // As the owner sets the real Spaces up (docs/runbooks/backup.md#protection): versioning on.
    for (const b of new Set(buckets)) await enableVersioning(s3, b)
    const receiver = await startReceiver()
    cleanups.push(() => receiver.close())
    // The dead man's switch's service, with Healthchecks.io's own limits (periods of 60 s and more): the
    // hosts' watchdogs ping it on the gateway.
    const heartbeats = await startHealthchecks({ host: gateway })
    cleanups.push(() => heartbeats.close())
    const sentry = await startSentry({ org: committed.find((e) => e.errorTracking)?.errorTracking?.org })
    cleanups.push(() => sentry.close())

    // The registry behind TLS (a sandbox CA the droplets trust, as real ones trust GHCR's) with a login.
    const password = randomBytes(18).toString('base64url')
    const ca = await createTestCa(dir, 'registry-ca', 'Sandbox registry CA')
    const server = await issueServerCertificate(ca, [`ce-${g.id}-registry`])
    const registry = await startRegistry(g.id, g.network, {
      dir,
      certPem: server.certPem,
      keyPem: server.keyPem,
      username: REGISTRY_USER,
      password,
    })
    for (const d of Object.values(droplets)) {
      await sh`docker exec ${d.container} mkdir -p ${`/etc/docker/certs.d/${registry.server}`}`
      await sh({
        input: ca.pem,
      })`docker exec -i ${d.container} tee ${`/etc/docker/certs.d/${registry.server}/ca.crt`}`
    }

    // The committed env files, byte for byte, in a directory of this run (the operator's rotate-secret
    // writes its age file beside them, not in the repository).
    const envDir = join(dir, 'env')
    mkdirSync(envDir)
    for (const env of committed)
      copyFileSync(join(ROOT, 'env', `${env.name}.yaml`), join(envDir, `${env.name}.yaml`))
    const identity = await generateX25519Identity()
    const recipient = await identityToRecipient(identity)
    const pattern = join(dir, '{env}.override.yaml')
    for (const env of committed) {
      const d = droplets[env.name] as SandboxDroplet
      const file = pattern.replace('{env}', env.name)
      writeFileSync(
        file,
        stringify({
          hosts: { [d.name]: { address: d.ip, ssh_port: 22, host_key: d.hostKey } },
          edge: { api_base: cf.apiBase },
          ...(env.heartbeat ? { heartbeat: { api: heartbeats.url } } : {}),
          ...(env.errorTracking ? { error_tracking: { api: sentry.url } } : {}),
          droplet: { api_base: 'http://127.0.0.1:9' },
          backup: { store: { endpoint: s3.endpoint } },
          ...(env.statusPage?.store.type === 's3'
            ? { status_page: { store: { endpoint: s3.endpoint } } }
            : {}),
          images: { registry: { server: registry.server } },
          health: { edge_resolver: edge.resolver },
          setup: { firewall: { cloudflare_ips: [`${gateway}/32`] } },
          secrets_recipients: [recipient],
        }),
      )
      log(`  override: ${file}\n${readFileSync(file, 'utf8').replace(/^/gm, '    ')}`)
    }
    // An env a committed one watches from outside (watchdog.watch), or reads its outside view from
    // (outside_view), that has no droplet in this world: its names resolve at the sandbox's resolver,
    // which knows none of them, and its hosts are a closed port on this machine (no packet leaves it).
    const others = committed.flatMap((e) => [
      ...e.watchdog.watch,
      ...(e.outsideView ? [e.outsideView.env] : []),
    ])
    for (const other of new Set(others))
      if (!committed.some((e) => e.name === other)) {
        copyFileSync(join(ROOT, 'env', `${other}.yaml`), join(envDir, `${other}.yaml`))
        const hosts = loadEnv(other, join(ROOT, 'env')).hosts
        writeFileSync(
          pattern.replace('{env}', other),
          stringify({
            hosts: Object.fromEntries(hosts.map((h) => [h.name, { address: '127.0.0.1', ssh_port: 9 }])),
            health: { edge_resolver: edge.resolver },
          }),
        )
      }
    const data = {
      POSTGRES_PASSWORD: randomBytes(18).toString('base64url'),
      REDIS_PASSWORD: randomBytes(18).toString('base64url'),
    }
    for (const env of committed)
      writeFileSync(
        ageFile({ file: join(envDir, `${env.name}.yaml`), name: env.name }),
        await encryptSecretsText(
          Object.entries(data)
            .map(([k, v]) => `${k}=${quoteValue(v)}\n`)
            .join(''),
          [recipient],
        ),
      )
    const checkerKey = readFileSync(keys.checkerPath, 'utf8')
    const operator: NodeJS.ProcessEnv = {
      ...process.env,
      [OVERRIDE_VAR]: pattern,
      CE_ENV_DIR: envDir,
      AGE_IDENTITY: identity,
      AUDIT_DIR: join(dir, 'audit'),
      CE_STATE_DIR: join(dir, 'state'),
      CE_CACHE_DIR: join(dir, 'cache'),
      NODE_EXTRA_CA_CERTS: edge.caPath,
      SSH_PRIVATE_KEY: readFileSync(keys.privatePath, 'utf8'),
      CHECKER_SSH_KEY: checkerKey,
      ADMIN_SSH_KEY: readFileSync(keys.adminPath, 'utf8'),
      GHCR_TOKEN: password,
      CLOUDFLARE_API_TOKEN: CF_TOKEN,
      BACKUP_KEY: generateBackupKey(),
      ...S3RVER_SECRETS,
      DIGITALOCEAN_TOKEN: 'dop_v1_rehearsal_not_used',
      TEAM_SLACK_WEBHOOK_URL: `${receiver.url}/team`,
      ONCALL_SLACK_WEBHOOK_URL: `${receiver.url}/oncall`,
      HEARTBEAT_PING_URL: heartbeats.pingBase,
      HEALTHCHECKS_API_KEY: heartbeats.apiKey,
      SENTRY_AUTH_TOKEN: sentry.token,
    }
    // promote_from's and outside_view's keys: the other env's checker account (the sandbox has one).
    for (const env of committed)
      for (const peer of [env.promoteFrom, env.outsideView])
        if (peer?.checkerKey.secret) operator[peer.checkerKey.secret] = checkerKey
    delete operator.POSTGRES_PASSWORD
    delete operator.REDIS_PASSWORD
    process.env.NODE_EXTRA_CA_CERTS = edge.caPath
    const envs = Object.fromEntries(committed.map((e) => [e.name, loadWithOverride(e.name, envDir, pattern)]))
    return {
      dir,
      envs,
      droplets,
      cf,
      edge,
      registry,
      login: { username: REGISTRY_USER, password, configDir: join(dir, 'docker-config') },
      receiver,
      heartbeats,
      sentry,
      operator,
      data,
      identity,
      envDir,
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}

/** The droplet pulls postgres and redis from Docker Hub in production; here they are put on it, under the env's names. */
export async function putDataImages(container: string, env: Env): Promise<void> {
  for (const [official, local] of [
    [env.images.postgres, DATA_IMAGES.postgres],
    [env.images.redis, DATA_IMAGES.redis],
  ] as const) {
    await sh`bash -c ${`docker save ${local} | docker exec -i ${container} docker load -q`}`
    await sh`docker exec ${container} docker tag ${local} ${official}`
  }
}

/** GET https://<domain><path> through the edge, the way a visitor's browser does. */
export function throughEdge(
  domain: string,
  path: string,
  address: string,
  ca: string,
): Promise<{
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  protocol: string
}> {
  return new Promise((done, fail) => {
    const req = request(
      {
        host: address,
        port: 443,
        path,
        servername: domain,
        headers: { host: domain },
        ca,
        agent: false,
        timeout: 15_000,
      },
      (res) => {
        let body = ''
        res.on('data', (c: Buffer) => {
          body += c.toString()
        })
        res.on('end', () =>
          done({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            protocol: String((res.socket as import('node:tls').TLSSocket).getProtocol?.() ?? ''),
          }),
        )
      },
    )
    req.on('error', fail)
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.end()
  })
}

import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { renderSwarmUpstreams } from '../commands/nginx.ts'
import { stackName } from '../commands/swarm.ts'
import { remotePaths } from '../env/host-paths.ts'
import { type Env, type Host, SERVICES, type Service } from '../env/load.ts'
import type { Secrets } from '../env/secrets.ts'
import { DEPENDENCIES, type Dependency } from '../env/services.ts'
import { innerAddress } from '../env/swarm.ts'
import { connectionUrls, DEPENDENCY_VARS, urlVars } from '../stack/files.ts'

// The files a swarm deploy keeps in /srv/conciliaextrato/<env>/ on the manager, and what they hold.
const COMPOSE_DIR = resolve(import.meta.dirname, '..', '..', 'compose')

/** Each service's port on every web node (published in host mode; nginx on the node sends to it). */
export const SWARM_PORTS: Record<Service, number> = { site: 18101, saas: 18102, api: 18103 }

export function stackFiles(env: Env) {
  const { base } = remotePaths(env)
  return {
    dir: base,
    stack: stackName(env.name),
    compose: `${base}/stack.yaml`,
    encrypted: `${base}/stack-encrypted.yaml`,
    secrets: `${base}/stack-secrets.yaml`,
    vars: `${base}/stack.env`,
    migrateEnv: `${base}/migrate.env`,
    dataPublished: `${base}/data-published.yaml`,
  }
}

export function composeText(name: 'stack' | 'stack-encrypted' | 'data-published'): string {
  return readFileSync(resolve(COMPOSE_DIR, `${name}.yaml`), 'utf8')
}

/** The connection strings the api gets as Docker secrets: the data host's private address. */
export function connectionStrings(
  data: Host,
  secrets: Secrets,
  login?: string,
): { database_url: string; redis_url: string } {
  const urls = connectionUrls(secrets, innerAddress(data), login)
  return { database_url: urls.database, redis_url: urls.redis }
}

/** The key of a dependency's connection string among the stack's secrets: database_url, redis_url. */
export function secretKey(d: Dependency): string {
  return DEPENDENCY_VARS[d].toLowerCase()
}

/**
 * Docker secrets cannot change: a new value gets a new name. The name carries a hash of the value
 * (never the value), so a deploy with the same passwords reuses the secrets and the tasks stay put.
 */
export function secretName(env: string, key: string, value: string): string {
  const digest = createHash('sha256').update(`${env}\0${key}\0${value}`).digest('hex').slice(0, 12)
  return `ce-${env}-${key.replace(/_/g, '-')}-${digest}`
}

/** stack.env: the stack's variables (images, ports, secret names, update timing); no secret values. */
export function stackVars(
  env: Env,
  images: Record<Service, string>,
  secretNames: Record<string, string>,
): string {
  const swarm = env.swarm
  return [
    `SITE_IMAGE=${images.site}`,
    `SAAS_IMAGE=${images.saas}`,
    `API_IMAGE=${images.api}`,
    `SITE_PORT=${SWARM_PORTS.site}`,
    `SAAS_PORT=${SWARM_PORTS.saas}`,
    `API_PORT=${SWARM_PORTS.api}`,
    `DATABASE_URL_SECRET=${secretNames.database_url}`,
    `REDIS_URL_SECRET=${secretNames.redis_url}`,
    `UPDATE_DELAY=${swarm?.updateDelayS ?? 5}s`,
    `MONITOR=${swarm?.monitorS ?? 10}s`,
    '',
  ].join('\n')
}

/**
 * stack-secrets.yaml, merged over stack.yaml: each service that services.<name>.uses the database or
 * Redis gets that connection string as a Docker secret (a file in /run/secrets, named by *_URL_FILE);
 * the others get neither. The secrets' names come from stack.env.
 */
export function stackSecretsFile(env: Env): string {
  const lines = [
    '# Managed by deploy from services.<name>.uses of the env file.',
    'version: "3.8"',
    'services:',
  ]
  const users = SERVICES.filter((svc) => env.services[svc].length > 0)
  if (users.length === 0) lines[lines.length - 1] = 'services: {}'
  for (const svc of users) {
    const uses = env.services[svc]
    lines.push(`  ${svc}:`, '    environment:')
    for (const d of uses) lines.push(`      ${DEPENDENCY_VARS[d]}_FILE: /run/secrets/${secretKey(d)}`)
    lines.push(`    secrets: [${uses.map(secretKey).join(', ')}]`)
  }
  // Compose interpolates these from stack.env when the stack is deployed.
  const ref = (name: string) => `"$\{${name}}"`
  lines.push(
    'secrets:',
    `  database_url: { external: true, name: ${ref('DATABASE_URL_SECRET')} }`,
    `  redis_url: { external: true, name: ${ref('REDIS_URL_SECRET')} }`,
    '',
  )
  return lines.join('\n')
}

/** The one-off migration container's variables (mode 0600 on the manager). */
export function migrateEnv(urls: { database_url: string; redis_url: string }): string {
  return urlVars({ database: urls.database_url, redis: urls.redis_url }, DEPENDENCIES)
}

/** A web node's upstreams: its own tasks, then the other web nodes' as backups. */
export function nodeUpstreams(env: Env, node: Host, webNodes: Host[]): string {
  const peers = webNodes.filter((h) => h.name !== node.name).map(innerAddress)
  return renderSwarmUpstreams(env.name, SWARM_PORTS, peers)
}

/** The data project's extra variable on a swarm env: where its ports are published. */
export function dataAddressVar(data: Host): string {
  return `DATA_ADDRESS=${innerAddress(data)}\n`
}

import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { type Colour, colourPorts, projectName } from '../commands/compose.ts'
import { quote } from '../commands/shell.ts'
import { walSpoolDir } from '../commands/wal.ts'
import { remotePaths } from '../env/host-paths.ts'
import type { Env, Service } from '../env/load.ts'
import type { Secrets } from '../env/secrets.ts'
import { DEPENDENCIES, type Dependency } from '../env/services.ts'
import { uriComponent } from '../report/redact.ts'

// The files deploy keeps in /srv/conciliaextrato/<env>/: compose files, variables, secrets.
const COMPOSE_DIR = resolve(import.meta.dirname, '..', '..', 'compose')
export const DB_USER = 'conciliaextrato'
export const DB_NAME = 'conciliaextrato'

export function networkName(env: Env): string {
  return `ce-${env.name}`
}

export function composeFile(name: 'data' | 'app'): string {
  return readFileSync(resolve(COMPOSE_DIR, `${name}.yaml`), 'utf8')
}

/** Compose's interpolation variables for one colour: images and ports (no secrets). */
export function colourEnv(env: Env, colour: Colour, images: Record<Service, string>): string {
  const ports = colourPorts(colour)
  return shellVars({
    COLOUR: colour,
    NETWORK: networkName(env),
    SITE_IMAGE: images.site,
    SAAS_IMAGE: images.saas,
    API_IMAGE: images.api,
    SITE_PORT: String(ports.site),
    SAAS_PORT: String(ports.saas),
    API_PORT: String(ports.api),
  })
}

/**
 * The data project's variables, passwords included: uploaded with mode 0600. A shell file, sourced
 * (`set -a; . data.env`) before Compose runs, never read by Compose's own .env parser: each value is
 * shell-quoted, so a `$`, ` #`, quote or space in a password reaches Postgres exactly as written.
 */
export function dataEnv(env: Env, secrets: Secrets): string {
  return shellVars({
    NETWORK: networkName(env),
    POSTGRES_IMAGE: env.images.postgres,
    REDIS_IMAGE: env.images.redis,
    POSTGRES_USER: DB_USER,
    POSTGRES_DB: DB_NAME,
    POSTGRES_PASSWORD: secrets.POSTGRES_PASSWORD ?? '',
    REDIS_PASSWORD: secrets.REDIS_PASSWORD ?? '',
    // The WAL spool on the host (compose/data.yaml mounts it at /wal-spool).
    WAL_SPOOL: walSpoolDir(env.name),
  })
}

/** `NAME=value` lines, each value shell-quoted: the variable files that `compose()` sources. */
export function shellVars(vars: Record<string, string>): string {
  return `${Object.entries(vars)
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join('\n')}\n`
}

/**
 * Redis's configuration: the password as `requirepass`, never on its command line (where `ps` and
 * `docker inspect` show it). Every byte is written as \xHH inside double quotes (Redis's own config
 * quoting), so no character of the password can end the string or change it.
 */
export function redisConf(secrets: Secrets): string {
  const hex = [...Buffer.from(secrets.REDIS_PASSWORD ?? '', 'utf8')]
    .map((b) => `\\x${b.toString(16).padStart(2, '0')}`)
    .join('')
  return [
    '# Managed by deploy (0644 inside a 0700 directory: readable in the container only).',
    `requirepass "${hex}"`,
    'appendonly yes',
    '',
  ].join('\n')
}

/** The variable each dependency's connection URL goes in (a swarm's Docker secret: its lower case). */
export const DEPENDENCY_VARS: Record<Dependency, string> = { database: 'DATABASE_URL', redis: 'REDIS_URL' }

/**
 * Each dependency's connection URL, its password URL-encoded (no quote left in it). `at`: the host both
 * run on (a swarm's data host); by default their Compose service names on the env's network.
 */
export function connectionUrls(secrets: Secrets, at?: string, login = DB_USER): Record<Dependency, string> {
  const pg = uriComponent(secrets.POSTGRES_PASSWORD ?? '')
  const redis = uriComponent(secrets.REDIS_PASSWORD ?? '')
  return {
    database: `postgres://${login}:${pg}@${at ?? 'postgres'}:5432/${DB_NAME}`,
    redis: `redis://:${redis}@${at ?? 'redis'}:6379/0`,
  }
}

/** `DATABASE_URL=...` lines of the given dependencies. */
export function urlVars(urls: Record<Dependency, string>, deps: readonly Dependency[]): string {
  return deps.map((d) => `${DEPENDENCY_VARS[d]}=${urls[d]}\n`).join('')
}

/** The migration's variables (`docker run --env-file`, the api image's migrate): mode 0600. */
export function appEnv(secrets: Secrets, login?: string): string {
  return urlVars(connectionUrls(secrets, undefined, login), DEPENDENCIES)
}

/** One service's env_file (mode 0600): the URLs of what services.<name>.uses says, and nothing else. */
export function serviceEnv(env: Env, service: Service, secrets: Secrets, login?: string): string {
  return urlVars(connectionUrls(secrets, undefined, login), env.services[service])
}

export function deployFiles(env: Env) {
  const { base, dataEnv } = remotePaths(env)
  return {
    dir: base,
    data: {
      compose: `${base}/data.yaml`,
      vars: dataEnv,
      project: projectName(env.name, 'data'),
      /** Redis's config (the password): data.yaml mounts ./redis/redis.conf. */
      redisDir: `${base}/redis`,
      redisConf: `${base}/redis/redis.conf`,
    },
    app: {
      compose: `${base}/app.yaml`,
      secrets: `${base}/app.env`,
      /** Each service's env_file (app.yaml): site.env, saas.env, api.env. */
      serviceEnv: (s: Service) => `${base}/${s}.env`,
    },
    colourVars: (c: Colour) => `${base}/${c}.env`,
  }
}

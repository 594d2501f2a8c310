import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { type Colour, colourPorts, projectName } from '../commands/compose.ts'
import { remotePaths } from '../env/host-paths.ts'
import type { Env, Service } from '../env/load.ts'
import type { Secrets } from '../env/secrets.ts'

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
  return [
    `COLOUR=${colour}`,
    `NETWORK=${networkName(env)}`,
    `SITE_IMAGE=${images.site}`,
    `SAAS_IMAGE=${images.saas}`,
    `API_IMAGE=${images.api}`,
    `SITE_PORT=${ports.site}`,
    `SAAS_PORT=${ports.saas}`,
    `API_PORT=${ports.api}`,
    '',
  ].join('\n')
}

/** The data project's variables, passwords included: uploaded with mode 0600. */
export function dataEnv(env: Env, secrets: Secrets): string {
  return [
    `NETWORK=${networkName(env)}`,
    `POSTGRES_IMAGE=${env.images.postgres}`,
    `REDIS_IMAGE=${env.images.redis}`,
    `POSTGRES_USER=${DB_USER}`,
    `POSTGRES_DB=${DB_NAME}`,
    `POSTGRES_PASSWORD=${secrets.POSTGRES_PASSWORD ?? ''}`,
    `REDIS_PASSWORD=${secrets.REDIS_PASSWORD ?? ''}`,
    '',
  ].join('\n')
}

/** The apps' secrets (env_file): uploaded with mode 0600. */
export function appEnv(secrets: Secrets): string {
  const pg = encodeURIComponent(secrets.POSTGRES_PASSWORD ?? '')
  const redis = encodeURIComponent(secrets.REDIS_PASSWORD ?? '')
  return [
    `DATABASE_URL=postgres://${DB_USER}:${pg}@postgres:5432/${DB_NAME}`,
    `REDIS_URL=redis://:${redis}@redis:6379/0`,
    '',
  ].join('\n')
}

export function deployFiles(env: Env) {
  const { base } = remotePaths(env)
  return {
    dir: base,
    data: { compose: `${base}/data.yaml`, vars: `${base}/data.env`, project: projectName(env.name, 'data') },
    app: { compose: `${base}/app.yaml`, secrets: `${base}/app.env` },
    colourVars: (c: Colour) => `${base}/${c}.env`,
  }
}

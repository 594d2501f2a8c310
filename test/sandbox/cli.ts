/**
 * The sandbox: throwaway Debian 12 "droplets" on the local Docker engine, the embedded default
 * environment (env/local.yaml) and the test bed.
 *
 *   tsx test/sandbox/cli.ts up [--droplets N]   start droplets web-1..N (default 1) and build fixture images
 *   tsx test/sandbox/cli.ts down                remove every sandbox container and network
 *   tsx test/sandbox/cli.ts urls                where the deployed stack answers
 *   tsx test/sandbox/cli.ts images              build (or find cached) images only
 */
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { resolve } from 'node:path'
import { loadEnv, SERVICES } from '../../lib/env/load.ts'
import { readSandboxDroplets, SANDBOX_DIR, SANDBOX_STATE } from '../../lib/env/sandbox-hosts.ts'
import { group, removeGroup, startDroplet, writeState } from './droplets.ts'
import { ensureDockerEngine } from './engine.ts'
import { buildFixtureImages } from './fixtures.ts'
import { buildDropletImage } from './images.ts'

const [command = 'up', ...rest] = process.argv.slice(2)
const count = Number(rest[rest.indexOf('--droplets') + 1] ?? 1) || 1

try {
  await ensureDockerEngine()
  if (command === 'up') {
    const image = await buildDropletImage()
    await buildFixtureImages()
    const g = group('sbx', SANDBOX_DIR)
    const droplets = []
    for (let i = 1; i <= count; i++) {
      const droplet = await startDroplet(g, `web-${i}`, image)
      droplets.push(droplet)
      process.stdout.write(
        `sandbox: ${droplet.name} up: ssh 127.0.0.1:${droplet.ports.ssh}, http 127.0.0.1:${droplet.ports.http}, ` +
          `https 127.0.0.1:${droplet.ports.https}, host key ${droplet.hostKey}\n`,
      )
    }
    writeState(SANDBOX_STATE, droplets)
    ensureLocalSecrets()
    process.stdout.write(`sandbox: state in ${SANDBOX_STATE} (env/local.yaml reads it)\n`)
  } else if (command === 'down') {
    await removeGroup()
    rmSync(SANDBOX_STATE, { force: true })
    process.stdout.write('sandbox: every sandbox container and network removed\n')
  } else if (command === 'urls') {
    await printUrls()
  } else if (command === 'images') {
    await buildDropletImage()
    await buildFixtureImages()
  } else {
    throw new Error(`unknown command "${command}": use up, down, urls or images`)
  }
} catch (err) {
  process.stderr.write(`sandbox: ${(err as Error).message}\n`)
  process.exit(1)
}

/** ENV=local needs no account: its secrets are random values made once, kept in a git-ignored file. */
function ensureLocalSecrets(): void {
  const file = resolve(import.meta.dirname, '..', '..', 'env', 'local.secrets.env')
  const have = existsSync(file) ? readFileSync(file, 'utf8') : ''
  const value = () => randomBytes(18).toString('base64url')
  const wanted: Record<string, () => string> = {
    POSTGRES_PASSWORD: value,
    REDIS_PASSWORD: value,
    // The backup key is 32 random bytes, base64 (what `openssl rand -base64 32` prints).
    BACKUP_KEY: () => randomBytes(32).toString('base64'),
  }
  const missing = Object.keys(wanted).filter((k) => !new RegExp(`^${k}=`, 'm').test(have))
  if (missing.length === 0) return
  const lines = missing.map((k) => `${k}=${wanted[k]?.()}\n`).join('')
  writeFileSync(file, `${have}${have && !have.endsWith('\n') ? '\n' : ''}${lines}`, { mode: 0o600 })
  process.stdout.write(`sandbox: wrote random ${missing.join(', ')} to ${file}\n`)
}

/** Where the deployed stack answers: each domain on the first droplet's published HTTP port. */
async function printUrls(): Promise<void> {
  const env = loadEnv('local')
  const droplet = readSandboxDroplets()[0]
  if (!droplet) throw new Error('the sandbox is not up: make sandbox')
  for (const service of SERVICES) {
    const host = env.domains[service]
    const version = await getVersion(droplet.ports.http, host)
    process.stdout.write(
      `  ${service.padEnd(5)} http://${host}:${droplet.ports.http}/  (release ${version})\n`,
    )
  }
}

/** GET /version from 127.0.0.1 with the domain as Host (no DNS needed for *.localhost). */
function getVersion(port: number, host: string): Promise<string> {
  return new Promise((done) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/version', headers: { Host: host }, timeout: 5000 },
      (res) => {
        let body = ''
        res.on('data', (c: Buffer) => (body += c.toString()))
        res.on('end', () => done(res.statusCode === 200 ? body.trim() : `HTTP ${res.statusCode}`))
      },
    )
    req.on('error', (e) => done(`not answering (${e.message})`))
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.end()
  })
}

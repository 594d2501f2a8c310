import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse as parseYaml, stringify } from 'yaml'
import { generateBackupKey } from '../../lib/backup/keys.ts'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { setSinks } from '../../lib/report/output.ts'
import { type RunbookSpec, runRunbook } from '../../lib/run/runbook.ts'
import { type DropletGroup, ensureRootKey, group, removeGroup, startDroplet } from '../sandbox/droplets.ts'
import { ensureDockerEngine, sh } from '../sandbox/engine.ts'
import { DATA_IMAGES } from '../sandbox/fixtures.ts'
import { buildDropletImage, buildProvisionedImage } from '../sandbox/images.ts'
import { S3RVER_SECRETS, type S3Server } from '../sandbox/s3.ts'

/** A test run's own droplets, network, env files and audit dir: created here, removed by cleanup(). */
export interface TestBed {
  group: DropletGroup
  envDir: string
  auditDir: string
  droplets: SandboxDroplet[]
  keyPath: string
  /** The checker account's key (ssh.checker of the managed envs). */
  checkerKeyPath: string
  /** The administrator's key (ssh.admin of the managed envs). */
  adminKeyPath: string
  /** This machine's address on the droplets' network: where the droplets see the operator coming from. */
  gateway: string
}

/**
 * A test run's droplets on a network of their own. `provisioned`: from the golden image (setup-server's
 * packages already installed, images.ts): for suites that set a droplet up before testing something else.
 */
export async function createTestBed(
  name: string,
  dropletNames: string[],
  opts: { image?: 'bare' | 'provisioned' } = {},
): Promise<TestBed> {
  await ensureDockerEngine()
  const image = opts.image === 'provisioned' ? await buildProvisionedImage() : await buildDropletImage()
  const dir = mkdtempSync(join(tmpdir(), `ce-${name}-`))
  const g = group(`t${process.pid}-${name}`, dir)
  const { privatePath, checkerPath, adminPath } = await ensureRootKey(dir)
  const droplets: SandboxDroplet[] = []
  for (const d of dropletNames) droplets.push(await startDroplet(g, d, image))
  const gateway = (
    await sh`docker network inspect -f ${'{{(index .IPAM.Config 0).Gateway}}'} ${g.network}`
  ).stdout.trim()
  const bed = {
    group: g,
    envDir: join(dir, 'env'),
    auditDir: join(dir, 'audit'),
    droplets,
    keyPath: privatePath,
    checkerKeyPath: checkerPath,
    adminKeyPath: adminPath,
    gateway,
  }
  mkdirSync(bed.envDir, { recursive: true })
  process.env.CE_ENV_DIR = bed.envDir
  process.env.AUDIT_DIR = bed.auditDir
  return bed
}

/** Writes env/<name>.yaml for the bed's droplets (overrides merge into the top level). */
export function writeEnv(bed: TestBed, name: string, overrides: Record<string, unknown> = {}): void {
  const env = {
    name,
    kind: 'local',
    branch: 'main',
    hosts: bed.droplets.map((d) => ({
      name: d.name,
      address: '127.0.0.1',
      ssh_port: d.ports.ssh,
      http_port: d.ports.http,
      scan_address: d.ip,
      host_key: d.hostKey,
    })),
    ssh: { user: 'root', key: { file: bed.keyPath }, connect_timeout_s: 10, command_timeout_s: 60 },
    domains: {
      site: 'conciliaextrato.localhost',
      saas: 'app.conciliaextrato.localhost',
      api: 'api.conciliaextrato.localhost',
    },
    images: {
      site: 'ce/site',
      saas: 'ce/saas',
      api: 'ce/api',
      postgres: 'ce/postgres',
      redis: 'ce/redis',
      delivery: 'ssh',
    },
    setup: { deploy_keys: [{ file: `${bed.keyPath}.pub` }], firewall: { http_from: 'anywhere' } },
    ...overrides,
  }
  writeFileSync(join(bed.envDir, `${name}.yaml`), stringify(env))
}

export const FIXTURE_DOMAINS = {
  site: 'conciliaextrato.localhost',
  saas: 'app.conciliaextrato.localhost',
  api: 'api.conciliaextrato.localhost',
}

/**
 * An env for droplets that setup-server manages: deploy logs in (root only to bootstrap), the
 * fixture stack's images and secrets, and this machine (the operator) never banned by fail2ban.
 */
/**
 * The env file's text as kind production: what such an env must have besides (lib/env/load.ts) is
 * added: an edge with origin pulls on (port 80 still serves, for the tests' plain-HTTP probes), a
 * deploy and alert target (a closed local port: sending fails, and is reported, not fatal), health.edge.
 */
export function asProduction(text: string): string {
  const doc = parseYaml(text) as Record<string, unknown>
  process.env.TEAM_WEBHOOK_URL ??= 'http://127.0.0.1:9/team'
  doc.kind = 'production'
  doc.confirm = true
  doc.edge = { zone: 'conciliaextrato.localhost', origin_pulls: 'on', http: 'serve', ...(doc.edge as object) }
  doc.notify = [
    ...((doc.notify as unknown[]) ?? []),
    { name: 'prod-team', type: 'json', url_secret: 'TEAM_WEBHOOK_URL', events: ['deploy', 'alert'] },
  ]
  doc.health = { ...(doc.health as object), edge: true }
  doc.secrets = [
    ...new Set([...((doc.secrets as string[]) ?? []), 'CLOUDFLARE_API_TOKEN', 'TEAM_WEBHOOK_URL']),
  ]
  return stringify(doc)
}

export function writeManagedEnv(bed: TestBed, name: string, overrides: Record<string, unknown> = {}): void {
  // What a password manager may produce: a `$`, ` #`, quotes. They must reach Postgres and Redis as written.
  process.env.POSTGRES_PASSWORD ??= `pg-s3cret with spaces $HOME #1 'q'`
  process.env.REDIS_PASSWORD ??= `redis-s3cret $USER #2 "d" 'q'`
  writeEnv(bed, name, {
    ssh: {
      user: 'deploy',
      bootstrap_user: 'root',
      key: { file: bed.keyPath },
      // health, status, uptime and releases log in as the read-only checker, as on staging and production.
      checker: { user: 'ce-check', key: { file: bed.checkerKeyPath } },
      // setup-server's login on a set-up host, as on staging and production: the deploy user's sudo
      // is then only the runbooks' root commands (setup.deploy_sudo: runbooks).
      admin: { user: 'ce-admin', key: { file: bed.adminKeyPath } },
      connect_timeout_s: 10,
      command_timeout_s: 900,
    },
    domains: FIXTURE_DOMAINS,
    // Merged: an override adds settings (keep_releases) to the fixture's images, it does not replace them.
    images: {
      site: 'conciliaextrato/site',
      saas: 'conciliaextrato/saas',
      api: 'conciliaextrato/api',
      ...DATA_IMAGES,
      delivery: 'ssh',
      ...(overrides.images as object | undefined),
    },
    secrets: ['POSTGRES_PASSWORD', 'REDIS_PASSWORD'],
    setup: {
      deploy_keys: [{ file: `${bed.keyPath}.pub` }],
      deploy_sudo: 'runbooks',
      fail2ban_ignore: [`${bed.gateway}/32`],
      firewall: { http_from: 'anywhere' },
    },
    ...Object.fromEntries(Object.entries(overrides).filter(([k]) => k !== 'images')),
  })
}

/**
 * A swarm env on the bed's droplets: the first is the manager, the last the data host, the others
 * workers; each reached by the others on its address on the droplets' network (a VPC's, in production).
 * The overlay is not encrypted: this machine's kernel has no ESP (IPsec) support (see README).
 */
export function writeSwarmEnv(bed: TestBed, name: string, overrides: Record<string, unknown> = {}): void {
  const last = bed.droplets.length - 1
  writeManagedEnv(bed, name, {
    hosts: bed.droplets.map((d, i) => ({
      name: d.name,
      address: '127.0.0.1',
      ssh_port: d.ports.ssh,
      host_key: d.hostKey,
      private_address: d.ip,
      roles: i === last ? ['data'] : [i === 0 ? 'manager' : 'worker', 'web'],
    })),
    swarm: { encrypted_overlay: false, update_delay_s: 1, monitor_s: 5 },
    health: { path: '/health', timeout_s: 20 },
    ...overrides,
  })
}

/** The store config of a bucket on s3rver (the stand-in for DigitalOcean Spaces). */
export function s3StoreConfig(s3: S3Server, prefix: string) {
  return { type: 's3', endpoint: s3.endpoint, region: 'us-east-1', bucket: 'ce-backups', prefix } as const
}

/** A managed env whose backups go to s3rver, with a fresh BACKUP_KEY and the s3rver credentials. */
export function writeS3BackupEnv(bed: TestBed, name: string, s3: S3Server, prefix: string): void {
  process.env.BACKUP_KEY = generateBackupKey()
  Object.assign(process.env, S3RVER_SECRETS)
  writeManagedEnv(bed, name, {
    health: { path: '/health', timeout_s: 20 },
    secrets: [
      'POSTGRES_PASSWORD',
      'REDIS_PASSWORD',
      'BACKUP_KEY',
      'SPACES_ACCESS_KEY_ID',
      'SPACES_SECRET_ACCESS_KEY',
    ],
    backup: { store: s3StoreConfig(s3, prefix), keep: { daily: 7, weekly: 4, monthly: 12 } },
  })
}

export async function destroyTestBed(bed: TestBed | undefined): Promise<void> {
  // KEEP_TEST_BED=1 leaves the droplets up to look at after a failure (make sandbox-down removes them).
  if (bed && !process.env.KEEP_TEST_BED) await removeGroup(bed.group.id)
}

/** GET on 127.0.0.1:<port> (a droplet's published nginx) with a domain's Host header. */
export function getThrough(
  port: number,
  host: string,
  path: string,
): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { Host: host }, timeout: 5000 }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString()))
      res.on('end', () => done({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', fail)
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.end()
  })
}

/** Runs a runbook in-process and captures everything it prints. */
export async function runCaptured(spec: RunbookSpec, args: string[]): Promise<{ code: number; out: string }> {
  let out = ''
  setSinks((t) => {
    out += t
  })
  try {
    const code = await runRunbook(spec, args)
    return { code, out }
  } finally {
    setSinks(
      (t) => process.stdout.write(t),
      (t) => process.stderr.write(t),
    )
  }
}

export function auditRecords(bed: TestBed): Record<string, unknown>[] {
  return readFileSync(join(bed.auditDir, 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

export async function onDroplet(d: SandboxDroplet, script: string): Promise<string> {
  return (await sh`docker exec ${d.container} bash -c ${script}`).stdout
}

const ROOT = join(import.meta.dirname, '..', '..')

/**
 * Runs a script as its own process, as a person or CI would (so signals and crashes are real), and
 * collects what it prints. `until(text)` resolves once it printed `text`, and fails if it exits first.
 */
export function spawnScript(script: string, args: string[]) {
  // node itself with tsx's loader, not the tsx CLI: the CLI runs the script in a child node process,
  // so a SIGKILL sent to it left the script running (a "killed" setup-server raced its own re-run).
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const waiting: { text: string; done: () => void }[] = []
  const collect = (b: Buffer) => {
    output += b.toString()
    for (const w of waiting) if (output.includes(w.text)) w.done()
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  const exit = new Promise<number | null>((done) => child.on('exit', (code) => done(code)))
  const until = (text: string) =>
    Promise.race([
      new Promise<void>((done) => {
        waiting.push({ text, done })
        if (output.includes(text)) done()
      }),
      exit.then((code) => {
        throw new Error(`${script} exited (${code}) before it printed "${text}":\n${output}`)
      }),
    ])
  return { child, output: () => output, until, exit }
}

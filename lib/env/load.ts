import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parse as parseYaml, YAMLParseError } from 'yaml'
import { InputError } from '../report/errors.ts'
import { type AdminConfig, readAdmin } from './admin.ts'
import { type BackupConfig, readBackup } from './backup.ts'
import { type CheckerConfig, readChecker } from './checker.ts'
import { type DropletConfig, readDroplet } from './droplet.ts'
import { type EdgeConfig, readEdge } from './edge.ts'
import { type ErrorTrackingConfig, readErrorTracking } from './error-tracking.ts'
import {
  type AlertsConfig,
  type HealthConfig,
  readAlerts,
  readHealth,
  readWatchdog,
  type WatchdogConfig,
} from './health.ts'
import { type HeartbeatConfig, readHeartbeat } from './heartbeat.ts'
import { readKeySource, SECRET_NAME } from './key-source.ts'
import { type NotifyTarget, notifySecretNames, readNotify } from './notify.ts'
import { applyOverride, OVERRIDE_VAR } from './override.ts'
import { type OutsideView, type PromoteFrom, readOutsideView, readPromoteFrom } from './promote.ts'
import { type RollbackConfig, readRollback } from './rollback.ts'
import { readSandboxDroplets } from './sandbox-hosts.ts'
import { AGE_RECIPIENT } from './secrets-age.ts'
import { readSecurity, type SecurityConfig } from './security.ts'
import { readServices, type ServiceUses } from './services.ts'
import { readSetup, type SetupConfig } from './setup.ts'
import { readStatusPage, type StatusPageConfig, statusPageSecrets } from './status-page.ts'
import { checkRoles, readSwarm, type SwarmConfig } from './swarm.ts'
import type { EnvKind, Host, RegistryConfig, Service, SshKeySource } from './terms.ts'
import { SERVICES } from './terms.ts'
import { Validator } from './validate.ts'

export * from './terms.ts'

export interface Env {
  name: string
  file: string
  kind: EnvKind
  branch: string
  /** Ask a person to confirm before a runbook changes anything. */
  confirm: boolean
  hosts: Host[]
  ssh: {
    user: string
    bootstrapUser: string
    key: SshKeySource
    connectTimeoutS: number
    commandTimeoutS: number
    /** The read-only login of health, status, uptime and releases (absent: they log in as `user`). */
    checker?: CheckerConfig
    /** The administrator's login of setup-server on a set-up host (absent: the deploy user with sudo). */
    admin?: AdminConfig
  }
  domains: Record<Service, string>
  /** What each app service connects to: it gets only those connection URLs (services.<name>.uses). */
  services: ServiceUses
  images: Record<Service | 'postgres' | 'redis', string> & {
    delivery: 'registry' | 'ssh'
    /** After a deploy, the app images of this many newest live releases stay on the hosts (prune-images.ts). */
    keepReleases: number
    registry?: RegistryConfig
  }
  health: HealthConfig
  /** How long the previous release keeps running after a deploy (an instant rollback inside it). */
  rollback: RollbackConfig
  /** make security-scan's thresholds (defaults when the env file has no security: section). */
  security: SecurityConfig
  watchdog: WatchdogConfig
  alerts: AlertsConfig
  /** Secret names the env needs; values come from secrets.ts. */
  secrets: string[]
  /**
   * Who can read env/<name>.secrets.age (age public keys). Set (even empty): the secrets are kept
   * encrypted and a plaintext env/<name>.secrets.env is refused. Absent: plaintext (the sandbox).
   */
  secretsRecipients?: string[]
  setup: SetupConfig
  notify: NotifyTarget[]
  /** Absent: no dead man's switch (the watchdog and the scheduled jobs ping nothing). */
  heartbeat?: HeartbeatConfig
  /** Absent: this env has no backups configured (backup and restore say so). */
  backup?: BackupConfig
  /** Absent: no Cloudflare in front (the sandbox): nginx serves plain HTTP on port 80 only. */
  edge?: EdgeConfig
  /** Absent: `make emergency CREATE=1` cannot create a droplet for this env (HOST= still works). */
  droplet?: DropletConfig
  /** Every host of the env file, when HOST=<name> narrowed `hosts` to one (a swarm node needs its peers). */
  allHosts?: Host[]
  /** Absent: one host runs everything (blue/green with Compose). Present: a Docker Swarm stack. */
  swarm?: SwarmConfig
  /** Releases go live here only as they went live on that env (production: staging). */
  promoteFrom?: PromoteFrom
  /** Where make uptime reads this env's outside view: the env whose watchdog watches it. */
  outsideView?: OutsideView
  /** Where make status-page publishes the public status page. */
  statusPage?: StatusPageConfig
  /** Deploys and rollbacks create the release and a deploy marker there (Sentry-compatible). */
  errorTracking?: ErrorTrackingConfig
  /** The override file (CE_ENV_OVERRIDE) that pointed this env at other machines, if any. */
  overridden?: string
}

/** env/ of this repository; CE_ENV_DIR (read at each call) points tests at env files of their own droplets. */
export function envDir(): string {
  return resolve(process.env.CE_ENV_DIR ?? resolve(import.meta.dirname, '..', '..', 'env'))
}
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$/
const ADDRESS = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+|[a-z0-9.-]+)$/
const NAME = /^[a-z][a-z0-9-]{0,30}$/
const IMAGE = /^[a-z0-9][a-z0-9._/:-]*[a-z0-9]$/

export function listEnvs(dir = envDir()): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.replace(/\.yaml$/, ''))
    .sort()
}

/** Loads env/<name>.yaml and validates every field, reporting all problems at once. */
export function loadEnv(name: string | undefined, dir = envDir()): Env {
  const known = listEnvs(dir)
  if (!name) {
    throw new InputError(
      `ENV is required (there is no default, so production is never hit by accident).`,
      [`environments in ${dir}: ${known.join(', ') || 'none'}`],
      'Run it again with ENV=<name>, e.g. ENV=local.',
    )
  }
  const file = join(dir, `${name}.yaml`)
  if (!/^[a-z][a-z0-9-]*$/.test(name) || !existsSync(file)) {
    throw new InputError(
      `Unknown environment "${name}": there is no ${file}.`,
      [`environments that exist: ${known.join(', ') || 'none'}`],
      'Pick one of those, or add env/<name>.yaml.',
    )
  }
  let raw: unknown
  try {
    raw = parseYaml(readFileSync(file, 'utf8'))
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}` : ''
    throw new InputError(`${file}: not valid YAML${where}: ${(err as Error).message.split('\n')[0]}`)
  }
  // `{env}` in the path: one override file per env (the rehearsal's production and its staging twin).
  const override = process.env[OVERRIDE_VAR]?.replaceAll('{env}', name)
  if (!override) return validateEnv(raw, name, file)
  return { ...validateEnv(applyOverride(raw, file, override), name, file), overridden: override }
}

export function validateEnv(raw: unknown, name: string, file: string): Env {
  const v = new Validator(file)
  const top = v.object(raw, '', [
    'name',
    'kind',
    'branch',
    'confirm',
    'hosts',
    'ssh',
    'domains',
    'images',
    'health',
    'watchdog',
    'alerts',
    'secrets',
    'secrets_recipients',
    'setup',
    'notify',
    'heartbeat',
    'backup',
    'edge',
    'droplet',
    'swarm',
    'promote_from',
    'outside_view',
    'status_page',
    'error_tracking',
    'services',
    'rollback',
    'security',
  ])
  const envName = v.string(top, 'name', '', { pattern: /^[a-z][a-z0-9-]*$/, form: 'the environment name' })
  if (envName && envName !== name)
    v.problem('name', `is "${envName}" but the file is ${name}.yaml; they must match`)
  const kind = v.string(top, 'kind', '', { oneOf: ['production', 'staging', 'local'] }) as EnvKind | undefined
  const branch = v.string(top, 'branch', '', { pattern: /^[A-Za-z0-9._/-]+$/, form: 'a git branch name' })
  const confirm = v.boolean(top, 'confirm', '', kind === 'production')
  if (kind === 'production' && !confirm)
    v.problem('confirm', 'production must ask for confirmation; remove this line')

  const hosts = v.list(top, 'hosts', '', { min: 1 }).map((h, i) => readHost(v, h, `hosts[${i}]`))
  const names = hosts.map((h) => h?.name).filter(Boolean)
  for (const dup of new Set(names.filter((n, i) => names.indexOf(n) !== i)))
    v.problem('hosts', `host name "${dup}" is used twice`)

  const ssh = v.object(top?.ssh ?? {}, 'ssh', [
    'user',
    'bootstrap_user',
    'key',
    'connect_timeout_s',
    'command_timeout_s',
    'checker',
    'admin',
  ])
  const secrets = v.stringList(top, 'secrets', '', {
    optional: true,
    pattern: SECRET_NAME,
    form: 'an UPPER_CASE secret name',
  })
  const secretsRecipients =
    top && 'secrets_recipients' in top
      ? v.stringList(top, 'secrets_recipients', '', {
          optional: true,
          pattern: AGE_RECIPIENT,
          form: "an age public key (age1..., from age-keygen -y or make secrets-edit's message)",
        })
      : undefined
  const keySource = readKeySource(v, ssh?.key ?? {}, 'ssh.key', { agent: true, secrets })
  const domainsObj = v.object(top?.domains, 'domains', [...SERVICES])
  const images = v.object(top?.images, 'images', [
    ...SERVICES,
    'postgres',
    'redis',
    'delivery',
    'registry',
    'keep_releases',
  ])

  const backup = readBackup(v, top?.backup, file)
  const edge = readEdge(v, top?.edge, file)
  const heartbeat = readHeartbeat(v, top?.heartbeat, kind)
  const droplet = readDroplet(v, top?.droplet, name)
  const swarm = readSwarm(v, top?.swarm)
  const promoteFrom = readPromoteFrom(v, top?.promote_from, secrets, name)
  const outsideView = readOutsideView(v, top?.outside_view, secrets, name)
  const statusPage = readStatusPage(v, top?.status_page, file)
  const errorTracking = readErrorTracking(v, top?.error_tracking)
  const env = {
    name,
    file,
    kind: kind ?? 'local',
    branch: branch ?? '',
    confirm,
    hosts: hosts.filter((h): h is Host => h !== undefined),
    ssh: {
      user:
        v.string(ssh, 'user', 'ssh', {
          default: 'deploy',
          pattern: /^[a-z_][a-z0-9_-]*$/,
          form: 'a unix user name',
        }) ?? '',
      bootstrapUser:
        v.string(ssh, 'bootstrap_user', 'ssh', { default: 'root', pattern: /^[a-z_][a-z0-9_-]*$/ }) ?? '',
      key: keySource,
      connectTimeoutS: v.integer(ssh, 'connect_timeout_s', 'ssh', { min: 1, max: 300, default: 15 }) ?? 15,
      commandTimeoutS: v.integer(ssh, 'command_timeout_s', 'ssh', { min: 1, max: 7200, default: 600 }) ?? 600,
      checker: undefined as CheckerConfig | undefined,
      admin: undefined as AdminConfig | undefined,
    },
    domains: Object.fromEntries(
      SERVICES.map((s) => [
        s,
        v.string(domainsObj, s, 'domains', { pattern: HOSTNAME, form: 'a DNS name like app.example.com' }) ??
          '',
      ]),
    ) as Record<Service, string>,
    images: {
      ...(Object.fromEntries(
        [...SERVICES, 'postgres', 'redis'].map((s) => [
          s,
          v.string(images, s, 'images', { pattern: IMAGE, form: 'an image name like ghcr.io/org/site' }) ??
            '',
        ]),
      ) as Record<Service | 'postgres' | 'redis', string>),
      delivery: (v.string(images, 'delivery', 'images', {
        oneOf: ['registry', 'ssh'],
        default: 'registry',
      }) ?? 'registry') as 'registry' | 'ssh',
      keepReleases: v.integer(images, 'keep_releases', 'images', { min: 2, max: 100, default: 5 }) ?? 5,
      ...readRegistry(v, images?.registry, top?.secrets),
    },
    services: readServices(v, top?.services),
    health: readHealth(v, top?.health),
    rollback: readRollback(v, top?.rollback),
    security: readSecurity(v, top?.security),
    watchdog: readWatchdog(v, top?.watchdog),
    alerts: readAlerts(v, top?.alerts),
    secrets,
    ...(secretsRecipients ? { secretsRecipients } : {}),
    setup: readSetup(v, top?.setup, file),
    notify: readNotify(v, top?.notify),
    ...(heartbeat ? { heartbeat } : {}),
    ...(backup ? { backup } : {}),
    ...(edge ? { edge } : {}),
    ...(droplet ? { droplet } : {}),
    ...(swarm ? { swarm } : {}),
    ...(promoteFrom ? { promoteFrom } : {}),
    ...(outsideView ? { outsideView } : {}),
    ...(statusPage ? { statusPage } : {}),
    ...(errorTracking ? { errorTracking } : {}),
  } satisfies Env
  checkRoles(v, env.hosts, swarm)
  env.ssh.checker = readChecker(v, ssh?.checker, secrets, env.ssh)
  env.ssh.admin = readAdmin(v, ssh?.admin, secrets, env.ssh)
  if (env.setup.deploySudo !== 'all' && !env.ssh.admin && env.ssh.user !== 'root')
    v.problem(
      'setup.deploy_sudo',
      'without sudo for everything, the deploy user cannot run setup-server on a set-up host (root login is off): add ssh.admin (its user and its own key), or keep deploy_sudo: all',
    )
  for (const name of notifySecretNames(env.notify)) {
    if (!secrets.includes(name)) v.problem('notify', `${name} must also be listed under secrets`)
  }
  for (const name of env.setup.deployKeySecrets)
    if (!secrets.includes(name))
      v.problem('setup.deploy_keys', `of_secret ${name} must also be listed under secrets`)
  const heartbeatSecrets: [string, string][] = heartbeat
    ? [
        ['ping_url_secret', heartbeat.pingUrlSecret],
        ['api_key_secret', heartbeat.apiKeySecret],
      ]
    : []
  for (const [field, name] of heartbeatSecrets)
    if (!secrets.includes(name)) v.problem(`heartbeat.${field}`, `${name} must also be listed under secrets`)
  if (envName && env.watchdog.watch.includes(envName))
    v.problem('watchdog.watch', `names ${envName} itself: an env is watched from outside by another env`)
  if (errorTracking && !secrets.includes(errorTracking.tokenSecret))
    v.problem('error_tracking.token_secret', `${errorTracking.tokenSecret} must also be listed under secrets`)
  for (const name of statusPageSecrets(statusPage))
    if (!secrets.includes(name)) v.problem('status_page.store', `${name} must also be listed under secrets`)
  if (edge && !secrets.includes(edge.tokenSecret))
    v.problem('edge.token_secret', `${edge.tokenSecret} must also be listed under secrets`)
  if (droplet && !secrets.includes(droplet.tokenSecret))
    v.problem('droplet.token_secret', `${droplet.tokenSecret} must also be listed under secrets`)
  for (const name of backup?.secretNames ?? []) {
    if (!secrets.includes(name)) v.problem('backup', `${name} must also be listed under secrets`)
  }
  if (kind === 'staging' || kind === 'production') checkServesPublicly(v, kind, env, top)
  if (v.problems.length) {
    throw new InputError(
      `${file} has ${v.problems.length} problem(s):`,
      v.problems,
      `Fix ${file} and run again.`,
    )
  }
  return env
}

/**
 * A staging or production env serves the public: Cloudflare in front with strict TLS and origin pulls,
 * someone told of deploys and alerts, and the edge checked from outside. Each missing piece is named.
 */
function checkServesPublicly(
  v: Validator,
  kind: EnvKind,
  env: Env,
  raw: Record<string, unknown> | undefined,
): void {
  const why = `a ${kind} env serves the public`
  if (!env.edge)
    v.problem(
      'edge',
      `missing: ${why} through Cloudflare; add edge: (zone, ssl: strict, origin_pulls: on; see env/production.yaml)`,
    )
  else {
    if (env.edge.ssl !== 'strict')
      v.problem('edge.ssl', `must be strict: ${why} (full accepts any origin certificate)`)
    if (env.edge.originPulls !== 'on')
      v.problem(
        'edge.origin_pulls',
        `must be on: ${why} (else anyone who finds the droplet's address bypasses Cloudflare)`,
      )
  }
  for (const event of ['deploy', 'alert'])
    if (!env.notify.some((t) => t.events.includes(event)))
      v.problem(
        'notify',
        `no target takes ${event} events: ${why}, someone must hear of each ${event}; add one`,
      )
  const health = raw?.health as Record<string, unknown> | undefined
  if (!env.health.edge)
    v.problem(
      'health.edge',
      `${health?.edge === false ? 'is false' : 'missing'}: ${why}; set health.edge: true so DNS and the edge certificate are checked`,
    )
}

function readHost(v: Validator, raw: unknown, path: string): Host | undefined {
  const h = v.object(raw, path, [
    'name',
    'address',
    'private_address',
    'ssh_port',
    'http_port',
    'scan_address',
    'host_key',
    'roles',
    'sandbox',
  ])
  if (!h) return undefined
  const name = v.string(h, 'name', path, { pattern: NAME, form: 'a short lower-case name like web-1' })
  const roles = v.stringList(h, 'roles', path, {
    optional: true,
    oneOf: ['web', 'data', 'manager', 'worker'],
  })
  if (h.sandbox === true && name) return sandboxHost(v, name, path, roles)
  const address = v.string(h, 'address', path, { pattern: ADDRESS, form: 'an IP address or DNS name' })
  const sshPort = v.integer(h, 'ssh_port', path, { min: 1, max: 65535, default: 22 })
  // Where this machine reaches the host's port 80 (make loadtest on an env without an edge), if not 80.
  const httpPort =
    h.http_port === undefined ? undefined : v.integer(h, 'http_port', path, { min: 1, max: 65535 })
  const hostKey = v.string(h, 'host_key', path, {
    pattern: FINGERPRINT,
    form: 'the SHA256 host key fingerprint as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints it (SHA256:...)',
  })
  const privateAddress = v.string(h, 'private_address', path, {
    optional: true,
    pattern: ADDRESS,
    form: 'the address the other hosts reach it on (the VPC IP)',
  })
  const scanAddress = v.string(h, 'scan_address', path, {
    optional: true,
    pattern: ADDRESS,
    form: "the host's own public address, where an outside port scan goes",
  })
  if (!name || !address || !sshPort || !hostKey) return undefined
  return {
    name,
    address,
    sshPort,
    ...(httpPort ? { httpPort } : {}),
    ...(scanAddress ? { scanAddress } : {}),
    hostKey,
    roles: roles.length ? roles : ['web', 'data'],
    ...(privateAddress ? { privateAddress } : {}),
  }
}

/** A host that lives in the local sandbox: its address, port and key come from the sandbox state. */
function sandboxHost(v: Validator, name: string, path: string, roles: string[]): Host | undefined {
  const droplet = readSandboxDroplets().find((d) => d.name === name)
  if (!droplet) {
    v.problem(path, `sandbox droplet "${name}" is not running; start it with \`make sandbox\``)
    return undefined
  }
  return {
    name,
    address: '127.0.0.1',
    sshPort: droplet.ports.ssh,
    httpPort: droplet.ports.http,
    hostKey: droplet.hostKey,
    roles: roles.length ? roles : ['web', 'data'],
    // The droplets reach each other on the sandbox network, as droplets do on a VPC.
    privateAddress: droplet.ip,
    // Its published ports are on this machine's loopback: the port scan goes to the container itself.
    scanAddress: droplet.ip,
  }
}

function readRegistry(v: Validator, raw: unknown, secretList: unknown): { registry?: RegistryConfig } {
  if (raw === undefined) return {}
  const reg = v.object(raw, 'images.registry', ['server', 'username', 'password_secret', 'insecure'])
  const server =
    v.string(reg, 'server', 'images.registry', {
      pattern: /^[a-z0-9.-]+(:\d{1,5})?$/i,
      form: 'a registry host[:port] like ghcr.io',
    }) ?? ''
  const username = v.string(reg, 'username', 'images.registry', { optional: true })
  const passwordSecret = v.string(reg, 'password_secret', 'images.registry', {
    optional: true,
    pattern: SECRET_NAME,
    form: 'a secret NAME like GHCR_TOKEN',
  })
  if (Boolean(username) !== Boolean(passwordSecret))
    v.problem('images.registry', 'set both username and password_secret, or neither (anonymous pulls)')
  if (passwordSecret && !(Array.isArray(secretList) && secretList.includes(passwordSecret)))
    v.problem('images.registry.password_secret', `${passwordSecret} must also be listed under secrets`)
  return {
    registry: {
      server,
      ...(username ? { username } : {}),
      ...(passwordSecret ? { passwordSecret } : {}),
      insecure: v.boolean(reg, 'insecure', 'images.registry', false),
    },
  }
}

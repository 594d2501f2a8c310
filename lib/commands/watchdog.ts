import type { AlertRules, WatchdogConfig } from '../env/health.ts'
import { heartbeatSlug } from '../env/heartbeat.ts'
import { remotePaths } from '../env/host-paths.ts'
import { type Env, SERVICES } from '../env/load.ts'
import type { NotifyTarget } from '../env/notify.ts'
import { COLOURS, type Colour, projectName } from './compose.ts'
import { ownerModeIs } from './files.ts'
import { upstreamsPath } from './nginx.ts'
import { quote } from './shell.ts'

// The host watchdog: where its pieces live, its systemd units and its config file. Pure: strings only.
export const WATCHDOG_BUNDLE = '/usr/local/lib/conciliaextrato/watchdog.mjs'
export const NODE_BIN = '/usr/bin/node'
/** Node 18 is the oldest the bundle targets (global fetch, fs.statfs): Debian 12 and Ubuntu 24.04 ship it. */
export const NODE_MIN_MAJOR = 18
export const HEALTH_LOG_DIR = '/var/log/conciliaextrato/health'
export const HEALTH_LOGROTATE_PATH = '/etc/logrotate.d/conciliaextrato-health'

export const watchdogConfigPath = (env: string) => `/etc/conciliaextrato/watchdog-${env}.json`
export const watchdogStateDir = (env: string) => `/var/lib/conciliaextrato/watchdog/${env}`
/** One JSON line per check per run: {at, source, host, check, ok, ms?, detail}. Uptime is computed from it. */
export const healthHistoryPath = (env: string) => `${HEALTH_LOG_DIR}/${env}.jsonl`
export const watchdogUnit = (env: string, kind: 'service' | 'timer') =>
  `conciliaextrato-watchdog@${env}.${kind}`
export const unitPath = (env: string, kind: 'service' | 'timer') =>
  `/etc/systemd/system/${watchdogUnit(env, kind)}`

/** What the watchdog reads on each run: mode 0600 root, as it holds the alert webhooks' URLs. */
export interface WatchdogFile {
  version: 1
  env: string
  /** The host's name in the env file: alerts and history say it. */
  host: string
  domains: string[]
  healthPath: string
  httpTimeoutS: number
  diskMinFreePct: number
  memMinFreePct: number
  watchdog: WatchdogConfig
  alerts: AlertRules
  projects: { data: string } & Record<Colour, string>
  /** deploy's upstreams file: its first line names the live colour. */
  upstreamsFile: string
  /** The deploy lock's directory and the maintenance flag: while either is on, containers are left alone. */
  lockDir: string
  maintenanceFile: string
  /** The previous colour kept running after a deploy, and until when (absent in older configs). */
  idleColourFile?: string
  stateDir: string
  historyFile: string
  /** The app's database, where each run writes a point-in-time canary row (absent in older configs). */
  postgres?: { user: string; db: string }
  /** The env's notify targets that take 'alert' events, and their URLs by secret name. */
  targets: NotifyTarget[]
  urls: Record<string, string>
  /** Another env's domains, probed from here as a visitor reaches them (watchdog.watch; absent: none). */
  outside?: OutsideTarget[]
  /**
   * Error tracking: the app containers' error lines grouped by signature, alerted when new or when the
   * live release's rate jumps (lib/watchdog/error-signatures.ts); the release record names the release.
   * Absent in configs written before it: none.
   */
  errors?: { releasesFile: string; rules: ErrorRules }
  /** The dead man's switch: each run pings <urls[secret]>/<slug> (absent: no heartbeat:). */
  heartbeat?: { secret: string; slug: string }
}

/** Error tracking's thresholds (lib/watchdog/error-signatures.ts applies them). */
export interface ErrorRules {
  /** The live release's rate past this many times its predecessor's is a jump. */
  rateFactor: number
  /** ...and at least this many error lines in the run's window (a few lines are no trend). */
  minLines: number
  /** Minutes of watching before a release's rate is a baseline. */
  baselineMin: number
}

export const DEFAULT_ERROR_RULES: ErrorRules = { rateFactor: 3, minLines: 10, baselineMin: 10 }

/**
 * One of another env's domains as a visitor reaches it: with an edge, https://<domain><health.path>
 * through DNS (the peer's health.edge_resolver when set: the sandbox's) and its certificate checked;
 * without one (a sandbox env), http:// to its web host. The check is outside:<env>/<domain>.
 */
export interface OutsideTarget {
  check: string
  url: string
  /** Connect here instead of resolving the name (a peer without an edge). */
  connect?: string
  /** host:port of the DNS server to resolve the name with (else the system's). */
  resolver?: string
}

export function outsideTargets(peer: Env): OutsideTarget[] {
  const web = peer.hosts.find((h) => h.roles.includes('web')) ?? peer.hosts[0]
  return SERVICES.map((s) => peer.domains[s]).map((domain) => ({
    check: `outside:${peer.name}/${domain}`,
    url: `${peer.edge ? 'https' : 'http'}://${domain}${peer.health.path}`,
    ...(peer.edge ? {} : { connect: web?.privateAddress ?? web?.address ?? domain }),
    ...(peer.edge && peer.health.edgeResolver ? { resolver: peer.health.edgeResolver } : {}),
  }))
}

export function watchdogFile(
  env: Env,
  host: string,
  secrets: Readonly<Record<string, string>>,
  postgres?: WatchdogFile['postgres'],
  peers: Env[] = [],
): WatchdogFile {
  const targets = env.notify
    .filter((t) => t.events.includes('alert'))
    .map((t) => ({ ...t, events: ['alert'] }))
  const hb = env.heartbeat
    ? { secret: env.heartbeat.pingUrlSecret, slug: heartbeatSlug(env.name, 'watchdog') }
    : undefined
  return {
    version: 1,
    env: env.name,
    host,
    domains: SERVICES.map((s) => env.domains[s]),
    healthPath: env.health.path,
    // A run every interval_s: no single request may take most of it.
    httpTimeoutS: Math.min(env.health.timeoutS, 10),
    diskMinFreePct: env.health.diskMinFreePct,
    memMinFreePct: env.health.memMinFreePct,
    watchdog: env.watchdog,
    alerts: { failureThreshold: env.alerts.failureThreshold, reminderMin: env.alerts.reminderMin },
    projects: {
      data: projectName(env.name, 'data'),
      ...(Object.fromEntries(COLOURS.map((c) => [c, projectName(env.name, c)])) as Record<Colour, string>),
    },
    upstreamsFile: upstreamsPath(env.name),
    lockDir: remotePaths(env).lock,
    errors: { releasesFile: remotePaths(env).releases, rules: DEFAULT_ERROR_RULES },
    maintenanceFile: remotePaths(env).maintenance,
    idleColourFile: remotePaths(env).idleColour,
    stateDir: watchdogStateDir(env.name),
    historyFile: healthHistoryPath(env.name),
    ...(postgres ? { postgres } : {}),
    targets,
    urls: Object.fromEntries(
      [...targets.map((t) => t.secret), ...(hb ? [hb.secret] : [])].map((s) => [s, secrets[s] ?? '']),
    ),
    ...(hb ? { heartbeat: hb } : {}),
    ...(peers.length ? { outside: peers.flatMap(outsideTargets) } : {}),
  }
}

export function watchdogConfigContent(file: WatchdogFile): string {
  return `${JSON.stringify(file, null, 2)}\n`
}

/**
 * The watchdog runs as root (it reads the docker socket and the 0600 config) but may change nothing
 * beyond its state and history: of root's capabilities only the two that let it read deploy's 0750
 * directories (the lock, /var/log/conciliaextrato) and write its own, the file system read-only but
 * those two directories, no devices, kernel knobs, namespaces or SUID, only the socket
 * families it uses (the docker socket and D-Bus: AF_UNIX; checks and webhooks: AF_INET/6) and the
 * system calls of an ordinary service. Not MemoryDenyWriteExecute: Node's JIT writes code.
 */
export const WATCHDOG_SANDBOX = (env: string): string[] => [
  'NoNewPrivileges=yes',
  'CapabilityBoundingSet=CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH',
  'AmbientCapabilities=',
  'PrivateTmp=yes',
  'PrivateDevices=yes',
  'ProtectSystem=strict',
  `ReadWritePaths=-${watchdogStateDir(env)} -${HEALTH_LOG_DIR}`,
  'ProtectHome=yes',
  'ProtectKernelTunables=yes',
  'ProtectKernelModules=yes',
  'ProtectKernelLogs=yes',
  'ProtectControlGroups=yes',
  'ProtectClock=yes',
  'ProtectHostname=yes',
  'RestrictNamespaces=yes',
  'RestrictRealtime=yes',
  'RestrictSUIDSGID=yes',
  'LockPersonality=yes',
  'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6',
  'SystemCallArchitectures=native',
  'SystemCallFilter=@system-service',
  'SystemCallErrorNumber=EPERM',
  'UMask=0027',
]

export function watchdogService(env: string, intervalS: number): string {
  return [
    '# Managed by setup-server: one run of the watchdog (its timer starts it).',
    '[Unit]',
    `Description=ConciliaExtrato watchdog for env ${env}: checks, restarts, alerts`,
    'After=docker.service nginx.service',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${NODE_BIN} ${WATCHDOG_BUNDLE} ${watchdogConfigPath(env)}`,
    // Never two runs at once, never a run that hangs past the next one.
    `TimeoutStartSec=${Math.max(120, intervalS * 2)}`,
    'Nice=5',
    ...WATCHDOG_SANDBOX(env),
    '',
  ].join('\n')
}

/**
 * Every interval_s from the end of the last run. Monotonic, so no Persistent= (it only applies to
 * OnCalendar=); OnBootSec= already in the past when the timer starts makes it run at once.
 */
export function watchdogTimer(env: string, intervalS: number): string {
  return [
    '# Managed by setup-server.',
    '[Unit]',
    `Description=Run the ConciliaExtrato watchdog for env ${env} every ${intervalS} s`,
    '',
    '[Timer]',
    `OnBootSec=${intervalS}s`,
    `OnUnitActiveSec=${intervalS}s`,
    'AccuracySec=1s',
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n')
}

/** The history grows by a line per check per run: rotated weekly, 13 weeks kept (LGPD: bounded). */
export const HEALTH_LOGROTATE = [
  '# Managed by setup-server: the watchdog history (uptime is computed from it), 13 weeks kept.',
  `${HEALTH_LOG_DIR}/*.jsonl {`,
  '  weekly',
  '  rotate 13',
  '  compress',
  '  delaycompress',
  '  missingok',
  '  notifempty',
  '  create 0640 root adm',
  '}',
  '',
].join('\n')

/** State (alerts, restarts) root only; history readable by adm (deploy is in it), new files inherit adm. */
export function watchdogDirs(env: string): { check: string; apply: string } {
  const state = quote(watchdogStateDir(env))
  return {
    check: `${ownerModeIs(watchdogStateDir(env), 'root:root 700')} && ${ownerModeIs(HEALTH_LOG_DIR, 'root:adm 2750')}`,
    apply: `install -d -m 0700 -o root -g root ${state} && install -d -m 2750 -o root -g adm ${HEALTH_LOG_DIR}`,
  }
}

/** Prints node's major version, or `none`. */
export const nodeMajorProbe = `${NODE_BIN} -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo none`

export function timerCheck(env: string): string {
  const t = quote(watchdogUnit(env, 'timer'))
  return `systemctl is-enabled --quiet ${t} && systemctl is-active --quiet ${t}`
}

/** After unit files changed: reload systemd, enable the timer and (re)start it so a new interval counts. */
export function timerActivate(env: string, unitsChanged: boolean): string {
  const t = quote(watchdogUnit(env, 'timer'))
  return unitsChanged
    ? `systemctl daemon-reload && systemctl enable --quiet ${t} && systemctl restart ${t}`
    : `systemctl enable --quiet --now ${t}`
}

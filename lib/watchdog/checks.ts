import { readFileSync, rmSync, statfsSync, statSync } from 'node:fs'
import { redisAuth } from '../commands/backup.ts'
import type { Colour } from '../commands/compose.ts'
import { canaryWriteSql } from '../commands/pitr-canary.ts'
import type { WatchdogFile } from '../commands/watchdog.ts'
import type { CheckResult } from '../notify/alerts.ts'
import type { RestartLog } from './budget.ts'
import { type ContainerInfo, watchContainers } from './containers.ts'
import type { Exec } from './exec.ts'
import { idleVerdict, parseIdleColour, stopProjectContainers } from './idle-colour.ts'
import { type HttpAnswer, outsideChecks, probe } from './outside.ts'
import { type FlagSeen, type LockSeen, pauseVerdict } from './pause.ts'

// One run's checks, on the host itself: containers (restarted within budget), nginx, Postgres, Redis,
// every domain through the local nginx, disk and memory; and the watched envs' domains from outside. Parsing is pure and exported for unit tests.

/** A result as the history keeps it: `ms` only for HTTP checks. */
export type TimedResult = CheckResult & { ms?: number }

export interface Deps {
  exec: Exec
  now: Date
  readText?: (path: string) => string | undefined
  /** A file's mtime in ms, undefined when it does not exist. */
  mtimeMs?: (path: string) => number | undefined
  removeFile?: (path: string) => void
  settleS?: number
}

/**
 * The colour deploy made live, from the first line of its upstreams file (see renderUpstreams); `swarm`
 * on a swarm env's web node, whose tasks Swarm itself restarts.
 */
export function parseLiveColour(upstreams: string | undefined): Colour | 'swarm' | undefined {
  const m = /^# Managed by deploy: live colour (blue|green|swarm)$/m.exec(upstreams ?? '')
  return m?.[1] as Colour | 'swarm' | undefined
}

/** MemAvailable as a percentage of MemTotal, from /proc/meminfo. */
export function parseMeminfo(text: string): number | undefined {
  const kb = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text)?.[1] ?? Number.NaN)
  const pct = (kb('MemAvailable') / kb('MemTotal')) * 100
  return Number.isFinite(pct) ? Math.floor(pct) : undefined
}

export type { HttpAnswer }

export function httpVerdict(
  domain: string,
  path: string,
  answer: HttpAnswer,
  /** A runbook holds the lock or a maintenance window is open: the maintenance page is expected. */
  paused = false,
): TimedResult {
  if (answer.status === 503 && answer.maintenance)
    return {
      check: `http:${domain}`,
      ok: paused,
      ms: answer.ms,
      detail: paused
        ? `GET ${path}: the maintenance page (503, by plan)`
        : `GET ${path}: the maintenance page (503), but no window is open (no maintenance flag, no runbook holds the lock): make maintenance OFF=1`,
      runbook: 'docs/runbooks/maintenance.md',
    }
  const ok = answer.status !== undefined && answer.status >= 200 && answer.status < 300
  const broken = answer.status === undefined || answer.status >= 500
  return {
    check: `http:${domain}`,
    ok,
    ms: answer.ms,
    detail:
      answer.status === undefined
        ? `GET ${path}: ${answer.error ?? 'no answer'}`
        : `GET ${path}: ${answer.status} in ${answer.ms} ms`,
    runbook: broken ? 'docs/runbooks/rollback.md' : 'docs/runbooks/health.md',
  }
}

export function freeVerdict(check: string, freePct: number | undefined, minPct: number, what: string) {
  return {
    check,
    ok: freePct !== undefined && freePct >= minPct,
    detail: freePct === undefined ? `cannot read ${what}` : `${freePct}% ${what} (minimum ${minPct}%)`,
    runbook: `docs/runbooks/health.md#${check.split(':')[0]}`,
  }
}

const readFile = (path: string) => {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

/** Every check of one run, in order: containers first, so what they restarted is checked after. */
export async function runChecks(
  cfg: WatchdogFile,
  restarts: RestartLog,
  deps: Deps,
): Promise<{ results: TimedResult[]; restartLog: RestartLog; complete: boolean; pausedBy?: string }> {
  const read = deps.readText ?? readFile
  const mtime = deps.mtimeMs ?? fileMtime
  // The other env's domains, from outside: meanwhile (a dead peer's timeouts do not lengthen the run).
  const outside = outsideChecks(cfg.outside ?? [], cfg.httpTimeoutS)
  const live = parseLiveColour(read(cfg.upstreamsFile))
  // Nothing deployed yet (setup-server runs first): no containers and no sites are expected.
  const projects = [cfg.projects.data, ...(live && live !== 'swarm' ? [cfg.projects[live]] : [])]
  const pause = pauseVerdict(cfg.env, seenLock(cfg, read, mtime), seenFlag(cfg, read, mtime), deps.now)
  // Paused (a runbook holds the lock, or maintenance): containers are neither judged nor restarted, and
  // their last state is kept (complete: false), so a restore's stopped app is not "down", nor "recovered".
  const watch = pause.pausedBy
    ? { results: [], containers: [], restartLog: restarts, complete: false }
    : await watchContainers(deps.exec, projects, restarts, {
        now: deps.now,
        rules: cfg.watchdog,
        ...(deps.settleS !== undefined ? { settleS: deps.settleS } : {}),
      })
  const idle = pause.pausedBy ? [] : await retireIdleColour(cfg, live, deps, read)
  const results: TimedResult[] = [
    ...pause.results,
    ...watch.results,
    ...idle,
    await nginxCheck(deps.exec),
    ...(await dataChecks(deps.exec, watch.containers, cfg)),
    ...(live ? await httpChecks(cfg, pause.pausedBy !== undefined) : []),
    ...resourceChecks(cfg, read),
    ...(await outside),
  ]
  return {
    results,
    restartLog: watch.restartLog,
    complete: watch.complete,
    ...(pause.pausedBy ? { pausedBy: pause.pausedBy } : {}),
  }
}

/** The previous colour, kept running for the instant-rollback window, stopped once the window is over. */
async function retireIdleColour(
  cfg: WatchdogFile,
  live: string | undefined,
  deps: Deps,
  read: (path: string) => string | undefined,
): Promise<CheckResult[]> {
  if (!cfg.idleColourFile) return []
  const text = read(cfg.idleColourFile)
  const seen = text === undefined ? undefined : parseIdleColour(text)
  const action = idleVerdict(seen, text !== undefined, live, deps.now)
  const remove = deps.removeFile ?? ((p: string) => rmSync(p, { force: true }))
  if (action.kind === 'none') return []
  if (action.kind === 'keep') return [action.result]
  if (action.kind === 'forget' || !seen?.colour) {
    remove(cfg.idleColourFile)
    return []
  }
  const stopped = await stopProjectContainers(deps.exec, cfg.projects[seen.colour])
  if (stopped.ok) remove(cfg.idleColourFile)
  return [
    { check: 'idle-colour', ok: stopped.ok, detail: stopped.detail, runbook: 'docs/runbooks/rollback.md' },
  ]
}

function seenLock(
  cfg: WatchdogFile,
  read: (path: string) => string | undefined,
  mtime: (path: string) => number | undefined,
): LockSeen | undefined {
  // Older configs (before lockDir) have no lock to look at.
  if (!cfg.lockDir) return undefined
  const dirMs = mtime(cfg.lockDir)
  if (dirMs === undefined) return undefined
  return {
    owner: read(`${cfg.lockDir}/owner`) ?? '',
    heartbeatMs: mtime(`${cfg.lockDir}/heartbeat`) ?? dirMs,
  }
}

function seenFlag(
  cfg: WatchdogFile,
  read: (path: string) => string | undefined,
  mtime: (path: string) => number | undefined,
): FlagSeen | undefined {
  if (!cfg.maintenanceFile) return undefined
  const at = mtime(cfg.maintenanceFile)
  return at === undefined ? undefined : { text: read(cfg.maintenanceFile) ?? '', mtimeMs: at }
}

const fileMtime = (path: string) => {
  try {
    return statSync(path).mtimeMs
  } catch {
    return undefined
  }
}

async function nginxCheck(exec: Exec): Promise<CheckResult> {
  const out = await exec('systemctl', ['is-active', 'nginx'])
  const state = out.stdout.trim() || 'unknown'
  return { check: 'nginx', ok: state === 'active', detail: state, runbook: 'docs/runbooks/health.md' }
}

/** pg_isready and Redis's PING inside their containers, when the data project has them. */
async function dataChecks(
  exec: Exec,
  containers: ContainerInfo[],
  cfg: Pick<WatchdogFile, 'env' | 'projects' | 'postgres'>,
): Promise<CheckResult[]> {
  const { env } = cfg
  const find = (service: string) =>
    containers.find((c) => c.project === cfg.projects.data && c.service === service)
  const results: CheckResult[] = []
  const pg = find('postgres')
  if (pg) {
    const out = await exec('docker', ['exec', pg.id, 'pg_isready', '-q'], 15_000)
    results.push({
      check: 'postgres',
      ok: out.code === 0,
      detail: out.code === 0 ? 'accepting connections' : `pg_isready: exit ${out.code} ${out.stderr.trim()}`,
      runbook: 'docs/runbooks/health.md',
    })
    // Accepting connections is not taking writes (a full disk, a read-only server): one canary row,
    // which a restore drill also looks for at its point in time. Older configs name no database.
    if (out.code === 0 && cfg.postgres) results.push(await canaryCheck(exec, pg.id, cfg.postgres))
  }
  const redis = find('redis')
  if (redis) {
    // With the password Redis takes now (data.env's; the container's own variable may be an old one).
    const out = await exec(
      'sh',
      [
        '-c',
        `${redisAuth(env)}; docker exec -e REDISCLI_AUTH "$1" redis-cli --no-auth-warning PING`,
        'sh',
        redis.id,
      ],
      15_000,
    )
    const answer = out.stdout.trim()
    results.push({
      check: 'redis',
      ok: answer === 'PONG',
      detail: answer === 'PONG' ? 'PONG' : `PING: ${answer || out.stderr.trim() || `exit ${out.code}`}`,
      runbook: 'docs/runbooks/health.md',
    })
  }
  return results.map((r) => ({ ...r, detail: r.detail.slice(0, 200) }))
}

/** The point-in-time canary row written (lib/commands/pitr-canary.ts): Postgres takes writes. */
export async function canaryCheck(
  exec: Exec,
  id: string,
  db: NonNullable<WatchdogFile['postgres']>,
): Promise<CheckResult> {
  const out = await exec(
    'docker',
    [
      'exec',
      id,
      'psql',
      '-XAtq',
      '-v',
      'ON_ERROR_STOP=1',
      '-U',
      db.user,
      '-d',
      db.db,
      '-c',
      canaryWriteSql('watchdog'),
    ],
    15_000,
  )
  const at = out.stdout.trim()
  const ok = out.code === 0 && /^\d{4}-\d\d-\d\dT[\d:.]+Z$/.test(at)
  return {
    check: 'postgres-writes',
    ok,
    detail: ok
      ? `canary row written at ${at}`
      : `psql: exit ${out.code} ${(out.stderr.trim() || at).split('\n')[0]}`,
    runbook: 'docs/runbooks/health.md',
  }
}

/** Every domain's health path through the host's nginx on port 80, with the domain as Host. */
function httpChecks(cfg: WatchdogFile, paused: boolean): Promise<TimedResult[]> {
  return Promise.all(
    cfg.domains.map(async (d) =>
      httpVerdict(d, cfg.healthPath, await get(d, cfg.healthPath, cfg.httpTimeoutS), paused),
    ),
  )
}

/** One GET through the host's own nginx (port 80), with the domain as Host. */
function get(domain: string, path: string, timeoutS: number): Promise<HttpAnswer> {
  return probe({ check: `http:${domain}`, url: `http://${domain}${path}`, connect: '127.0.0.1' }, timeoutS)
}

/** Free space of / and of Docker's directory (when it is another filesystem), available memory. */
function resourceChecks(cfg: WatchdogFile, read: (path: string) => string | undefined): CheckResult[] {
  const seen = new Set<number>()
  const disks: CheckResult[] = []
  for (const mount of ['/', '/var/lib/docker']) {
    let dev: number
    try {
      dev = statSync(mount).dev
    } catch {
      continue // no Docker directory (yet)
    }
    if (seen.has(dev)) continue
    seen.add(dev)
    const fs = statfsSync(mount)
    const free = fs.blocks > 0 ? Math.floor((fs.bavail / fs.blocks) * 100) : undefined
    disks.push(freeVerdict(`disk:${mount}`, free, cfg.diskMinFreePct, 'free'))
  }
  const mem = parseMeminfo(read('/proc/meminfo') ?? '')
  return [...disks, freeVerdict('memory', mem, cfg.memMinFreePct, 'available')]
}

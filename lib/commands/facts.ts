import { remotePaths } from '../env/host-paths.ts'
import type { Env } from '../env/load.ts'
import { parseIdleColour } from './flag-file.ts'
import { parseOwner, readLock } from './lock.ts'
import { describeFlagLine, maintenanceProbe } from './maintenance.ts'
import { liveColourProbe } from './nginx.ts'
import { quote } from './shell.ts'

/** One read-only script that prints a host's facts as key=value lines (status, preconditions). */
export function hostFactsScript(env: Pick<Env, 'name'>, auditLines = 5): string {
  const paths = remotePaths(env)
  return [
    `echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"`,
    'echo "kernel=$(uname -r)"',
    `echo "uptime_s=$(cut -d' ' -f1 /proc/uptime)"`,
    `df -Pk / | awk 'NR==2 {print "disk_used_kb=" $3; print "disk_avail_kb=" $4}'`,
    `awk '/^MemTotal:/ {print "mem_total_kb=" $2} /^MemAvailable:/ {print "mem_avail_kb=" $2}' /proc/meminfo`,
    `echo "docker=$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo none)"`,
    composeVersionScript(),
    `echo "release=$(cat ${quote(paths.currentRelease)} 2>/dev/null || echo none)"`,
    `{ ${readLock(paths.lock)}; } | sed 's/^/lock:/'`,
    `echo "live=$(${liveColourProbe(env.name)})"`,
    `sed 's/^/idle:/' ${quote(paths.idleColour)} 2>/dev/null || true`,
    `{ ${maintenanceProbe(env.name)}; } | sed 's/^/maintenance:/'`,
    `tail -n ${auditLines} ${quote(paths.audit)} 2>/dev/null | sed 's/^/audit=/' || true`,
  ].join('\n')
}

/** Detects which Compose the host has: the v2 plugin, else v1, else none. */
export function composeVersionScript(): string {
  return [
    'if docker compose version --short >/dev/null 2>&1; then echo "compose=v2 $(docker compose version --short)"',
    `elif command -v docker-compose >/dev/null 2>&1; then echo "compose=v1 $(docker-compose version --short 2>/dev/null)"`,
    'else echo compose=none; fi',
  ].join('\n')
}

export interface HostFacts {
  os: string
  kernel: string
  uptimeS: number
  diskUsedKb: number
  diskAvailKb: number
  memTotalKb: number
  memAvailKb: number
  docker: string
  compose: string
  release: string
  /** 'free', or the lock's owner fields and heartbeat_age_s. */
  lock: 'free' | Record<string, string>
  /** The colour nginx sends traffic to, as the upstreams file says ('unknown' before any deploy). */
  live: string
  /** The instant-rollback window: the previous colour kept running, its release, until when. */
  idle: ReturnType<typeof parseIdleColour>
  /** Each service in maintenance, said for people (describeFlagLine). */
  maintenance: string[]
  audit: string[]
}

export function parseHostFacts(output: string): HostFacts {
  const values = new Map<string, string>()
  const audit: string[] = []
  const lock: string[] = []
  const idle: string[] = []
  const maintenance: string[] = []
  for (const line of output.split('\n')) {
    const tagged = /^(lock|idle|maintenance):(.*)$/.exec(line)
    if (tagged) {
      ;({ lock, idle, maintenance })[tagged[1] as 'lock' | 'idle' | 'maintenance'].push(tagged[2] ?? '')
      continue
    }
    const at = line.indexOf('=')
    if (at < 0) continue
    const key = line.slice(0, at)
    const value = line.slice(at + 1).trim()
    if (key === 'audit') audit.push(value)
    else values.set(key, value)
  }
  const num = (key: string) => Number(values.get(key) ?? Number.NaN)
  const str = (key: string) => values.get(key) || 'unknown'
  return {
    os: str('os'),
    kernel: str('kernel'),
    uptimeS: num('uptime_s'),
    diskUsedKb: num('disk_used_kb'),
    diskAvailKb: num('disk_avail_kb'),
    memTotalKb: num('mem_total_kb'),
    memAvailKb: num('mem_avail_kb'),
    docker: str('docker'),
    compose: str('compose'),
    release: str('release'),
    lock: lock[0] === 'held' ? parseOwner(lock.slice(1).join('\n')) : 'free',
    live: str('live'),
    idle: parseIdleColour(idle.join('\n')),
    maintenance: maintenance.filter((l) => l.trim()).map(describeFlagLine),
    audit,
  }
}

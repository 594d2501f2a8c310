import { InputError } from '../report/errors.ts'
import { projectName } from './compose.ts'
import { quote } from './shell.ts'
import { stackName } from './swarm.ts'

// `make logs`: the containers' own logs (docker logs), every host at once, each line marked with its
// service and colour (blue, green, data, swarm); the host is added on this side.

export const APP_SERVICES = ['site', 'saas', 'api'] as const
export const DATA_SERVICES = ['postgres', 'redis'] as const
export const LOG_SERVICES: readonly string[] = [...APP_SERVICES, ...DATA_SERVICES]

/** SERVICE=api,postgres (or all when empty): each name checked against the stack's services. */
export function parseServices(raw: string | undefined): string[] {
  if (!raw) return [...LOG_SERVICES]
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const unknown = names.filter((n) => !LOG_SERVICES.includes(n))
  if (unknown.length || names.length === 0)
    throw new InputError(
      `SERVICE=${raw}: ${unknown.length ? `unknown service ${unknown.join(', ')}` : 'no service named'}`,
      [],
      `Use one or more of ${LOG_SERVICES.join(', ')}, comma-separated (SERVICE=api,postgres), or leave SERVICE out for all.`,
    )
  return [...new Set(names)]
}

/** SINCE=10m / 2h / 1d / 30s, or an RFC 3339 time (2026-12-04T03:00:00Z): what docker logs --since takes. */
export function parseSince(raw: string | undefined): string {
  if (!raw) return '10m'
  const m = /^(\d+)([smhd])$/.exec(raw)
  if (m) return m[2] === 'd' ? `${Number(m[1]) * 24}h` : raw
  if (/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(raw)) return raw
  throw new InputError(
    `SINCE=${raw}: not a duration or a time`,
    [],
    'Use SINCE=30s, 10m, 2h or 1d, or an RFC 3339 time such as SINCE=2026-12-04T03:00:00Z.',
  )
}

export interface LogsRequest {
  env: string
  services: string[]
  since: string
  grep?: string
  follow: boolean
}

/**
 * One script for any host of the env: the containers of its compose projects (blue, green, data)
 * and, on a swarm node, of its stack (stopped ones too: the colour a deploy just left), each one's
 * `docker logs --timestamps` (stdout and stderr) as `<service>/<colour> <timestamp> <line>`. Following,
 * the readers stop when this side closes the connection (stdin ends) or the runbook is stopped.
 */
export function logsCommand(req: LogsRequest): string {
  const projects = (['blue', 'green', 'data'] as const).map((p) => projectName(req.env, p))
  const stack = stackName(req.env)
  const flags = `--timestamps --since ${quote(req.since)}${req.follow ? ' --follow' : ''}`
  const filter = req.grep ? ` | grep --line-buffered -E -e ${quote(req.grep)}` : ''
  const wanted = ` ${req.services.join(' ')} `
  const lines = [
    `wanted=${quote(wanted)}`,
    // The tag is one word of safe characters (service and colour names), so sed's pattern is safe.
    `emit() { docker logs ${flags} "$1" 2>&1 | sed -u "s|^|$2 |"${filter} || true; }`,
    `for p in ${projects.map(quote).join(' ')}; do`,
    `  for c in $(docker ps -a -q --filter "label=com.docker.compose.project=$p"); do`,
    `    s=$(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}}' "$c")`,
    `    case "$wanted" in *" $s "*) emit "$c" "$s/\${p##*-}" & ;; esac`,
    '  done',
    'done',
    `for c in $(docker ps -a -q --filter ${quote(`label=com.docker.stack.namespace=${stack}`)}); do`,
    `  s=$(docker inspect -f '{{index .Config.Labels "com.docker.swarm.service.name"}}' "$c"); s=\${s#${stack}_}`,
    `  case "$wanted" in *" $s "*) emit "$c" "$s/swarm" & ;; esac`,
    'done',
    req.follow ? 'cat >/dev/null; kill 0' : 'wait',
  ]
  return lines.join('\n')
}

export interface LogLine {
  tag: string
  ts: string
  text: string
}

/** `<service>/<colour> <timestamp> <text>` lines; anything else (a docker error) keeps its text. */
export function parseLogLine(line: string): LogLine {
  const m = /^(\S+\/\S+) (\d{4}-\d\d-\d\dT\S+) ?(.*)$/.exec(line)
  return m ? { tag: m[1] ?? '', ts: m[2] ?? '', text: m[3] ?? '' } : { tag: '-', ts: '', text: line }
}

/** Lines of every host in time order (stable: one container's lines keep their order). */
export function mergeByTime(hosts: { host: string; lines: LogLine[] }[]): (LogLine & { host: string })[] {
  return hosts
    .flatMap(({ host, lines }) => lines.map((l) => ({ ...l, host })))
    .map((l) => ({ l, key: timeKey(l.ts) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map(({ l }) => l)
}

/** A UTC timestamp's sort key with nanoseconds (RFC 3339 may trim trailing zeros of the fraction). */
export function timeKey(ts: string): string {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(ts)
  if (!m) return ts
  const ms = Date.parse(`${m[1]}${m[3]}`)
  if (Number.isNaN(ms)) return ts
  return `${new Date(ms).toISOString().slice(0, 19)}.${(m[2] ?? '').padEnd(9, '0').slice(0, 9)}`
}

import { projectName } from './compose.ts'
import { quote } from './shell.ts'

// What `make uptime` runs on a host. Pure: strings only. Everything here only reads.

export const HEALTH_DIR = '/var/log/conciliaextrato/health'
export const NGINX_LOG_DIR = '/var/log/nginx'

export function historyFile(env: string, dir = HEALTH_DIR): string {
  return `${dir}/${env}.jsonl`
}

// Reads a file, plain or gzipped, with sudo when the login cannot (nginx's logs are root:adm 0640).
// A file it cannot read becomes a `#unreadable <path>` line; the newline first ends a cut-short line.
const READ_FN =
  'rd() { if [ -r "$1" ]; then zcat -f -- "$1"; else sudo -n zcat -f -- "$1"; fi 2>/dev/null || printf \'\\n#unreadable %s\\n\' "$1"; }'

// Keeps the lines of http, container and outside (another env's domains) checks stamped on or after `since` (YYYY-MM-DD, compared as
// text: every ISO 8601 date sorts that way), and lines too broken to tell (they are counted as
// malformed), the `#file`/`#unreadable` markers among them.
const HISTORY_FILTER = [
  '/"check" *: *"(http:|container:|outside:)/ || !/"check"/ {',
  '  if (match($0, /"at" *: *"[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]/) && substr($0, RSTART + RLENGTH - 10, 10) < since) next',
  '  print',
  '}',
].join('\n')

/**
 * The env's health history from `sinceDay` (YYYY-MM-DD, UTC; give a day of margin: `at` may carry an
 * offset) on, gzipped (60 days of minute probes is tens of MB of JSON, a few MB gzipped). Every file of
 * the env (`<env>.jsonl` and its rotations, gzipped or not) modified since that day, each after a
 * `#file <path>` line. The history is filtered as it streams (awk), never loaded whole on the host.
 */
export function readHistory(env: string, sinceDay: string, dir = HEALTH_DIR): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(sinceDay)) throw new Error(`readHistory: "${sinceDay}" is not YYYY-MM-DD`)
  return historyScript(env, sinceDay, dir)
}

/**
 * readHistory with the day as a shell word: a checked YYYY-MM-DD, or `"$arg"` in the checker's helper
 * (lib/commands/checker.ts), which checks it before it gets here.
 */
export function historyScript(env: string, sinceWord: string, dir = HEALTH_DIR): string {
  const files = `find . -maxdepth 1 -type f -name ${quote(`${env}.jsonl*`)} -newermt ${sinceWord} 2>/dev/null | sort -V`
  return [
    READ_FN,
    `if cd ${quote(dir)} 2>/dev/null; then for f in $(${files}); do printf '\\n#file %s\\n' "$f"; rd "$f"; done; fi | awk -v since=${sinceWord} '${HISTORY_FILTER}' | gzip -c`,
  ].join('\n')
}

// Per line of an access log: the minute (from `[26/Nov/2025:13:37:01 +0000]`, nginx's $time_local,
// or the first `2025-11-26T13:37`, $time_iso8601) and the status: the first 3-digit field after the
// quoted request, which fits the default `combined` format (the 9th field) and the env's own.
const NGINX_COUNT = [
  'BEGIN { split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", m, " "); for (i = 1; i <= 12; i++) mon[m[i]] = sprintf("%02d", i) }',
  'NF == 0 { next }',
  '/^#unreadable / { print "unreadable " $2; next }',
  '{',
  '  key = ""; status = ""',
  '  if (match($0, /\\[[0-9][0-9]\\/[A-Z][a-z][a-z]\\/[0-9][0-9][0-9][0-9]:[0-9][0-9]:[0-9][0-9]/)) {',
  '    t = substr($0, RSTART + 1, RLENGTH - 1)',
  '    key = substr(t, 8, 4) mon[substr(t, 4, 3)] substr(t, 1, 2) substr(t, 13, 2) substr(t, 16, 2)',
  '  } else if (match($0, /[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]/)) {',
  '    t = substr($0, RSTART, RLENGTH)',
  '    key = substr(t, 1, 4) substr(t, 6, 2) substr(t, 9, 2) substr(t, 12, 2) substr(t, 15, 2)',
  '  }',
  '  q = index($0, "\\"")',
  '  if (q > 0) {',
  '    rest = substr($0, q + 1); q = index(rest, "\\"")',
  '    if (q > 0) { n = split(substr(rest, q + 1), f, " "); for (i = 1; i <= n; i++) if (f[i] ~ /^[1-5][0-9][0-9]$/) { status = f[i]; break } }',
  '  }',
  '  if (length(key) != 12) { unparsed++; next }',
  '  if (key < since) next',
  '  if (status == "") { unparsed++; next }',
  '  requests++',
  '  if (status ~ /^5/) c[key]++',
  '}',
  'END { printf "requests %d\\nunparsed %d\\n", requests, unparsed; for (k in c) print "5xx " k " " c[k] }',
].join('\n')

/**
 * nginx's requests and 5xx per minute over the last `windowMin` minutes (host-local time, as nginx logs
 * it): `log <path>` (when there is one), `requests <n>`, `unparsed <n>`, `5xx <YYYYMMDDHHMM> <n>` per minute with any,
 * `unreadable <path>`. Reads the env's access log (edge: section) or nginx's default, and its `.1`.
 */
export function nginx5xxScript(env: string, windowMin: number | MinutesWords, dir = NGINX_LOG_DIR): string {
  const m = minutesWords(windowMin)
  const own = quote(`${dir}/${env}-access.log`)
  const fallback = quote(`${dir}/access.log`)
  return [
    READ_FN,
    `log=${own}; [ -e "$log" ] || log=${fallback}`,
    'if [ -e "$log" ]; then echo "log $log"; fi',
    `since=$(date +%Y%m%d%H%M -d ${m.ago})`,
    `for f in "$log.1" "$log"; do if [ -e "$f" ]; then rd "$f"; fi; done | awk -v since="$since" '${NGINX_COUNT}'`,
  ].join('\n')
}

/**
 * A window of minutes as the shell words `date -d` and `docker logs --since` take: from a number, or,
 * in the checker's helper, from its checked `$arg` (ARG_MINUTES).
 */
export interface MinutesWords {
  ago: string
  since: string
}
export const ARG_MINUTES: MinutesWords = { ago: '"-$arg min"', since: '"$arg"m' }

function minutesWords(windowMin: number | MinutesWords): MinutesWords {
  if (typeof windowMin !== 'number') return windowMin
  const n = Math.round(windowMin)
  return { ago: quote(`-${n} min`), since: `${n}m` }
}

const LABELS =
  '{{index .Config.Labels "com.docker.compose.project"}}/{{index .Config.Labels "com.docker.compose.service"}}'

const containersOf = (projects: string[], all: boolean) =>
  `for p in ${projects.map(quote).join(' ')}; do for c in $(docker ps${all ? ' -a' : ''} -q --filter "label=com.docker.compose.project=$p" 2>/dev/null); do`

/** `restarts <project>/<service> <RestartCount> <StartedAt> <status>` for every container of the env. */
export function restartsScript(env: string): string {
  const projects = [projectName(env, 'data'), projectName(env, 'blue'), projectName(env, 'green')]
  return `${containersOf(projects, true)} docker inspect -f '${`restarts ${LABELS} {{.RestartCount}} {{.State.StartedAt}} {{.State.Status}}`}' "$c" 2>/dev/null || true; done; done`
}

/** `errors <project>/<service> <n>`: log lines matching error|panic (any case) in the last minutes, per running app container. */
export function errorLinesScript(env: string, windowMin: number | MinutesWords): string {
  const projects = [projectName(env, 'blue'), projectName(env, 'green')]
  const since = minutesWords(windowMin).since
  return `${containersOf(projects, false)} n=$(docker logs --since ${since} "$c" 2>&1 | grep -ciE 'error|panic' || true); echo "errors $(docker inspect -f '${LABELS}' "$c" 2>/dev/null) \${n:-0}"; done; done`
}

/** Everything error tracking needs from one host, in one round trip (parseErrorCounts reads it). */
export function errorCountsScript(env: string, windowMin: number | MinutesWords): string {
  return [nginx5xxScript(env, windowMin), restartsScript(env), errorLinesScript(env, windowMin)].join('\n')
}

import { redisAuth } from './backup.ts'
import { projectHealth, projectName } from './compose.ts'
import { liveColourProbe } from './nginx.ts'
import { quote } from './shell.ts'

// What `make health` (and deploy's gates) run on a host. Pure: strings only.

/** `<status> <seconds>` per request to a domain's path through the host's own nginx. */
export function probeDomain(domain: string, path: string, n: number, https: boolean): string {
  const url = https ? `https://${domain}${path}` : `http://127.0.0.1${path}`
  const target = https ? `--resolve ${quote(`${domain}:443:127.0.0.1`)} -k` : `-H ${quote(`Host: ${domain}`)}`
  // One curl for the n requests, on one kept-alive connection (as Cloudflare's to the origin): one
  // process, not n. A failed request still prints its line (000); each has its own 10 s limit.
  const each = Array.from({ length: n }, () => `-o /dev/null ${quote(url)}`).join(' ')
  return `curl -s -m 10 -w '%{http_code} %{time_total}\\n' ${target} ${each} || true`
}

/** The response headers of one request (lower-cased names), for the security-header check. */
export function responseHeaders(domain: string, path: string, https: boolean): string {
  const url = https ? `https://${domain}${path}` : `http://127.0.0.1${path}`
  const target = https ? `--resolve ${quote(`${domain}:443:127.0.0.1`)} -k` : `-H ${quote(`Host: ${domain}`)}`
  return `curl -s -o /dev/null -m 10 -D - ${target} ${quote(url)} | tr -d '\\r' | tr 'A-Z' 'a-z'`
}

/** `<protocol> <notAfter>` of the TLS the origin negotiates for a domain (SNI), e.g. `TLSv1.3 Nov 1 2040 GMT`. */
export function tlsProbe(domain: string): string {
  return [
    `out=$(echo | timeout 10 openssl s_client -connect 127.0.0.1:443 -servername ${quote(domain)} 2>/dev/null)`,
    `proto=$(echo "$out" | sed -n 's/^ *Protocol *: *//p; s/^New, \\(TLSv[0-9.]*\\),.*/\\1/p' | head -1)`,
    `end=$(echo "$out" | openssl x509 -noout -enddate 2>/dev/null | cut -d= -f2)`,
    '[ -n "$proto" ] || proto=none; [ -n "$end" ] || end=none; echo "$proto $end"',
  ].join('; ')
}

/** `<service> <state> <health>` for the data project and the live colour's project. */
export function containersProbe(env: string): string {
  const inspect = `docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id"`
  return [
    projectHealth(projectName(env, 'data')),
    `c=$(${liveColourProbe(env)})`,
    `[ -z "$c" ] || for id in $(docker ps -aq --filter "label=com.docker.compose.project=ce-${env}-$c"); do ${inspect}; done`,
  ].join('; ')
}

/** A swarm web node's tasks of the env's stack: `<service> <state> <health>`, like containersProbe. */
export function stackContainersProbe(env: string): string {
  return `for id in $(docker ps -q --filter label=com.docker.stack.namespace=ce-${env}); do docker inspect -f '{{index .Config.Labels "com.docker.swarm.service.name"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id"; done`
}

/** nginx, Postgres and Redis answering: `<name> ok|fail` (a swarm env: nginx on web nodes, data on the data host). */
export function servicesProbe(
  env: string,
  on: { nginx: boolean; data: boolean } = { nginx: true, data: true },
): string {
  const data = projectName(env, 'data')
  const c = (svc: string) =>
    `$(docker ps -q --filter label=com.docker.compose.project=${data} --filter label=com.docker.compose.service=${svc})`
  return [
    ...(on.nginx ? [`systemctl is-active --quiet nginx && echo 'nginx ok' || echo 'nginx fail'`] : []),
    ...(on.data
      ? [
          `docker exec ${c('postgres')} pg_isready -q >/dev/null 2>&1 && echo 'postgres ok' || echo 'postgres fail'`,
          `(${redisAuth(env)}; docker exec -e REDISCLI_AUTH ${c('redis')} redis-cli --no-auth-warning PING 2>/dev/null) | grep -q PONG && echo 'redis ok' || echo 'redis fail'`,
        ]
      : []),
  ].join('; ')
}

/** `disk <mount> <free%>` for / and Docker's dir, `memory <available%>`. */
export const resourcesProbe = [
  `df -P / /var/lib/docker 2>/dev/null | awk 'NR>1 {gsub("%","",$5); print "disk " $6 " " 100-$5}' | sort -u`,
  `awk '/^MemTotal/ {t=$2} /^MemAvailable/ {a=$2} END {printf "memory %d\\n", a*100/t}' /proc/meminfo`,
].join('; ')

/** The whole release history (one JSON line per deploy or rollback; nothing before the first). */
export function readReleases(file: string): string {
  return `cat ${quote(file)} 2>/dev/null || true`
}

/** The last line of the release history (the last deploy or rollback). */
export function lastReleaseProbe(releasesFile: string): string {
  return `tail -n 1 ${quote(releasesFile)} 2>/dev/null || true`
}

/**
 * One service's health, straight on its port, once its container is healthy: a short retry (a 503
 * from a bounded dependency check, a refused connection on a loaded host), never one shot, and never
 * longer than `withinS` in all.
 */
export function smokeCheck(port: number, path: string, withinS: number): string {
  const within = Math.max(5, Math.round(withinS))
  return `curl -fsS -m 5 --retry ${within} --retry-delay 1 --retry-max-time ${within} --retry-all-errors -o /dev/null ${quote(`http://127.0.0.1:${port}${path}`)}`
}

/**
 * Whether each service answers its health on its port right now: one request each, printing
 * `answers <service> <status>`. Only ever a shortcut: a service not seen answering gets smokeCheck's
 * bounded retry (an instant rollback skips that when every one answered here).
 */
export function answersNow(ports: Record<string, number>, path: string): string {
  return Object.entries(ports)
    .map(
      ([svc, port]) =>
        `printf 'answers %s ' ${quote(svc)}; curl -s -o /dev/null -m 3 -w '%{http_code}\\n' ${quote(`http://127.0.0.1:${port}${path}`)} || echo`,
    )
    .join('; ')
}

/** Whether answersNow's output says every one of `services` answered 200. */
export function allAnswered(out: string, services: readonly string[]): boolean {
  const codes = new Map(
    out
      .split('\n')
      .filter((l) => l.startsWith('answers '))
      .map((l) => l.trim().split(' ').slice(1, 3) as [string, string]),
  )
  return services.length > 0 && services.every((svc) => codes.get(svc) === '200')
}

/**
 * Polls one service's health on its port every 0.2 s until it answers 200, for at most `withinS`: a
 * restore's pause ends the moment the app answers (smokeCheck's 1 s retry step would add to it).
 */
export function waitForHealth(port: number, path: string, withinS: number): string {
  return [
    `end=$(( $(date +%s) + ${Math.max(5, Math.round(withinS))} ))`,
    `until curl -fsS -m 5 -o /dev/null ${quote(`http://127.0.0.1:${port}${path}`)} 2>/dev/null; do`,
    `  [ "$(date +%s)" -lt "$end" ] || { echo ${quote(`127.0.0.1:${port}${path} did not answer 200 within ${withinS} s`)} >&2; exit 1; }`,
    '  sleep 0.2',
    'done',
  ].join('\n')
}

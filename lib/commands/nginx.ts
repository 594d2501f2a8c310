import type { EdgeConfig } from '../env/edge.ts'
import type { Env, Service } from '../env/load.ts'
import { SERVICES } from '../env/load.ts'
import { tlsPaths } from '../env/tls-paths.ts'
import { type Colour, colourPorts } from './compose.ts'
import { renderMaintenance } from './maintenance.ts'
import { NGINX_DIR, renderTemplate } from './nginx-template.ts'
import { quote } from './shell.ts'

// nginx on the host: one file of server blocks per env, one of upstreams, and the colour's flag file.
export { NGINX_DIR, renderTemplate }

export function sitesPath(env: string): string {
  return `${NGINX_DIR}/${env}-sites.conf`
}

export function upstreamsPath(env: string): string {
  return `${NGINX_DIR}/${env}-upstreams.conf`
}

export function colourVariable(env: string): string {
  return `$ce_${env.replace(/-/g, '_')}_colour`
}

export function upstreamName(env: string, service: Service): string {
  return `ce_${env.replace(/-/g, '_')}_${service}`
}

/** nginx sends an env's requests to green while this file exists, to blue otherwise (read per request). */
export function greenFlagPath(env: string): string {
  return `${NGINX_DIR}/${env}-live-green`
}

/** The upstreams file's second line: its env switches colour by greenFlagPath, with no reload. */
export const SWITCHED_BY_FLAG = '# Switched by a flag file, read on every request: no reload'

/**
 * Both colours' upstreams (each service's on the colour's 127.0.0.1 port), the same whichever is live:
 * the switch is greenFlagPath, which nginx reads on every request. The first line names the live
 * colour for the runbooks and the watchdog (liveColourProbe).
 */
export function renderUpstreams(env: string, colour: Colour): string {
  const blocks = (['blue', 'green'] as const).flatMap((c) =>
    SERVICES.map((s) =>
      renderTemplate('upstream.conf.template', {
        upstream: `${upstreamName(env, s)}_${c}`,
        port: colourPorts(c)[s],
      }),
    ),
  )
  return `# Managed by deploy: live colour ${colour}\n${SWITCHED_BY_FLAG}: ${greenFlagPath(env)}\n${blocks.join('')}`
}

/**
 * A swarm env's upstreams: this node's own task first, the other web nodes' tasks as backups, so a
 * request finds a task while Swarm replaces this node's (a refused connection moves on, never shown).
 */
export function renderSwarmUpstreams(env: string, ports: Record<Service, number>, peers: string[]): string {
  const blocks = SERVICES.map((s) =>
    [
      `upstream ${upstreamName(env, s)}_swarm {`,
      `    server 127.0.0.1:${ports[s]} max_fails=0;`,
      ...peers.map((p) => `    server ${p}:${ports[s]} backup max_fails=0;`),
      '    keepalive 16;',
      '}',
      '',
    ].join('\n'),
  )
  return `# Managed by deploy: live colour swarm\n${blocks.join('')}`
}

/**
 * The live colour of a server block's requests, in the env's colour variable: green while the flag
 * file exists, else blue (a stat per request; the switch needs no reload); `swarm` on a swarm env.
 * The request goes to that colour's upstream; the colour goes out as X-Served-By-Colour. First in the
 * server block: a `return` (redirect, origin-pull 403, maintenance) ends the server's rewrite directives,
 * and the header says the colour on those answers too.
 */
function renderColour(env: Env): string {
  const v = colourVariable(env.name)
  if (env.swarm) return `    set ${v} swarm;\n`
  return [
    `    # The live colour: green while ${greenFlagPath(env.name)} exists, else blue (read per request).`,
    `    set ${v} blue;`,
    `    if (-f ${greenFlagPath(env.name)}) {`,
    `        set ${v} green;`,
    '    }',
    '',
  ].join('\n')
}

/** A server block's requests: the maintenance check first, then the proxy to the service's upstream. */
function siteLocation(env: Env, service: Service): string {
  // A swarm has one upstream per service: named as it is (nginx picks a variable's upstream per request).
  const upstream = `${upstreamName(env.name, service)}_${env.swarm ? 'swarm' : colourVariable(env.name)}`
  return `${renderMaintenance(env.name, service)}${renderTemplate('proxy-location.conf.template', { upstream })}`
}

/**
 * The env's server blocks: one per domain on port 80 without an edge: section (the sandbox); with one,
 * per domain HTTPS on 443 and port 80 (redirect or serve), headers, real client address, LGPD logs.
 */
export function renderSites(env: Env): string {
  if (env.edge) return renderEdgeSites(env, env.edge)
  const blocks = SERVICES.map((s) =>
    renderTemplate('site.conf.template', {
      domain: env.domains[s],
      colour_variable: colourVariable(env.name),
      colour: renderColour(env),
      location: siteLocation(env, s),
    }),
  )
  return `# Managed by deploy (env ${env.name})\n${blocks.join('')}`
}

// The edge: TLS on 443 (certificate from the dns runbook, a placeholder until then), Mozilla's profiles,
// authenticated origin pulls, security headers, Cloudflare's CF-Connecting-IP, LGPD-aware access logs.

/** Port 443's default server: one per host (see default-tls.conf.template), written by deploy. */
export const DEFAULT_TLS_PATH = `${NGINX_DIR}/00-default-tls.conf`

/** The env's access log: in nginx's log directory, so nginx's logrotate (setup-server) bounds it. */
export function accessLogPath(env: string): string {
  return `/var/log/nginx/${env}-access.log`
}

const prefix = (env: string) => `ce_${env.replace(/-/g, '_')}`

export function logFormatName(env: string): string {
  return `${prefix(env)}_edge`
}

/** Mozilla's server-side TLS recommendations (ssl-config.mozilla.org, nginx 1.22, OpenSSL 3). */
export const TLS_PROFILES: Record<
  EdgeConfig['tlsProfile'],
  { protocols: string; summary: string; ciphers: string[] }
> = {
  // Without the DHE suites of Mozilla's list: they need a dhparam file, and every client here
  // (Cloudflare's edge, browsers, curl) does ECDHE.
  intermediate: {
    protocols: 'TLSv1.2 TLSv1.3',
    summary: 'TLS 1.2 and 1.3, ECDHE and AEAD ciphers only',
    ciphers: [
      'ECDHE-ECDSA-AES128-GCM-SHA256',
      'ECDHE-RSA-AES128-GCM-SHA256',
      'ECDHE-ECDSA-AES256-GCM-SHA384',
      'ECDHE-RSA-AES256-GCM-SHA384',
      'ECDHE-ECDSA-CHACHA20-POLY1305',
      'ECDHE-RSA-CHACHA20-POLY1305',
    ],
  },
  // TLS 1.3's suites are all AEAD with forward secrecy: OpenSSL's defaults, nothing to choose.
  modern: { protocols: 'TLSv1.3', summary: 'TLS 1.3 only', ciphers: [] },
}

export function renderTlsProfile(profile: EdgeConfig['tlsProfile']): string {
  const p = TLS_PROFILES[profile]
  return renderTemplate('tls-profile.conf.template', {
    profile,
    summary: p.summary,
    protocols: p.protocols,
    ciphers: p.ciphers.length
      ? `    ssl_ciphers ${p.ciphers.join(':')};`
      : "    # No cipher list: TLS 1.3's suites are OpenSSL's defaults, all AEAD.",
  }).replace(/\n$/, '')
}

/** Port 443's default server for the whole host, with `env`'s profile; its first line says whose. */
export function renderDefaultTls(env: string, profile: EdgeConfig['tlsProfile']): string {
  return renderTemplate('default-tls.conf.template', { env, profile, tls_profile: renderTlsProfile(profile) })
}

export function parseDefaultTls(content: string): { env: string; profile: string } | undefined {
  const m = /^# Managed by deploy for env (\S+): TLS profile (\S+)$/m.exec(content)
  return m ? { env: m[1] ?? '', profile: m[2] ?? '' } : undefined
}

/**
 * What deploy does with port 443's default server, given the file on the host: write it (absent, or
 * this env's), keep it (another env's, same profile), or refuse (another env's with another profile:
 * nginx can only negotiate one profile per port).
 */
export function defaultTlsPlan(
  existing: string,
  env: string,
  profile: EdgeConfig['tlsProfile'],
): { action: 'write' | 'keep' } | { action: 'conflict'; problem: string } {
  const owner = parseDefaultTls(existing)
  if (!owner || owner.env === env) return { action: 'write' }
  if (owner.profile === profile) return { action: 'keep' }
  return {
    action: 'conflict',
    problem: `env ${owner.env} on this host serves TLS profile ${owner.profile} and this env asks for ${profile}: nginx negotiates one profile per port (${DEFAULT_TLS_PATH}); give both envs the same edge.tls_profile`,
  }
}

export function renderOriginPulls(env: string, mode: EdgeConfig['originPulls']): string {
  const ca = tlsPaths(env).originPullCa
  if (mode === 'off')
    return '    # Authenticated origin pulls: off (edge.origin_pulls); no client certificate is asked for.'
  const verify = [`    ssl_client_certificate ${ca};`, '    ssl_verify_client optional_no_ca;']
  if (mode === 'optional')
    return [
      "    # Authenticated origin pulls: optional. Cloudflare's client certificate is asked for and checked",
      '    # against the origin-pull CA, never required: the access log says how it went',
      '    # (origin_pull=SUCCESS, FAILED:<reason> or NONE). Turn it on once every request says SUCCESS.',
      ...verify,
    ].join('\n')
  return [
    '    # Authenticated origin pulls: on. A request without a client certificate the origin-pull CA',
    "    # verifies gets nginx's 403, unless it comes from the host itself (deploy's gates, make health).",
    ...verify,
    `    if (${originPullRefusedVariable(env)}) {`,
    '        return 403;',
    '    }',
  ].join('\n')
}

function originPullRefusedVariable(env: string): string {
  return `$${prefix(env)}_origin_pull_refused`
}

/** Origin pulls on: refused unless the certificate verified or the peer is the host itself. */
function renderOriginPullMap(env: string): string {
  return [
    '# Authenticated origin pulls on: HTTPS needs a verified client certificate, except from the host itself.',
    `map "$ssl_client_verify ${fromHostVariable(env)}" ${originPullRefusedVariable(env)} {`,
    '    default 1;',
    '    "~^SUCCESS " 0;',
    '    "~ 1$" 0;',
    '}',
  ].join('\n')
}

/** CF-Connecting-IP is the visitor's address only when the peer is one of Cloudflare's ranges. */
export function renderRealIp(ranges: string[]): string {
  if (ranges.length === 0)
    return "    # No ranges in setup.firewall.cloudflare_ips: the peer's address is the client's."
  return [
    "    # The visitor's address from CF-Connecting-IP, only when the peer is in Cloudflare's ranges",
    '    # (setup.firewall.cloudflare_ips); from anyone else the header is ignored.',
    ...ranges.map((r) => `    set_real_ip_from ${r};`),
    '    real_ip_header CF-Connecting-IP;',
  ].join('\n')
}

function fromHostVariable(env: string): string {
  return `$${prefix(env)}_from_host`
}

function clientAddressVariable(env: string): string {
  return `$${prefix(env)}_client_address`
}

/** The env's http-level part: the client address map, the log format, who counts as the host itself. */
export function renderEdgeHttp(env: Env, edge: EdgeConfig): string {
  const truncated = edge.log.ip === 'truncated'
  const map = [
    '# LGPD: IPv4 addresses keep their first three bytes (a.b.c.0), IPv6 their first 48 bits (a:b:c::).',
    `map $remote_addr ${clientAddressVariable(env.name)} {`,
    '    default "-";',
    '    "~^(\\d+\\.\\d+\\.\\d+)\\.\\d+$" "$1.0";',
    '    "~*^([0-9a-f]{1,4}:[0-9a-f]{1,4}:[0-9a-f]{1,4}):" "$1::";',
    '    "~*^([0-9a-f]{1,4}:[0-9a-f]{1,4})::" "$1::";',
    '    "~*^([0-9a-f]{1,4})::" "$1::";',
    '    "~^::" "::";',
    '}',
  ].join('\n')
  return renderTemplate('edge-http.conf.template', {
    env: env.name,
    client_address_map: truncated ? map : '# LGPD: edge.log.ip is full: client addresses are logged whole.',
    address_form: truncated ? 'truncated' : 'in full (edge.log.ip: full)',
    log_format: logFormatName(env.name),
    client_address: truncated ? clientAddressVariable(env.name) : '$remote_addr',
    colour_variable: colourVariable(env.name),
    port80: edge.http === 'redirect' ? 'redirected to HTTPS' : 'served too (edge.http: serve)',
    from_host_variable: fromHostVariable(env.name),
    origin_pull_map:
      edge.originPulls === 'on'
        ? renderOriginPullMap(env.name)
        : `# Authenticated origin pulls ${edge.originPulls}: nothing is refused for want of a client certificate.`,
  })
}

/** nginx takes a quoted string as is, except `"` and `\` (escapes) and `$` (variables). */
function nginxQuoted(value: string, what: string): string {
  if (/["\\$\r\n]/.test(value))
    throw new Error(`${what} cannot contain ", \\, $ or a line break in an nginx header: ${value}`)
  return value
}

function renderEdgeSite(env: Env, edge: EdgeConfig, service: Service): string {
  const tls = tlsPaths(env.name)
  const common = [
    renderTemplate('security-headers.conf.template', {
      colour_variable: colourVariable(env.name),
      csp: nginxQuoted(edge.csp[service], `edge.csp.${service}`),
    }).replace(/\n$/, ''),
    renderRealIp(env.setup.firewall.cloudflareIps),
    `    access_log ${accessLogPath(env.name)} ${logFormatName(env.name)};`,
  ].join('\n')
  const redirect =
    edge.http === 'redirect'
      ? [
          `    if (${fromHostVariable(env.name)} = 0) {`,
          '        return 301 https://$host$request_uri;',
          '    }',
        ].join('\n')
      : '    # edge.http: serve: visitors are served on port 80 as on 443.'
  return renderTemplate('site-edge.conf.template', {
    domain: env.domains[service],
    port80:
      edge.http === 'redirect'
        ? 'redirects visitors to HTTPS, serves the host itself'
        : 'serves everyone (edge.http: serve)',
    common,
    redirect,
    colour: renderColour(env),
    location: siteLocation(env, service),
    certificate: tls.cert,
    certificate_key: tls.key,
    tls_profile: renderTlsProfile(edge.tlsProfile),
    origin_pulls: renderOriginPulls(env.name, edge.originPulls),
    hsts_max_age_s: edge.hstsMaxAgeS,
  })
}

function renderEdgeSites(env: Env, edge: EdgeConfig): string {
  const summary = `TLS profile ${edge.tlsProfile}, origin pulls ${edge.originPulls}, port 80 ${edge.http}, client address ${edge.log.ip}`
  const sites = SERVICES.map((s) => renderEdgeSite(env, edge, s))
  return `# Managed by deploy (env ${env.name}): ${summary}\n${renderEdgeHttp(env, edge)}${sites.join('')}`
}

/** Validates the whole configuration, then reloads gracefully (old workers finish their requests). */
export const nginxTestAndReload = 'sudo -n /usr/sbin/nginx -t -q && sudo -n /usr/sbin/nginx -s reload'

/** The status switchToColour exits with when the host's upstreams predate the flag file (see pointNginxAt). */
export const UPSTREAMS_PREDATE_FLAG = 90

/**
 * The switch, with no reload: the flag file made or removed (nginx reads it on every request), then the
 * upstreams file rewritten (stdin: renderUpstreams) so that its first line names the new colour.
 * Exits UPSTREAMS_PREDATE_FLAG, changing nothing, where an older deploy's upstreams are in place.
 */
export function switchToColour(env: string, colour: Colour, writeUpstreams: string): string {
  return [
    `grep -qsxF ${quote(`${SWITCHED_BY_FLAG}: ${greenFlagPath(env)}`)} ${quote(upstreamsPath(env))} || exit ${UPSTREAMS_PREDATE_FLAG}`,
    `${setColourFlag(env, colour)} && (${writeUpstreams})`,
  ].join('; ')
}

/** The flag file as `colour` wants it (deploy's config step, before nginx reloads). */
export function setColourFlag(env: string, colour: Colour): string {
  const flag = quote(greenFlagPath(env))
  return colour === 'green' ? `touch ${flag}` : `rm -f ${flag}`
}

/** The live colour, as the upstreams file on the host says. */
export function liveColourProbe(env: string): string {
  return `sed -n 's/^# Managed by deploy: live colour //p' ${upstreamsPath(env)} 2>/dev/null || true`
}

/**
 * Asks every domain through nginx every 0.1 s, for at most `forS` seconds, until each is served by
 * `colour`; then prints the last answer of each, `<domain> <status> <colour> <error>`. One command on
 * the host instead of a round trip per poll: nginx's new workers usually take over within 0.1-0.3 s.
 */
export function waitServedBy(domains: string[], path: string, colour: string, forS: number): string {
  const round = domains.map((d) => `printf '%s ' ${quote(d)}; ${servedColourProbe(d, path)}`).join('; ')
  return [
    'i=0',
    `while :; do out=$(${round}); n=$(printf '%s\n' "$out" | awk -v c=${quote(colour)} '$3 == c' | wc -l)`,
    `[ "$n" -ge ${domains.length} ] && break; i=$((i+1)); [ "$i" -ge ${Math.ceil(forS * 10)} ] && break; sleep 0.1; done`,
    `printf '%s\n' "$out"`,
  ].join('; ')
}

/** Prints `<status> <colour>` for one request through nginx with `domain` as Host. */
export function servedColourProbe(domain: string, path: string): string {
  return `curl -s -o /dev/null -m 3 -w '%{http_code} %header{x-served-by-colour} %{errormsg}\\n' -H ${quote(`Host: ${domain}`)} http://127.0.0.1${path} || true`
}

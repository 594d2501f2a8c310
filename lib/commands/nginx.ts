import type { Env, Service } from '../env.ts'
import { SERVICES } from '../env.ts'
import { type Colour, colourPorts } from './compose.ts'
import { quote } from './shell.ts'

// nginx on the host: one file of server blocks per env (static) and one of upstreams (the switch).
export const NGINX_DIR = '/etc/nginx/conciliaextrato'

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

/** The switch: every service's upstream points at one colour's 127.0.0.1 port. */
export function renderUpstreams(env: string, colour: Colour): string {
  const ports = colourPorts(colour)
  const blocks = SERVICES.map(
    (s) =>
      `upstream ${upstreamName(env, s)} {\n    server 127.0.0.1:${ports[s]} max_fails=0;\n    keepalive 16;\n}`,
  )
  // The colour also goes out as a response header: deploy polls it to know the reload took effect.
  const map = `map $host ${colourVariable(env)} {\n    default ${colour};\n}`
  return `# Managed by deploy: live colour ${colour}\n${blocks.join('\n')}\n${map}\n`
}

/** One server block per domain, proxying to its upstream (TLS and headers come with the dns/edge runbook). */
export function renderSites(env: Env): string {
  const blocks = SERVICES.map((s) =>
    [
      'server {',
      '    listen 80;',
      `    server_name ${env.domains[s]};`,
      `    add_header X-Served-By-Colour ${colourVariable(env.name)} always;`,
      '    location / {',
      `        proxy_pass http://${upstreamName(env.name, s)};`,
      '        proxy_http_version 1.1;',
      '        proxy_set_header Connection "";',
      '        proxy_set_header Host $host;',
      '        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
      '        proxy_set_header X-Forwarded-Proto $scheme;',
      // A connection refused while a colour starts or stops is retried once, never a user-facing error.
      '        proxy_next_upstream error timeout;',
      '        proxy_connect_timeout 2s;',
      '        proxy_read_timeout 60s;',
      '    }',
      '}',
    ].join('\n'),
  )
  return `# Managed by deploy (env ${env.name})\n${blocks.join('\n')}\n`
}

/** Validates the whole configuration, then reloads gracefully (old workers finish their requests). */
export const nginxTestAndReload = 'sudo -n /usr/sbin/nginx -t -q && sudo -n /usr/sbin/nginx -s reload'

/** The live colour, as the upstreams file on the host says. */
export function liveColourProbe(env: string): string {
  return `sed -n 's/^# Managed by deploy: live colour //p' ${upstreamsPath(env)} 2>/dev/null || true`
}

/** Prints `<status> <colour>` for one request through nginx with `domain` as Host. */
export function servedColourProbe(domain: string, path: string): string {
  return `curl -s -o /dev/null -m 5 -w '%{http_code} %header{x-served-by-colour}\\n' -H ${quote(`Host: ${domain}`)} http://127.0.0.1${path} || echo '000 none'`
}

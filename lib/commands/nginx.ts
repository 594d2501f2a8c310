import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
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

const TEMPLATES = resolve(import.meta.dirname, '..', '..', 'nginx')

/** Fills `{{name}}` placeholders of a template in nginx/; an unknown placeholder is a bug, not a blank. */
export function renderTemplate(name: string, values: Record<string, string | number>): string {
  return readFileSync(resolve(TEMPLATES, name), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`nginx/${name}: no value for {{${key}}}`)
    return String(values[key])
  })
}

/** The switch: every service's upstream points at one colour's 127.0.0.1 port. */
export function renderUpstreams(env: string, colour: Colour): string {
  const ports = colourPorts(colour)
  const blocks = SERVICES.map((s) =>
    renderTemplate('upstream.conf.template', { upstream: upstreamName(env, s), port: ports[s] }),
  )
  // The colour also goes out as a response header: deploy polls it to know the reload took effect.
  const map = `map $host ${colourVariable(env)} {\n    default ${colour};\n}`
  return `# Managed by deploy: live colour ${colour}\n${blocks.join('')}${map}\n`
}

/** One server block per domain, proxying to its upstream (TLS and headers come with the dns/edge runbook). */
export function renderSites(env: Env): string {
  const blocks = SERVICES.map((s) =>
    renderTemplate('site.conf.template', {
      domain: env.domains[s],
      upstream: upstreamName(env.name, s),
      colour_variable: colourVariable(env.name),
    }),
  )
  return `# Managed by deploy (env ${env.name})\n${blocks.join('')}`
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

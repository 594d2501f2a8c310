import { SERVICES, type Service } from '../env/terms.ts'
import { writeFlag } from './flag-file.ts'
import { NGINX_DIR, renderTemplate } from './nginx-template.ts'
import { quote } from './shell.ts'

// Maintenance: while a service's flag file exists, nginx answers its domain with a 503 and Retry-After
// (HTML for site and saas, JSON for the api), checked on every request, so on and off need no reload.
// The flags live in deploy's nginx directory: nginx's workers can see them (/srv/conciliaextrato is
// 0750), and the deploy user writes them without sudo.

/** What a client is told to wait before trying again: a restore's pause is seconds. */
export const RETRY_AFTER_S = 10

/** The header every maintenance answer carries: how a probe tells the planned 503 from a broken app. */
export const MAINTENANCE_HEADER = 'X-Maintenance'

export function maintenanceDir(env: string): string {
  return `${NGINX_DIR}/maintenance/${env}`
}

export function flagPath(env: string, service: Service): string {
  return `${maintenanceDir(env)}/${service}`
}

const PAGES: Record<Service, { type: string; body: string }> = {
  site: { type: 'text/html', body: htmlPage() },
  saas: { type: 'text/html', body: htmlPage() },
  api: {
    type: 'application/json',
    body: `{"error":"maintenance","message":"Temporarily unavailable for maintenance; retry after the Retry-After seconds.","retry_after_s":${RETRY_AFTER_S}}`,
  },
}

/** Plain and brand-neutral, in Portuguese and English; no `'` or `$` (an nginx single-quoted string). */
function htmlPage(): string {
  return [
    '<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width,initial-scale=1"><title>Em manuten&ccedil;&atilde;o</title></head>',
    '<body style="font-family:sans-serif;max-width:36em;margin:4em auto;padding:0 1em">',
    '<h1>Em manuten&ccedil;&atilde;o</h1><p>Voltamos em instantes. Tente novamente em alguns segundos.</p>',
    '<p lang="en">Down for maintenance: back shortly. Please try again in a few seconds.</p>',
    '</body></html>',
  ].join('')
}

/** The server block's part: the flag check and the named location that answers with the page. */
export function renderMaintenance(env: string, service: Service): string {
  const page = PAGES[service]
  if (/['$\\]/.test(page.body))
    throw new Error(`the ${service} maintenance page cannot hold ' $ or \\ in nginx`)
  return renderTemplate('maintenance.conf.template', {
    service,
    flag: flagPath(env, service),
    content_type: page.type,
    retry_after_s: RETRY_AFTER_S,
    header: MAINTENANCE_HEADER,
    body: page.body,
  })
}

/** SERVICE=api,site (or every app service when empty). */
export function parseMaintenanceServices(raw: string | undefined): Service[] | string {
  if (!raw) return [...SERVICES]
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const unknown = names.filter((n) => !(SERVICES as readonly string[]).includes(n))
  if (unknown.length || names.length === 0)
    return `SERVICE=${raw}: ${unknown.length ? `not an app service: ${unknown.join(', ')}` : 'no service named'}; use ${SERVICES.join(', ')}, comma-separated`
  return [...new Set(names)] as Service[]
}

/** Writes the flags (each atomically: a rename), so nginx never sees half a file. */
export function maintenanceOn(env: string, services: readonly Service[], text: string): string {
  const dir = quote(maintenanceDir(env))
  return [
    `mkdir -p ${dir}`,
    `chmod 0755 ${dir}`,
    ...services.map((s) => writeFlag(flagPath(env, s), text)),
  ].join(' && ')
}

export function maintenanceOff(env: string, services: readonly Service[]): string {
  return `rm -f ${services.map((s) => quote(flagPath(env, s))).join(' ')}`
}

/** Prints `<service>\t<flag's lines joined by tabs>` for each service in maintenance; nothing when none is. */
export function maintenanceProbe(env: string): string {
  return `for f in ${SERVICES.map((s) => quote(flagPath(env, s))).join(' ')}; do [ -f "$f" ] && printf '%s\\t%s\\n' "$(basename "$f")" "$(tr '\\n' '\\t' < "$f")"; done; true`
}

/** One line of maintenanceProbe's output, said for people: `api until 2026-12-04T20:00:00.000Z, by ana: disk resize`. */
export function describeFlagLine(line: string): string {
  const [service = '?', ...fields] = line.split('\t')
  const f = Object.fromEntries(
    fields.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const),
  )
  return `${service} until ${f.until ?? '?'}, by ${f.by ?? '?'}${f.runbook ? ` (${f.runbook})` : ''}${f.reason ? `: ${f.reason}` : ''}`
}

/** The text of a flag: who, why and until when (the watchdog alerts once it is past). */
export function flagText(fields: { by: string; reason: string; until: Date; runbook: string }): string {
  const clean = (v: string) => v.replace(/[\r\n\t]+/g, ' ').trim()
  return [
    `until=${fields.until.toISOString()}`,
    `by=${clean(fields.by)}`,
    `reason=${clean(fields.reason)}`,
    `runbook=${clean(fields.runbook)}`,
    '',
  ].join('\n')
}

/**
 * Waits (bounded) until `domain` through this host's nginx answers as expected: `on` is the maintenance
 * 503 (X-Maintenance: on), `off` is a 200 from the app. Prints the last answer, `<status> <header>`;
 * exits 1 if the expected answer never came.
 */
export function waitForAnswer(domain: string, path: string, expect: 'on' | 'off', timeoutS: number): string {
  const pattern = expect === 'on' ? "'503 on'" : "'200 '*"
  return [
    `end=$(( $(date +%s) + ${timeoutS} ))`,
    'while :; do',
    `  a=$(curl -s -o /dev/null -m 3 -w '%{http_code} %header{${MAINTENANCE_HEADER.toLowerCase()}}' -H ${quote(`Host: ${domain}`)} ${quote(`http://127.0.0.1${path}`)} || true)`,
    `  case "$a" in ${pattern}) echo "$a"; exit 0 ;; esac`,
    '  [ "$(date +%s)" -lt "$end" ] || { echo "$a"; exit 1; }',
    '  sleep 0.2',
    'done',
  ].join('\n')
}

/** Whether this host's nginx config has the maintenance check (deployed by a version that writes it). */
export function nginxHasMaintenance(env: string, sitesFile: string): string {
  return `grep -qF ${quote(maintenanceDir(env))} ${quote(sitesFile)} && echo yes || echo no`
}

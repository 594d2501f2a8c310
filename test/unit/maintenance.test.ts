import * as assert from 'uvu/assert'
import {
  flagPath,
  flagText,
  MAINTENANCE_HEADER,
  maintenanceOff,
  maintenanceOn,
  parseMaintenanceServices,
  RETRY_AFTER_S,
  renderMaintenance,
  waitForAnswer,
} from '../../lib/commands/maintenance.ts'
import { renderSites } from '../../lib/commands/nginx.ts'
import { loadEnv } from '../../lib/env/load.ts'
import { httpVerdict } from '../../lib/watchdog/checks.ts'
import { suite } from '../harness.ts'

const test = suite('maintenance: the 503 page nginx serves while a flag file exists')

test('each server block checks its own flag before proxying; api answers JSON, site and saas HTML', () => {
  const api = renderMaintenance('production', 'api')
  assert.match(api, `if (-f ${flagPath('production', 'api')}) {`)
  assert.match(api, 'default_type application/json;')
  assert.match(api, `"retry_after_s":${RETRY_AFTER_S}`)
  assert.match(api, `set $ce_retry_after ${RETRY_AFTER_S};`)
  assert.match(api, `add_header ${MAINTENANCE_HEADER} $ce_maintenance always;`)
  JSON.parse(/return 503 '([^']*)';/.exec(api)?.[1] ?? '')
  const site = renderMaintenance('production', 'site')
  assert.match(site, 'default_type text/html;')
  assert.match(site, '<h1>Em manuten&ccedil;&atilde;o</h1>')
  assert.match(site, flagPath('production', 'site'))
  assert.not.match(site, flagPath('production', 'api'))
  // Headers only at server level: a location with an add_header of its own would lose the security headers.
  const named = site.slice(site.indexOf('location @maintenance'))
  assert.not.match(named, 'add_header')
})

test('the committed envs render one maintenance check per server block, the check before the proxy', () => {
  for (const name of ['staging', 'production']) {
    const env = loadEnv(name)
    const sites = renderSites(env)
    for (const service of ['site', 'saas', 'api'] as const) {
      const flag = `if (-f ${flagPath(name, service)})`
      // Ports 80 and 443 with an edge: section.
      assert.is(sites.split(flag).length - 1, env.edge ? 2 : 1, `${name} ${service}`)
    }
    for (const block of sites.split('server {').slice(1))
      if (block.includes('proxy_pass'))
        assert.ok(block.indexOf('if (-f') < block.indexOf('location / {'), `${name}: check first`)
  }
})

test('flags are written whole and renamed into place; off removes only the services named', () => {
  const on = maintenanceOn(
    'staging',
    ['api', 'saas'],
    flagText({
      by: 'ana',
      reason: "it's\nlate",
      until: new Date('2026-12-04T20:00:00Z'),
      runbook: 'restore',
    }),
  )
  assert.match(on, `mkdir -p /etc/nginx/conciliaextrato/maintenance/staging`)
  assert.match(on, `> /etc/nginx/conciliaextrato/maintenance/staging/api.new && chmod 0644`)
  assert.match(
    on,
    'mv -f /etc/nginx/conciliaextrato/maintenance/staging/api.new /etc/nginx/conciliaextrato/maintenance/staging/api',
  )
  assert.not.match(on, 'staging/site')
  assert.match(on, "reason=it'\\''s late", 'one line, quoted for the shell')
  assert.is(maintenanceOff('staging', ['api']), 'rm -f /etc/nginx/conciliaextrato/maintenance/staging/api')
})

test('SERVICE= is checked: app services only, all three by default', () => {
  assert.equal(parseMaintenanceServices(undefined), ['site', 'saas', 'api'])
  assert.equal(parseMaintenanceServices('api, saas,api'), ['api', 'saas'])
  assert.match(String(parseMaintenanceServices('postgres')), 'not an app service: postgres')
  assert.match(String(parseMaintenanceServices(',')), 'no service named')
})

test('the answer wait is bounded and tells the maintenance page from the app', () => {
  const on = waitForAnswer('api.example.com', '/health', 'on', 20)
  assert.match(on, 'case "$a" in \'503 on\')')
  assert.match(on, "-w '%{http_code} %header{x-maintenance}'")
  assert.match(on, 'end=$(( $(date +%s) + 20 ))')
  assert.match(waitForAnswer('api.example.com', '/health', 'off', 20), 'case "$a" in \'200 \'*)')
})

test('the watchdog: the maintenance page is fine inside a window, an alert outside one', () => {
  const page = { status: 503, ms: 2, maintenance: true }
  assert.is(httpVerdict('api.example.com', '/health', page, true).ok, true)
  const forgotten = httpVerdict('api.example.com', '/health', page, false)
  assert.is(forgotten.ok, false)
  assert.match(forgotten.detail, 'no window is open')
  // An app's own 503 is a failure either way.
  assert.is(httpVerdict('api.example.com', '/health', { status: 503, ms: 2 }, true).ok, false)
})

test.run()

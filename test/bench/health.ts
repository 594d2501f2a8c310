/**
 * make bench-health: on a set-up, deployed sandbox droplet with every check on (the edge's TLS and
 * headers, a backup store), times a full `make health`; then kills a service and times how long until
 * the watchdog's alert reaches the team's webhook (a receiver on the bed's network), with the
 * watchdog's timer at its production interval (60 s).
 * Prints the figures and a final JSON line {"health_s":..,"detect_to_alert_s":..}.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { generateBackupKey } from '../../lib/backup/keys.ts'
import { liveColourProbe } from '../../lib/commands/nginx.ts'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { backup } from '../../runbooks/backup.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { health } from '../../runbooks/health.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { buildFixtureImages } from '../sandbox/fixtures.ts'
import { startReceiver } from '../sandbox/webhook-receiver.ts'
import {
  createTestBed,
  destroyTestBed,
  onDroplet,
  runCaptured,
  writeManagedEnv,
} from '../support/test-bed.ts'

const ENV = 'bh'
await buildFixtureImages()
const bed = await createTestBed('bench-health', ['web-1'])
const web = bed.droplets[0] as SandboxDroplet
const rx = await startReceiver(bed.gateway)
try {
  process.env.ONCALL_SLACK_URL = `${rx.url}/hooks/bench`
  process.env.BACKUP_KEY = generateBackupKey()
  const backups = join(bed.group.dir, 'backups')
  mkdirSync(backups, { recursive: true })
  writeManagedEnv(bed, ENV, {
    health: { path: '/health', timeout_s: 20 },
    watchdog: { interval_s: 60 },
    secrets: [
      'POSTGRES_PASSWORD',
      'REDIS_PASSWORD',
      'ONCALL_SLACK_URL',
      'BACKUP_KEY',
      'CLOUDFLARE_API_TOKEN',
    ],
    notify: [{ name: 'oncall', type: 'slack', url_secret: 'ONCALL_SLACK_URL', events: ['alert'] }],
    edge: { zone: 'conciliaextrato.localhost', http: 'serve', origin_pulls: 'optional' },
    backup: { store: { type: 'local', dir: backups } },
  })
  process.env.CLOUDFLARE_API_TOKEN ??= 'unused-by-health'
  for (const [name, spec, args] of [
    ['setup-server', setupServer, []],
    ['deploy v1', deploy, ['--release', 'v1']],
    ['backup', backup, []],
  ] as const) {
    const r = await runCaptured(spec, ['--env', ENV, ...args])
    if (r.code !== 0) throw new Error(`${name} failed:\n${r.out}`)
  }

  const t0 = performance.now()
  const full = await runCaptured(health, ['--env', ENV])
  const healthS = (performance.now() - t0) / 1000
  const checks = /(\d+) checks in/.exec(full.out)?.[1] ?? '?'
  console.log(`make health: ${healthS.toFixed(1)} s for ${checks} checks, exit ${full.code}`)
  if (full.code !== 0)
    console.log(
      full.out
        .split('\n')
        .filter((l) => l.includes('  - '))
        .join('\n'),
    )

  // A service dies: the live colour's api container is killed (it does not come back by itself:
  // the watchdog has to notice, restart it and alert).
  rx.received.length = 0
  const colour = (await onDroplet(web, liveColourProbe(ENV))).trim()
  const api = (
    await onDroplet(
      web,
      `docker ps -q --filter label=com.docker.compose.project=ce-${ENV}-${colour} --filter label=com.docker.compose.service=api`,
    )
  ).trim()
  await onDroplet(web, `docker update --restart=no ${api} >/dev/null && docker kill ${api} >/dev/null`)
  const died = performance.now()
  let detectS = Number.NaN
  while ((performance.now() - died) / 1000 < 180) {
    const alert = rx.received.find((r) => r.body.includes('ALERT') && r.body.includes('api'))
    if (alert) {
      detectS = (performance.now() - died) / 1000
      break
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  if (Number.isNaN(detectS)) throw new Error('no alert arrived within 180 s of the service dying')
  console.log(`service killed -> alert at the webhook: ${detectS.toFixed(1)} s (watchdog timer every 60 s)`)
  console.log(JSON.stringify({ health_s: round(healthS), detect_to_alert_s: round(detectS) }))
} finally {
  await rx.close()
  await destroyTestBed(bed)
}

function round(n: number): number {
  return Math.round(n * 10) / 10
}

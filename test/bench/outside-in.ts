/**
 * make bench-outside-in: two sandbox envs on two droplets watch each other (watchdog.watch), at the
 * committed envs' settings: the watchdog every 60 s, alerts.failure_threshold 2, the heartbeat's grace
 * 120 s at a Healthchecks.io stand-in with its real limits. Env A is deployed; droplet A is then killed
 * (as a power loss: no goodbye). Measures how long until B's watchdog alert reaches the team's webhook
 * (dead_to_alert_s, target <= 180) and until the heartbeat service's silence notice does
 * (heartbeat_alert_s). Then `make uptime ENV=A` with A's droplet still dead: its outside view (read from
 * B's history through B's checker account) counts the outage as down (outage_counted_as_down_s: the
 * least downtime of A's domains seen from B; the host view has no data for it). Prints the figures, the
 * machine's load, and a final JSON line. Last, `make status-page ENV=A` opened in headless Chromium
 * (status_page_rendered: every service down, a bar per view, no console error, nothing fetched).
 */
import { execFileSync } from 'node:child_process'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { heartbeats } from '../../runbooks/heartbeats.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { statusPage } from '../../runbooks/status-page.ts'
import { uptime } from '../../runbooks/uptime.ts'
import { buildFixtureImages } from '../sandbox/fixtures.ts'
import { startHealthchecks } from '../sandbox/healthchecks.ts'
import { startReceiver } from '../sandbox/webhook-receiver.ts'
import { inspectStatusPage, launchChromium } from '../support/browser.ts'
import {
  createTestBed,
  destroyTestBed,
  onDroplet,
  runCaptured,
  writeManagedEnv,
} from '../support/test-bed.ts'

const load = () => `load ${loadavg()[0]?.toFixed(1)} on 2 cores`
const [A, B] = ['oa', 'ob']
await buildFixtureImages()
const bed = await createTestBed('bench-outside-in', ['a-1', 'b-1'], { image: 'provisioned' })
const [a, b] = bed.droplets as [SandboxDroplet, SandboxDroplet]
const rx = await startReceiver(bed.gateway)
const hc = await startHealthchecks({ host: bed.gateway, channels: [`${rx.url}/hooks/healthchecks`] })
try {
  process.env.ONCALL_SLACK_URL = `${rx.url}/hooks/oncall`
  process.env.HEARTBEAT_PING_URL = hc.pingBase
  process.env.HEALTHCHECKS_API_KEY = hc.apiKey
  const host = (d: SandboxDroplet) => [
    { name: d.name, address: '127.0.0.1', ssh_port: d.ports.ssh, host_key: d.hostKey, private_address: d.ip },
  ]
  for (const [name, d, peer] of [
    [A, a, B],
    [B, b, A],
  ] as const)
    writeManagedEnv(bed, name, {
      hosts: host(d),
      health: { path: '/health', timeout_s: 20 },
      watchdog: { interval_s: 60, watch: [peer] },
      alerts: { failure_threshold: 2 },
      secrets: [
        'POSTGRES_PASSWORD',
        'REDIS_PASSWORD',
        'ONCALL_SLACK_URL',
        'HEARTBEAT_PING_URL',
        'HEALTHCHECKS_API_KEY',
      ],
      notify: [{ name: 'oncall', type: 'slack', url_secret: 'ONCALL_SLACK_URL', events: ['alert'] }],
      // make uptime's outside view: the peer's watchdog history, read as the peer's checker (one key here).
      outside_view: { env: peer, checker_key: { file: bed.checkerKeyPath } },
      status_page: { store: { type: 'local', dir: join(bed.envDir, `status-page-${name}`) } },
      heartbeat: {
        ping_url_secret: 'HEARTBEAT_PING_URL',
        api_key_secret: 'HEALTHCHECKS_API_KEY',
        api: hc.url,
        grace_s: 120,
      },
    })
  console.log(`two envs: ${A} on ${a.name} (${a.ip}), ${B} on ${b.name} (${b.ip}); ${load()}`)
  for (const [step, spec, args] of [
    [`heartbeats ${A}`, heartbeats, ['--env', A]],
    [`heartbeats ${B}`, heartbeats, ['--env', B]],
    [`setup-server ${A}`, setupServer, ['--env', A]],
    [`setup-server ${B}`, setupServer, ['--env', B]],
    [`deploy ${A}`, deploy, ['--env', A, '--release', 'v1']],
    [`deploy ${B}`, deploy, ['--env', B, '--release', 'v1']],
  ] as const) {
    const t = performance.now()
    const r = await runCaptured(spec, [...args])
    if (r.code !== 0) throw new Error(`${step} failed:\n${r.out}`)
    console.log(`${step}: ${((performance.now() - t) / 1000).toFixed(1)} s`)
  }
  // Both watchdogs have run and pinged, and see each other: nothing to alert about.
  const deadline = Date.now() + 150_000
  const upNow = () => [...hc.checks.values()].filter((c) => hc.statusOf(c) === 'up').length
  while (Date.now() < deadline && upNow() < 2) await new Promise((r) => setTimeout(r, 1000))
  if (upNow() < 2) throw new Error('the two heartbeat checks are not both up after 150 s')
  // B's watchdog has seen every domain of A answer (its last run's outside probes all ok): the outage
  // starts from a good state, not from failures left over from before A's deploy.
  const seenUp = async () => {
    const out = await onDroplet(
      b,
      `grep -h '"outside:${A}/' /var/log/conciliaextrato/health/${B}.jsonl | tail -n 3`,
    )
    const lines = out.trim().split('\n').filter(Boolean)
    return lines.length === 3 && lines.every((l) => (JSON.parse(l) as { ok: boolean }).ok)
  }
  const upBy = Date.now() + 180_000
  while (Date.now() < upBy && !(await seenUp())) await new Promise((r) => setTimeout(r, 2000))
  if (!(await seenUp())) throw new Error(`${B}'s watchdog did not see ${A}'s domains answer within 180 s`)
  const noise = rx.received.filter((r) => r.path.startsWith('/hooks/oncall')).map((r) => r.body)
  if (noise.length) console.log(`alerts before the kill (unexpected):\n${noise.join('\n')}`)
  rx.received.length = 0

  console.log(`killing ${a.name} (docker kill: a power loss); ${load()}`)
  execFileSync('docker', ['kill', a.container], { stdio: 'ignore' })
  const killed = performance.now()
  let deadS: number | undefined
  let heartbeatS: number | undefined
  while ((performance.now() - killed) / 1000 < 420 && (deadS === undefined || heartbeatS === undefined)) {
    const since = () => (performance.now() - killed) / 1000
    if (
      deadS === undefined &&
      rx.received.some((r) => r.path === '/hooks/oncall' && r.body.includes(`${A}'s`))
    )
      deadS = since()
    if (
      heartbeatS === undefined &&
      rx.received.some((r) => r.path === '/hooks/healthchecks' && r.body.includes(`${A}-watchdog`))
    )
      heartbeatS = since()
    await new Promise((r) => setTimeout(r, 250))
  }
  console.log(
    `droplet killed -> ${B}'s outside alert at the webhook: ${deadS?.toFixed(1) ?? 'none in 420 s'} s (target 180 s)`,
  )
  console.log(
    `droplet killed -> the heartbeat service's DOWN notice: ${heartbeatS?.toFixed(1) ?? 'none in 420 s'} s (period 60 s + grace 120 s)`,
  )
  // make uptime ENV=A now: A's host does not answer; B's history has A's domains down since the kill.
  const report = await runCaptured(uptime, ['--env', A, '--days', '1'])
  const sinceKill = (performance.now() - killed) / 1000
  const downs = [...report.out.matchAll(new RegExp(`outside \\(${B}\\)\\s+\\S+\\s+([\\d.]+) min`, 'g'))].map(
    (m) => Number(m[1]) * 60,
  )
  const outageS = downs.length === 3 ? Math.min(...downs) : undefined
  if (outageS === undefined) console.log(`make uptime ENV=${A} (exit ${report.code}):\n${report.out}`)
  console.log(
    `make uptime ENV=${A}, ${sinceKill.toFixed(0)} s after the kill (exit ${report.code}): the outside view counts ${outageS?.toFixed(0) ?? 'nothing'} s down (each domain: ${downs.map((d) => d.toFixed(0)).join(', ')} s); the host view: ${/a-1: did not answer/.test(report.out) ? 'a-1 did not answer' : 'read'}`,
  )
  // make status-page ENV=A, opened in headless Chromium: every service down, bars from both views.
  const published = await runCaptured(statusPage, ['--env', A])
  let rendered = false
  if (published.code !== 0)
    console.log(`make status-page ENV=${A} (exit ${published.code}):\n${published.out}`)
  else {
    const browser = await launchChromium()
    try {
      const page = await inspectStatusPage(
        browser,
        `file://${join(bed.envDir, `status-page-${A}`, 'index.html')}`,
        'bench-outside-in-status-page',
      )
      rendered =
        page.errors.length === 0 &&
        page.requests.length === 0 &&
        page.services.length === 3 &&
        page.services.every((s) => s.state === 'down' && (s.bars.outside ?? 0) >= 90 && s.p95 === 'chart')
      console.log(
        `make status-page ENV=${A}: "${page.summary}"; ${page.services.map((s) => `${s.service} ${s.state}, ${s.bars.outside}/${s.bars.host} day marks, p95 ${s.p95}`).join('; ')}; ${page.errors.length} console error(s); screenshot ${page.screenshot}`,
      )
    } finally {
      await browser.close()
    }
  }
  console.log(`${load()} at the end`)
  const round = (n: number | undefined) => (n === undefined ? null : Math.round(n * 10) / 10)
  console.log(
    JSON.stringify({
      dead_to_alert_s: round(deadS),
      heartbeat_alert_s: round(heartbeatS),
      outage_counted_as_down_s: round(outageS),
      status_page_rendered: rendered,
    }),
  )
  if (deadS === undefined || heartbeatS === undefined || outageS === undefined || !rendered)
    process.exitCode = 1
} finally {
  await hc.close()
  await rx.close()
  await destroyTestBed(bed)
}

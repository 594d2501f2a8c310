/**
 * make bench-oncall: the on-call toolkit on a set-up sandbox droplet, under continuous requests to all
 * three domains through nginx (30 a second, as in the measurements):
 * - a restore (make restore): how long visitors of the services that use the data see the maintenance
 *   page (first to last failed request), whether every failed answer was that 503 with Retry-After
 *   (never a 502), and whether the other services failed at all;
 * - make logs: seconds until its first line;
 * - the images kept on the host after five deploys (images.keep_releases: 2 here);
 * - a rollback inside the instant-rollback window.
 * - make rotate-secret of POSTGRES_PASSWORD, then REDIS_PASSWORD (kept in the sandbox's plaintext
 *   secrets file): the requests that failed meanwhile, and how long each took.
 * Prints the figures, the machine's load, and a final JSON line:
 * {"restore_interruption_s":..,"restore_503_not_502":..,"others_failed":..,"rotate_failed_requests":..,"rotate_s":{..},
 *  "logs_first_line_s":..,"images_kept":..,"instant_rollback_s":..,"load":[..]}
 */
import { writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { generateBackupKey } from '../../lib/backup/keys.ts'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { setSinks } from '../../lib/report/output.ts'
import { runRunbook } from '../../lib/run/runbook.ts'
import { quoteValue } from '../../lib/secrets/edit.ts'
import { backup } from '../../runbooks/backup.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { logs } from '../../runbooks/logs.ts'
import { restore } from '../../runbooks/restore.ts'
import { rollback } from '../../runbooks/rollback.ts'
import { rotateSecret } from '../../runbooks/rotate-secret.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { buildFixtureImages } from '../sandbox/fixtures.ts'
import {
  createTestBed,
  destroyTestBed,
  FIXTURE_DOMAINS,
  onDroplet,
  runCaptured,
  writeManagedEnv,
} from '../support/test-bed.ts'
import { startLoadApart } from './load.ts'

const ENV = 'oc'
const load0 = loadavg()
await buildFixtureImages()
const bed = await createTestBed('bench-oncall', ['web-1'], { image: 'provisioned' })
const web = bed.droplets[0] as SandboxDroplet
try {
  process.env.BACKUP_KEY = generateBackupKey()
  writeManagedEnv(bed, ENV, {
    health: { path: '/health', timeout_s: 20 },
    images: { keep_releases: 2 },
    backup: { store: { type: 'local', dir: join(bed.group.dir, 'backups') } },
    secrets: ['POSTGRES_PASSWORD', 'REDIS_PASSWORD', 'BACKUP_KEY'],
  })
  const run = async (name: string, spec: Parameters<typeof runCaptured>[0], args: string[]) => {
    const t0 = performance.now()
    const r = await runCaptured(spec, ['--env', ENV, ...args])
    if (r.code !== 0) throw new Error(`${name} failed (${r.code}):\n${r.out}`)
    return { ...r, s: (performance.now() - t0) / 1000 }
  }
  await run('setup-server', setupServer, [])
  // Five deploys, alternating releases: the host keeps the images of keep_releases live releases.
  for (const release of ['v1', 'v2', 'v1', 'v2', 'v1'])
    await run(`deploy ${release}`, deploy, ['--release', release])
  const images = (
    await onDroplet(web, "docker image ls --format '{{.Repository}}:{{.Tag}}' | grep '^conciliaextrato/'")
  )
    .trim()
    .split('\n')
    .filter(Boolean)
  const releasesKept = new Set(images.map((i) => i.split(':')[1]))
  console.log(`after 5 deploys: ${images.length} app images kept (releases ${[...releasesKept].join(', ')})`)

  // The instant rollback: the deploy of v1 just kept v2 running.
  const rb = await run('rollback', rollback, [])
  console.log(`rollback inside the instant-rollback window: ${rb.s.toFixed(1)} s`)

  await run('backup', backup, [])
  const hosts = Object.values(FIXTURE_DOMAINS)
  const traffic = await startLoadApart(web.ports.http, hosts, '/health', 3, 1_000_000, 30, 30_000)
  const rs = await run('restore', restore, ['--yes'])
  const seen = await traffic.stop()
  const apiKind = `${FIXTURE_DOMAINS.api} 503`
  const others = Object.entries(seen.failures)
    .filter(([k]) => !k.startsWith(`${FIXTURE_DOMAINS.api} `))
    .reduce((n, [, c]) => n + c, 0)
  const only503 =
    Object.keys(seen.failures).every((k) => k === apiKind) && seen.withRetryAfter === seen.failed
  const interruptionS = (seen.failSpanMs[FIXTURE_DOMAINS.api] ?? 0) / 1000
  const summary = rs.out.split('\n').find((l) => l.startsWith('restore-summary ')) ?? ''
  console.log(
    `restore under ${seen.requests} requests: api showed the maintenance page for ${interruptionS.toFixed(1)} s; failures ${JSON.stringify(seen.failures)}; the others failed ${others} time(s)`,
  )
  console.log(summary)

  // make rotate-secret: the passwords move from this process's environment to the env's secrets file
  // (where the runbook keeps the new value), then each is rotated under the same requests.
  writeFileSync(
    join(bed.envDir, `${ENV}.secrets.env`),
    `POSTGRES_PASSWORD=${quoteValue(process.env.POSTGRES_PASSWORD ?? '')}\nREDIS_PASSWORD=${quoteValue(process.env.REDIS_PASSWORD ?? '')}\n`,
    { mode: 0o600 },
  )
  delete process.env.POSTGRES_PASSWORD
  delete process.env.REDIS_PASSWORD
  const rotateS: Record<string, number> = {}
  const rotating = await startLoadApart(web.ports.http, hosts, '/health', 3, 1_000_000, 30, 30_000)
  for (const name of ['POSTGRES_PASSWORD', 'REDIS_PASSWORD'])
    rotateS[name] = round((await run(`rotate-secret ${name}`, rotateSecret, ['--name', name])).s)
  const rotated = await rotating.stop()
  console.log(
    `rotate-secret under ${rotated.requests} requests: ${rotated.failed} failed ${JSON.stringify(rotated.failures)}; took ${JSON.stringify(rotateS)} s`,
  )

  // make logs: time to the first line on screen.
  let firstLineS = Number.NaN
  const t0 = performance.now()
  setSinks((t) => {
    if (Number.isNaN(firstLineS) && /^web-1 /m.test(t)) firstLineS = (performance.now() - t0) / 1000
  })
  const code = await runRunbook(logs, ['--env', ENV, '--since', '10m'])
  setSinks(
    (t) => process.stdout.write(t),
    (t) => process.stderr.write(t),
  )
  if (code !== 0) throw new Error(`make logs failed (${code})`)
  console.log(`make logs: first line after ${firstLineS.toFixed(1)} s`)

  const load1 = loadavg()
  console.log(
    `load average (1, 5, 15 min): before ${load0.map((l) => l.toFixed(1)).join(' ')}, after ${load1.map((l) => l.toFixed(1)).join(' ')}`,
  )
  console.log(
    JSON.stringify({
      restore_interruption_s: round(interruptionS),
      restore_503_not_502: only503,
      others_failed: others,
      rotate_failed_requests: rotated.failed,
      rotate_requests: rotated.requests,
      rotate_s: rotateS,
      logs_first_line_s: round(firstLineS),
      images_kept: images.length,
      releases_kept: releasesKept.size,
      instant_rollback_s: round(rb.s),
      load: load1.map(round),
    }),
  )
} finally {
  await destroyTestBed(bed)
}

function round(n: number): number {
  return Math.round(n * 10) / 10
}

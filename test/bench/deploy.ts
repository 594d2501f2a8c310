/**
 * make bench-deploy: continuous requests to all three domains through nginx on a sandbox droplet while
 * (a) deploy v1 -> v2, (b) rollback v2 -> v1, and (c) the naive baseline: the live services recreated
 * in place (`compose up -d --force-recreate`). Final JSON line:
 * {"deploy_s":..,"rollback_s":..,"requests":..,"failed":..,"max_gap_ms":..,"baseline_failed":..,"baseline_max_gap_ms":..}
 */
import { setSinks } from '../../lib/output.ts'
import { type RunbookSpec, runRunbook } from '../../lib/runbook.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { rollback } from '../../runbooks/rollback.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import {
  createTestBed,
  destroyTestBed,
  FIXTURE_DOMAINS,
  onDroplet,
  writeManagedEnv,
} from '../integration/support.ts'
import { buildFixtureImages } from '../sandbox/fixtures.ts'
import { startLoad } from './load.ts'

async function quiet(spec: RunbookSpec, args: string[]): Promise<number> {
  let out = ''
  setSinks((t) => {
    out += t
  })
  const started = performance.now()
  const code = await runRunbook(spec, ['--env', 'bench', ...args])
  setSinks(
    (t) => process.stdout.write(t),
    (t) => process.stderr.write(t),
  )
  if (code !== 0) throw new Error(`${spec.name} ${args.join(' ')} failed (${code}):\n${out}`)
  return (performance.now() - started) / 1000
}

await buildFixtureImages()
const bed = await createTestBed('bench-deploy', ['web-1'])
try {
  const web = bed.droplets[0]
  if (!web) throw new Error('no droplet')
  writeManagedEnv(bed, 'bench')
  console.log(`setup-server: ${(await quiet(setupServer, [])).toFixed(1)} s`)
  console.log(`deploy v1 (first, cold): ${(await quiet(deploy, ['--release', 'v1'])).toFixed(1)} s`)
  // Warm: v2's images are on the host before the timed deploy (the target is "images already there").
  await quiet(deploy, ['--release', 'v2'])
  await quiet(rollback, [])

  const hosts = Object.values(FIXTURE_DOMAINS)
  let load = startLoad(web.ports.http, hosts, '/health')
  const deployS = await quiet(deploy, ['--release', 'v2'])
  const rollbackS = await quiet(rollback, [])
  const ours = await load.stop()
  console.log(`deploy v1 -> v2: ${deployS.toFixed(1)} s; rollback v2 -> v1: ${rollbackS.toFixed(1)} s`)
  console.log(
    `under load: ${ours.requests} requests, ${ours.failed} failed, longest gap without a good answer ${ours.maxGapMs} ms`,
  )

  load = startLoad(web.ports.http, hosts, '/health')
  await new Promise((r) => setTimeout(r, 1000))
  const naive =
    'cd /srv/conciliaextrato/bench && docker-compose -p ce-bench-blue -f app.yaml --env-file blue.env up -d --force-recreate'
  await onDroplet(web, `su deploy -c ${JSON.stringify(naive)} >/dev/null 2>&1`)
  await new Promise((r) => setTimeout(r, 8000))
  const base = await load.stop()
  console.log(
    `baseline (recreate in place): ${base.requests} requests, ${base.failed} failed, longest gap ${base.maxGapMs} ms`,
  )
  console.log(
    JSON.stringify({
      deploy_s: Math.round(deployS * 10) / 10,
      rollback_s: Math.round(rollbackS * 10) / 10,
      requests: ours.requests,
      failed: ours.failed,
      max_gap_ms: ours.maxGapMs,
      baseline_failed: base.failed,
      baseline_max_gap_ms: base.maxGapMs,
    }),
  )
} finally {
  await destroyTestBed(bed)
}

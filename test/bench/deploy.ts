/**
 * make bench-deploy: continuous requests to all three domains through nginx on a sandbox droplet while
 * (a) deploy v1 -> v2, (b) rollback v2 -> v1, and (c) the naive baseline: the live services recreated
 * in place (`compose up -d --force-recreate`). Final JSON line:
 * {"deploy_s":..,"rollback_s":..,"requests":..,"failed":..,"max_gap_ms":..,"baseline_failed":..,"baseline_max_gap_ms":..}
 * HOSTS=2 (--hosts 2): the same on a swarm of two app hosts and a data host, the load on both; plus "hosts":2.
 */

import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { setSinks } from '../../lib/report/output.ts'
import { type RunbookSpec, runRunbook } from '../../lib/run/runbook.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { rollback } from '../../runbooks/rollback.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { buildFixtureImages } from '../sandbox/fixtures.ts'
import {
  createTestBed,
  destroyTestBed,
  FIXTURE_DOMAINS,
  onDroplet,
  writeManagedEnv,
  writeSwarmEnv,
} from '../support/test-bed.ts'
import { type LoadResult, startLoad } from './load.ts'

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

const hostsArg = process.argv.indexOf('--hosts')
const HOSTS = hostsArg >= 0 ? Number(process.argv[hostsArg + 1]) : 1
if (HOSTS !== 1 && HOSTS !== 2)
  throw new Error('--hosts (HOSTS=) is 1 (one droplet) or 2 (a swarm of two app hosts)')

await buildFixtureImages()
if (HOSTS === 2) await swarmBench()
else await singleHostBench()

async function singleHostBench(): Promise<void> {
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
}

/**
 * HOSTS=2: a swarm of two app hosts (nginx on each) and a data host; the load goes to both nodes'
 * nginx. The baseline replaces every task at once (docker service update --force, no rolling).
 */
async function swarmBench(): Promise<void> {
  const bed = await createTestBed('bench-swarm', ['app-1', 'app-2', 'db-1'])
  try {
    const nodes = bed.droplets.slice(0, 2)
    writeSwarmEnv(bed, 'bench')
    console.log(`setup-server (3 hosts): ${(await quiet(setupServer, [])).toFixed(1)} s`)
    console.log(`deploy v1 (first, cold): ${(await quiet(deploy, ['--release', 'v1'])).toFixed(1)} s`)
    await quiet(deploy, ['--release', 'v2'])
    await quiet(rollback, [])
    const hosts = Object.values(FIXTURE_DOMAINS)
    const loadAll = () => nodes.map((n) => startLoad(n.ports.http, hosts, '/health', 3))
    const sum = (rs: LoadResult[]) => ({
      requests: rs.reduce((n, r) => n + r.requests, 0),
      failed: rs.reduce((n, r) => n + r.failed, 0),
      maxGapMs: Math.max(...rs.map((r) => r.maxGapMs)),
    })
    let loads = loadAll()
    const deployS = await quiet(deploy, ['--release', 'v2'])
    const rollbackS = await quiet(rollback, [])
    const ours = sum(await Promise.all(loads.map((l) => l.stop())))
    console.log(`deploy v1 -> v2: ${deployS.toFixed(1)} s; rollback v2 -> v1: ${rollbackS.toFixed(1)} s`)
    console.log(
      `under load on both nodes: ${ours.requests} requests, ${ours.failed} failed, longest gap without a good answer ${ours.maxGapMs} ms`,
    )
    loads = loadAll()
    await new Promise((r) => setTimeout(r, 1000))
    const naive = ['site', 'saas', 'api']
      .map((s) => `docker service update -q --detach --force --update-parallelism 0 ce-bench_${s}`)
      .join(' && ')
    await onDroplet(nodes[0] as SandboxDroplet, `${naive} >/dev/null`)
    await new Promise((r) => setTimeout(r, 15000))
    const base = sum(await Promise.all(loads.map((l) => l.stop())))
    console.log(
      `baseline (every task replaced at once): ${base.requests} requests, ${base.failed} failed, longest gap ${base.maxGapMs} ms`,
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
        hosts: 2,
      }),
    )
  } finally {
    await destroyTestBed(bed)
  }
}

/**
 * make bench-deploy: continuous requests to all three domains through nginx on a sandbox droplet while
 * (a) deploy v1 -> v2, (b) rollback v2 -> v1, and (c) the naive baseline: the live services recreated
 * in place (`compose up -d --force-recreate`). Final JSON line:
 * {"deploy_s":..,"rollback_s":..,"requests":..,"failed":..,"max_gap_ms":..,"baseline_failed":..,"baseline_max_gap_ms":..}
 * HOSTS=2 (--hosts 2): the same on a swarm of two app hosts and a data host, the load on both; plus "hosts":2.
 * ROUNDS=N (--rounds N): N deploy + rollback cycles in a row, each under load; "pass" needs all N;
 * deploy_s and rollback_s are then the slowest round's, and "rounds" lists each.
 * BUSY=1 (--busy): a second droplet (its own env, deployed, ROWS rows) takes backups one after another
 * all through the timed deploy and rollback: the neighbour a droplet shares a loaded machine with.
 * RATE=N (--rate N): requests a second in all, paced (default 30: the issue measured at 20 a second);
 * RATE=0 sends as fast as they are answered (it saturates a 2-core machine). "rate" is in the JSON.
 * Every run prints the failures by kind (`<host> <status|error|timeout>`) and the machine's load, and
 * passes (exit 0, "pass":true) only when both runbooks succeed and no request failed.
 */

import { loadavg } from 'node:os'
import { join } from 'node:path'
import { generateBackupKey } from '../../lib/backup/keys.ts'
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
  spawnScript,
  type TestBed,
  writeManagedEnv,
  writeSwarmEnv,
} from '../support/test-bed.ts'
import { type LoadResult, startLoadApart } from './load.ts'

/** The last quiet run's output: its step table says where the seconds went. */
let lastOut = ''

/** `<n> <first words of the title> <time>` per step, from a run's summary table. */
function stepTimes(out: string): string {
  return [
    ...out.matchAll(/^(\d+)\s+(\S+(?: \S+){0,2}).*?\s(ok|changed|skipped|dry-run|failed)\s+([\d.]+s)$/gm),
  ]
    .map((m) => `${m[1]} ${m[2]} ${m[4]}`)
    .join(' · ')
}

async function quiet(spec: RunbookSpec, args: string[], env = 'bench'): Promise<number> {
  let out = ''
  setSinks((t) => {
    out += t
  })
  const started = performance.now()
  const code = await runRunbook(spec, ['--env', env, ...args])
  lastOut = out
  setSinks(
    (t) => process.stdout.write(t),
    (t) => process.stderr.write(t),
  )
  if (code !== 0) throw new Error(`${spec.name} ${args.join(' ')} failed (${code}):\n${out}`)
  return (performance.now() - started) / 1000
}

// make exports its command-line variables: HOSTS=, BUSY=1, ROWS= arrive in the environment (never
// pasted into the recipe's shell line); --hosts, --busy, --rows for a direct run.
const flag = (name: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? '') : undefined
}
const HOSTS = Number(flag('hosts') ?? process.env.HOSTS ?? 1)
if (HOSTS !== 1 && HOSTS !== 2)
  throw new Error('--hosts (HOSTS=) is 1 (one droplet) or 2 (a swarm of two app hosts)')
const BUSY = process.argv.includes('--busy') || ['1', 'true', 'yes'].includes(process.env.BUSY ?? '')
const ROWS = Number(flag('rows') ?? process.env.ROWS ?? 1_000_000)
const ROUNDS = Number(flag('rounds') ?? process.env.ROUNDS ?? 1)
const RATE = Number(flag('rate') ?? process.env.RATE ?? 30)
if (!Number.isInteger(RATE) || RATE < 0) throw new Error('--rate (RATE=) is requests a second, 0 for unpaced')
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 20)
  throw new Error('--rounds (ROUNDS=) is how many deploy + rollback cycles in a row, 1 to 20')
if (!Number.isInteger(ROWS) || ROWS < 1)
  throw new Error('--rows (ROWS=) is a whole number of rows, e.g. 1000000')
if (BUSY && HOSTS !== 1) throw new Error('BUSY=1 is for the single-host bench (HOSTS=1)')

/** The 1-minute load average, sampled every 5 s while a phase runs: how busy the machine was. */
function loadSampler() {
  const samples = [loadavg()[0] ?? 0]
  const timer = setInterval(() => samples.push(loadavg()[0] ?? 0), 5000)
  return {
    stop() {
      clearInterval(timer)
      samples.push(loadavg()[0] ?? 0)
      const r = (n: number) => Math.round(n * 10) / 10
      return { min: r(Math.min(...samples)), max: r(Math.max(...samples)) }
    },
  }
}

const failuresText = (f: Record<string, number>) =>
  Object.keys(f).length
    ? Object.entries(f)
        .map(([k, n]) => `${k} x${n}`)
        .join(', ')
    : 'none'

await buildFixtureImages()
if (HOSTS === 2) await swarmBench()
else await singleHostBench()

async function singleHostBench(): Promise<void> {
  const bed = await createTestBed('bench-deploy', BUSY ? ['web-1', 'busy-1'] : ['web-1'])
  try {
    const [web, neighbour] = bed.droplets
    if (!web) throw new Error('no droplet')
    writeManagedEnv(bed, 'bench', { hosts: [hostEntry(web)] })
    console.log(`setup-server: ${(await quiet(setupServer, [])).toFixed(1)} s`)
    console.log(`deploy v1 (first, cold): ${(await quiet(deploy, ['--release', 'v1'])).toFixed(1)} s`)
    // Warm: v2's images are on the host before the timed deploy (the target is "images already there").
    await quiet(deploy, ['--release', 'v2'])
    await quiet(rollback, [])
    const busy = neighbour ? await startBusyNeighbour(bed, neighbour) : undefined

    const hosts = Object.values(FIXTURE_DOMAINS)
    const machine = loadSampler()
    // ROUNDS deploy + rollback cycles in a row, each under its own load: "passes N times in a row".
    const rounds: Round[] = []
    for (let i = 1; i <= ROUNDS; i++) {
      const load = await startLoadApart(web.ports.http, hosts, '/health', 6, 1_000_000, RATE)
      const deployS = await quiet(deploy, ['--release', 'v2'])
      const rollbackS = await quiet(rollback, [])
      const rollbackSteps = stepTimes(lastOut)
      const r = { deployS, rollbackS, ...(await load.stop()) }
      rounds.push(r)
      console.log(
        `${ROUNDS > 1 ? `round ${i} of ${ROUNDS}: ` : ''}deploy v1 -> v2: ${deployS.toFixed(1)} s; rollback v2 -> v1: ${rollbackS.toFixed(1)} s`,
      )
      console.log(
        `under load: ${r.requests} requests, ${r.failed} failed (${r.retried} retried once after a keep-alive reset), longest gap without a good answer ${r.maxGapMs} ms`,
      )
      console.log(`  rollback's steps: ${rollbackSteps}`)
      console.log(`  failures: ${failuresText(r.failures)}`)
      for (const [kind, answers] of Object.entries(r.samples))
        for (const a of answers) console.log(`    ${kind}: ${a}`)
    }
    const loadDuring = machine.stop()
    const backups = await busy?.stop()
    console.log(`  machine load (1-min average, 2 cores here): ${loadDuring.min} to ${loadDuring.max}`)
    if (backups)
      console.log(
        `  beside it, ${neighbour?.name} (${ROWS} rows) took ${backups.done} backups (${backups.failed} failed) meanwhile`,
      )

    const load = await startLoadApart(web.ports.http, hosts, '/health', 6, 1_000_000, RATE)
    await new Promise((r) => setTimeout(r, 1000))
    const naive =
      'cd /srv/conciliaextrato/bench && docker-compose -p ce-bench-blue -f app.yaml --env-file blue.env up -d --force-recreate'
    await onDroplet(web, `su deploy -c ${JSON.stringify(naive)} >/dev/null 2>&1`)
    await new Promise((r) => setTimeout(r, 8000))
    const base = await load.stop()
    console.log(
      `baseline (recreate in place): ${base.requests} requests, ${base.failed} failed, longest gap ${base.maxGapMs} ms`,
    )
    const ours = rounds.reduce(
      (t, r) => ({
        requests: t.requests + r.requests,
        failed: t.failed + r.failed,
        retried: t.retried + r.retried,
        maxGapMs: Math.max(t.maxGapMs, r.maxGapMs),
      }),
      { requests: 0, failed: 0, retried: 0, maxGapMs: 0 },
    )
    const s1 = (n: number) => Math.round(n * 10) / 10
    const pass = ours.failed === 0 && (!backups || (backups.done > 0 && backups.failed === 0))
    console.log(
      JSON.stringify({
        deploy_s: s1(Math.max(...rounds.map((r) => r.deployS))),
        rollback_s: s1(Math.max(...rounds.map((r) => r.rollbackS))),
        rate: RATE,
        ...(ROUNDS > 1
          ? {
              rounds: rounds.map((r) => ({
                deploy_s: s1(r.deployS),
                rollback_s: s1(r.rollbackS),
                failed: r.failed,
                retried: r.retried,
                max_gap_ms: r.maxGapMs,
              })),
            }
          : {}),
        requests: ours.requests,
        failed: ours.failed,
        failures: rounds.reduce<Record<string, number>>((all, r) => {
          for (const [k, n] of Object.entries(r.failures)) all[k] = (all[k] ?? 0) + n
          return all
        }, {}),
        retried: ours.retried,
        max_gap_ms: ours.maxGapMs,
        baseline_failed: base.failed,
        baseline_max_gap_ms: base.maxGapMs,
        load_1m: loadDuring,
        ...(backups ? { busy: { rows: ROWS, backups: backups.done, backups_failed: backups.failed } } : {}),
        pass,
      }),
    )
    if (!pass) process.exitCode = 1
  } finally {
    await destroyTestBed(bed)
  }
}

type Round = LoadResult & { deployS: number; rollbackS: number }

function hostEntry(d: SandboxDroplet) {
  return { name: d.name, address: '127.0.0.1', ssh_port: d.ports.ssh, host_key: d.hostKey }
}

/**
 * The neighbour: its own env "busy" (setup-server, deploy v1, ROWS rows in Postgres), then `backup`
 * run again and again in child processes (as cron or an on-call would) until stop().
 */
async function startBusyNeighbour(bed: TestBed, d: SandboxDroplet) {
  process.env.BACKUP_KEY ??= generateBackupKey()
  writeManagedEnv(bed, 'busy', {
    hosts: [hostEntry(d)],
    secrets: ['POSTGRES_PASSWORD', 'REDIS_PASSWORD', 'BACKUP_KEY'],
    backup: {
      store: { type: 'local', dir: join(bed.envDir, '..', 'busy-backups') },
      keep: { daily: 7, weekly: 4, monthly: 12 },
    },
  })
  console.log(`busy neighbour setup-server: ${(await quiet(setupServer, [], 'busy')).toFixed(1)} s`)
  console.log(`busy neighbour deploy v1: ${(await quiet(deploy, ['--release', 'v1'], 'busy')).toFixed(1)} s`)
  const t0 = performance.now()
  await onDroplet(
    d,
    `docker exec -i $(docker ps -q --filter label=com.docker.compose.project=ce-busy-data --filter label=com.docker.compose.service=postgres) psql -XAtq -v ON_ERROR_STOP=1 -U conciliaextrato -d conciliaextrato -c ${JSON.stringify(
      `create table bank_lines(id bigint primary key, amount numeric(12,2), memo text); insert into bank_lines select g, (g * 7 % 100000) / 100.0, md5(g::text) from generate_series(1, ${ROWS}) g`,
    )}`,
  )
  console.log(`busy neighbour: ${ROWS} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  let running = true
  let done = 0
  let failed = 0
  let current: ReturnType<typeof spawnScript> | undefined
  const loop = (async () => {
    while (running) {
      current = spawnScript('runbooks/backup.ts', ['--env', 'busy', '--yes'])
      const code = await current.exit
      if (!running && code !== 0) break // stopped by stop(): not a failed backup
      if (code === 0) done++
      else {
        failed++
        console.log(`busy neighbour: a backup failed (${code}):\n${current.output().slice(-2000)}`)
      }
    }
  })()
  // The first backup is under way before the timed part starts.
  await current?.until('[2/')
  return {
    async stop() {
      running = false
      await loop
      return { done, failed }
    },
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
    const loadAll = () =>
      Promise.all(nodes.map((n) => startLoadApart(n.ports.http, hosts, '/health', 3, 1_000_000, RATE)))
    const sum = (rs: LoadResult[]) => ({
      requests: rs.reduce((n, r) => n + r.requests, 0),
      failed: rs.reduce((n, r) => n + r.failed, 0),
      retried: rs.reduce((n, r) => n + r.retried, 0),
      maxGapMs: Math.max(...rs.map((r) => r.maxGapMs)),
    })
    let loads = await loadAll()
    const deployS = await quiet(deploy, ['--release', 'v2'])
    const rollbackS = await quiet(rollback, [])
    const ours = sum(await Promise.all(loads.map((l) => l.stop())))
    console.log(`deploy v1 -> v2: ${deployS.toFixed(1)} s; rollback v2 -> v1: ${rollbackS.toFixed(1)} s`)
    console.log(
      `under load on both nodes: ${ours.requests} requests, ${ours.failed} failed (${ours.retried} retried once after a keep-alive reset), longest gap without a good answer ${ours.maxGapMs} ms`,
    )
    loads = await loadAll()
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

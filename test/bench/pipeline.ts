/**
 * make bench-pipeline: the local part of the staging pipeline, stage by stage, on a fresh copy of the
 * fixture Rust workspace (so nothing is cached from an earlier run but Cargo's own downloads, of which
 * the std-only fixture has none):
 *   1. gates: `make gates` (fmt, clippy, check, test, audit, migrations on a scratch Postgres);
 *   2. build: `cargo build --release` and the three images, tagged with a new release;
 *   3. deploy: `make deploy` of that release to a sandbox droplet already set up (setup-server is not
 *      part of a pipeline), images streamed over SSH.
 * Each stage runs as its own process, as CI's steps would. Prints the stages and a final JSON line
 * {"gates_s":..,"build_s":..,"deploy_s":..,"total_s":..}. Target (docs/ci/README.md): the staging
 * pipeline under 5 minutes, of which these stages are the part that can be measured here.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { table } from '../../lib/report/output.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { buildDataImages, buildWorkspaceRelease, DATA_IMAGES } from '../sandbox/fixtures.ts'
import {
  createTestBed,
  destroyTestBed,
  runCaptured,
  spawnScript,
  writeManagedEnv,
} from '../support/test-bed.ts'

const APP = join(import.meta.dirname, '..', 'sandbox', 'app')
const round = (n: number) => Math.round(n * 10) / 10

async function stage(name: string, argv: string[]): Promise<number> {
  const t0 = performance.now()
  const run = spawnScript(argv[0] ?? '', argv.slice(1))
  const code = await run.exit
  if (code !== 0) throw new Error(`${name} failed (exit ${code}):\n${run.output().slice(-3000)}`)
  return (performance.now() - t0) / 1000
}

await buildDataImages()
const workspace = mkdtempSync(join(tmpdir(), 'ce-pipeline-ws-'))
execFileSync('bash', ['-c', `tar -C "${APP}" --exclude=./target -cf - . | tar -C "${workspace}" -xf -`])
const release = `bench${Date.now().toString(36)}`
console.log(`bench-pipeline: workspace ${workspace}, release ${release}; setting up a sandbox droplet`)
const bed = await createTestBed('pipeline', ['web-1'])
let failed = false
try {
  writeManagedEnv(bed, 'pipe', { health: { path: '/health', timeout_s: 30 } })
  const setup = await runCaptured(setupServer, ['--env', 'pipe'])
  if (setup.code !== 0) throw new Error(`setup-server failed:\n${setup.out}`)

  const gates = await stage('gates', [
    'runbooks/gates.ts',
    '--workspace',
    workspace,
    '--migrations',
    'migrations/v2',
    '--postgres-image',
    DATA_IMAGES.postgres,
  ])
  console.log(`  gates: ${round(gates)} s`)
  const t0 = performance.now()
  await buildWorkspaceRelease(workspace, release, 'migrations/v2')
  const build = (performance.now() - t0) / 1000
  console.log(`  build: ${round(build)} s`)
  const deploy = await stage('deploy', ['runbooks/deploy.ts', '--env', 'pipe', '--release', release, '--yes'])
  console.log(`  deploy: ${round(deploy)} s`)
  const total = gates + build + deploy
  console.log(
    `\n${table([
      ['stage', 'seconds'],
      ['gates', String(round(gates))],
      ['build', String(round(build))],
      ['deploy', String(round(deploy))],
      ['total', String(round(total))],
    ])}`,
  )
  console.log(
    JSON.stringify({
      gates_s: round(gates),
      build_s: round(build),
      deploy_s: round(deploy),
      total_s: round(total),
    }),
  )
} catch (err) {
  failed = true
  console.error(`bench-pipeline failed: ${(err as Error).message}`)
} finally {
  await destroyTestBed(bed)
  execFileSync('bash', [
    '-c',
    `docker rmi conciliaextrato/{site,saas,api}:${release} >/dev/null 2>&1 || true`,
  ])
}
process.exit(failed ? 1 : 0)

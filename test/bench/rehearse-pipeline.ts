/**
 * make rehearse-pipeline: the app's callers (docs/ci/*.yml) and this repository's reusable workflows end
 * to end on this machine, against the committed staging and production env files on sandbox droplets
 * (test/sandbox/pipeline-rehearsal.ts). Prints every workflow's jobs and steps, and a final JSON line
 * {"workflows_run":N,"pr_checks_s":..,"staging_merge_to_live_s":..,"production_merge_to_live_s":..,
 *  "promoted_same_digest":true,"unstaged_release_refused":true,"stale_run_refused":true,
 *  "failing_gate_deployed":false,"failing_gate_alerted":true,"rollback_workflow_s":..,...}
 * Exit 0 only when every check holds and staging < 120 s, production < 240 s from merge to live.
 */
import { availableParallelism, loadavg } from 'node:os'
import { rehearsePipeline } from '../sandbox/pipeline-rehearsal.ts'

const load = () => `load ${loadavg()[0]?.toFixed(1)} on ${availableParallelism()} cores`
console.log(`rehearse-pipeline: ${load()}`)
const r = await rehearsePipeline({ keep: Boolean(process.env.KEEP_TEST_BED) })
const { problems, runs, ...figures } = r
console.log('\nworkflow runs:')
for (const run of runs)
  console.log(
    `  ${run.what.padEnd(24)} ${run.conclusion.padEnd(8)} ${String(run.s).padStart(6)} s  ${Object.entries(
      run.jobs,
    )
      .map(([id, result]) => `${id} ${result}`)
      .join(', ')}`,
  )
if (r.staging_merge_to_live_s >= 120)
  problems.push(`staging merge to live ${r.staging_merge_to_live_s} s (target < 120 s)`)
if (r.production_merge_to_live_s >= 240)
  problems.push(`production merge to live ${r.production_merge_to_live_s} s (target < 240 s)`)
if (problems.length) console.log(`\nproblems:\n  - ${problems.join('\n  - ')}`)
console.log(`\n(${load()} at the end; 1-minute load during the run: ${r.load_avg_1m.join(' to ')})`)
console.log(JSON.stringify(figures))
process.exit(problems.length ? 1 : 0)

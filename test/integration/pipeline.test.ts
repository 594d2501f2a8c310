import * as assert from 'uvu/assert'
import { suite } from '../harness.ts'
import { rehearsePipeline } from '../sandbox/pipeline-rehearsal.ts'

// make rehearse-pipeline's flow: the app's callers (docs/ci/*.yml) and the reusable workflows, run by
// GitHub's parser and evaluator against the COMMITTED staging and production env files on the sandbox.
// The timing targets (staging < 120 s, production < 240 s from merge to live) are make
// rehearse-pipeline's, never asserted here.
// Its one test took 1295 s on a slow CI machine (stop 36) and 1667 s here beside the setup-server suite
// (load 13 to 24): the limit only catches a hang.
const test = suite('pipeline rehearsal: the committed workflows end to end on staging and production', {
  timeoutS: 3000,
})

test('a pull request, staging and production pipelines, a stale run, a red gate, a commit staging never ran, a rollback', async () => {
  const r = await rehearsePipeline({ log: () => {} })
  // Where its time goes (CI's log keeps it): the world and both setups, then each workflow run.
  process.stdout.write(
    `      world and setups ${r.world_s}s; ${r.runs.map((run) => `${run.what} ${run.s}s`).join('; ')}; total ${r.total_s}s; load ${r.load_avg_1m.join(' ')}\n`,
  )
  assert.equal(r.problems, [], JSON.stringify(r, null, 2))
  assert.equal(
    r.runs.map((run) => [run.what, run.conclusion, run.jobs]),
    [
      ['pull-request.yml c2', 'success', { gates: 'success', images: 'skipped' }],
      // c1 pushed around the merge queue: not built yet, so built here (gates beside images).
      [
        'staging.yml c1',
        'success',
        { built: 'success', gates: 'success', images: 'success', deploy: 'success', alert: 'skipped' },
      ],
      ['production.yml c1', 'success', { deploy: 'success', alert: 'skipped' }],
      // The merge queue's run of c2 builds its images beside the gates; the push then only deploys.
      ['pull-request.yml c2', 'success', { gates: 'success', images: 'success' }],
      [
        'staging.yml c2',
        'success',
        { built: 'success', gates: 'skipped', images: 'skipped', deploy: 'success', alert: 'skipped' },
      ],
      // c1 again after c2 went live (found built): the deploy refuses the older commit; the team is told.
      [
        'staging.yml c1',
        'failure',
        { built: 'success', gates: 'skipped', images: 'skipped', deploy: 'failure', alert: 'success' },
      ],
      // a red gate: nothing deployed; the team is told.
      [
        'staging.yml c4',
        'failure',
        { built: 'success', gates: 'failure', images: 'success', deploy: 'skipped', alert: 'success' },
      ],
      // the merge commit m: promoted by its tree as c2, with c2's digests.
      ['production.yml m', 'success', { deploy: 'success', alert: 'skipped' }],
      // c3 never ran on staging: refused before any change; the team is told.
      ['production.yml c3', 'failure', { deploy: 'failure', alert: 'success' }],
      ['rollback.yml c3', 'success', { rollback: 'success' }],
      ['.github/workflows/scheduled.yml dispatched', 'success', { run: 'success' }],
      ['.github/workflows/scheduled.yml scheduled', 'success', { run: 'success' }],
    ],
  )
  assert.ok(r.queue_build_deployed)
  assert.ok(r.promoted_same_digest)
  assert.ok(r.promoted_merge_by_tree)
  assert.ok(r.stale_run_refused)
  assert.ok(r.unstaged_release_refused)
  assert.is(r.failing_gate_deployed, false)
  assert.ok(r.failing_gate_alerted)
  assert.ok(r.scheduled_heartbeats)
  assert.ok(r.records_shipped)
  // Callers and the reusable workflows they called: pull-request (gates); the queue (gates, images);
  // staging x4 (built, gates, images, deploy; skipped ones not called: c2 and the stale c1 skip gates
  // and images, c4 skips deploy); production x3 (deploy); rollback; scheduled x2.
  assert.is(r.workflows_run, 2 + 3 + (5 + 3 + 3 + 4) + 3 * 2 + 2 + 2)
})

test.run()

import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { parseAudit } from '../../lib/gates/commands.ts'
import { suite } from '../harness.ts'
import { audit, readDatabase, satisfies } from '../sandbox/cargo-audit-standin.ts'
import { condition, parseKeyValues, type RunnerWorld, WorkflowRunner } from '../sandbox/workflow-run.ts'

// The local workflow runner of make rehearse-pipeline, on small workflows; and the cargo-audit stand-in.
const test = suite('workflow runner: needs, outputs, if:, secrets; the cargo-audit stand-in')

const dir = mkdtempSync(join(tmpdir(), 'ce-wf-'))
function workflow(name: string, body: string): string {
  const file = join(dir, name)
  writeFileSync(file, body)
  return file
}
function runner(lines: string[] = []): WorkflowRunner {
  const world: RunnerWorld = {
    repoSecrets: { REPO_ONLY: 'repo-secret-value' },
    environments: { staging: { ENV_ONLY: 'env-secret-value' } },
    base: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' },
    appRepo: dir,
    appRepoName: 'conciliaextrato/app',
    actions: {},
    log: (l) => lines.push(l),
  }
  return new WorkflowRunner(world)
}
const push = { event_name: 'push' as const, sha: 'a'.repeat(40), ref_name: 'staging' }

test('if: without a status function is success() && (...); failure() and always() say what they say', () => {
  const ok = { success: true, failure: false, cancelled: false }
  const bad = { success: false, failure: true, cancelled: false }
  assert.is(condition(undefined, {}, ok), true)
  assert.is(condition(undefined, {}, bad), false)
  assert.is(condition("github.ref_name == 'staging'", { github: { ref_name: 'staging' } }, bad), false)
  assert.is(condition(`\${{ github.ref_name == 'staging' }}`, { github: { ref_name: 'staging' } }, ok), true)
  assert.is(condition('failure()', {}, bad), true)
  assert.is(condition('failure() || cancelled()', {}, ok), false)
  assert.is(condition('always()', {}, bad), true)
  assert.throws(() => condition('matrix.x', {}, ok), /cannot evaluate if: matrix\.x/)
})

test('jobs run as their needs allow; outputs flow through needs; a failed need skips the default and runs failure()', async () => {
  const file = workflow(
    'needs.yml',
    `name: t
on: push
jobs:
  build:
    runs-on: ubuntu-24.04
    outputs:
      digest: \${{ steps.b.outputs.digest }}
    steps:
      - id: b
        run: echo "digest=sha256:abc" >> "$GITHUB_OUTPUT"
  gates:
    runs-on: ubuntu-24.04
    steps:
      - run: echo checking; exit 3
      - name: after a failure
        run: echo never
      - name: on failure
        if: failure()
        run: echo "gate failed"
  deploy:
    needs: [gates, build]
    runs-on: ubuntu-24.04
    steps:
      - run: echo deploying
  report:
    needs: build
    runs-on: ubuntu-24.04
    steps:
      - run: test "$D" = "sha256:abc"
        env:
          D: \${{ needs.build.outputs.digest }}
  alert:
    needs: [gates, build, deploy]
    if: failure()
    runs-on: ubuntu-24.04
    steps:
      - run: 'echo "alert: $R"'
        env:
          R: \${{ needs.gates.result }}
`,
  )
  const lines: string[] = []
  const r = await runner(lines).run(file, push)
  assert.is(r.conclusion, 'failure')
  assert.is(r.jobs.build?.result, 'success')
  assert.is(r.jobs.build?.outputs.digest, 'sha256:abc')
  assert.is(r.jobs.gates?.result, 'failure')
  assert.equal(r.jobs.gates?.failedStep?.code, 3)
  assert.is(r.jobs.deploy?.result, 'skipped')
  assert.is(r.jobs.report?.result, 'success')
  assert.is(r.jobs.alert?.result, 'success')
  const out = lines.join('\n')
  assert.match(out, 'alert: failure')
  assert.match(out, 'gate failed')
  assert.not.match(out, 'never')
  assert.not.match(out, 'deploying')
})

test("a step sees only the secrets its env: passes; a job's environment adds that environment's", async () => {
  const file = workflow(
    'secrets.yml',
    `name: t
on: push
jobs:
  plain:
    runs-on: ubuntu-24.04
    steps:
      - run: env | grep -c secret-value || true
      - run: test "$R" = repo-secret-value && test -z "$E"
        env:
          R: \${{ secrets.REPO_ONLY }}
          E: \${{ secrets.ENV_ONLY }}
  staged:
    runs-on: ubuntu-24.04
    environment: staging
    steps:
      - run: test "$E" = env-secret-value
        env:
          E: \${{ secrets.ENV_ONLY }}
`,
  )
  const lines: string[] = []
  const r = await runner(lines).run(file, push)
  assert.is(r.jobs.plain?.result, 'success', lines.join('\n'))
  assert.is(r.jobs.staged?.result, 'success', lines.join('\n'))
  // The first step's env has no secret: grep counts 0 lines.
  assert.ok(lines.some((l) => l.trim() === '0'))
})

test('a uses: with no local equivalent, or a reusable workflow not of the runbooks repository, is an error', async () => {
  const action = workflow(
    'action.yml',
    `name: t
on: push
jobs:
  j:
    runs-on: ubuntu-24.04
    steps:
      - uses: some/action@${'1'.repeat(40)}
`,
  )
  const r = await runner().run(action, push)
  assert.is(r.jobs.j?.result, 'failure')
  assert.match(r.jobs.j?.failedStep?.tail ?? '', `no local equivalent for some/action@${'1'.repeat(40)}`)
  const reusable = workflow(
    'reusable.yml',
    `name: t
on: push
jobs:
  j:
    uses: other/repo/.github/workflows/x.yml@${'2'.repeat(40)}
`,
  )
  try {
    await runner().run(reusable, push)
    assert.unreachable('ran')
  } catch (err) {
    assert.match((err as Error).message, 'no local equivalent for the reusable workflow other/repo')
  }
  const broken = workflow('broken.yml', 'name: t\non: push\njobs:\n  j:\n    runs-on: x\n    stepz: []\n')
  try {
    await runner().run(broken, push)
    assert.unreachable('ran')
  } catch (err) {
    assert.match((err as Error).message, "GitHub's parser rejects it")
  }
})

test('a matrix runs once per value with matrix.* and its environment; job.status says failure after a failed step', async () => {
  const file = workflow(
    'matrix.yml',
    `name: t
on: push
jobs:
  run:
    if: github.ref == 'refs/heads/staging'
    strategy:
      matrix:
        environment: [staging, other]
    runs-on: ubuntu-24.04
    steps:
      - run: echo "env $E"; test "$E" = staging
        env:
          E: \${{ matrix.environment }}
      - if: failure() || cancelled()
        run: echo "status $S"
        env:
          S: \${{ job.status }}
`,
  )
  const lines: string[] = []
  const world = runner(lines)
  const r = await world.run(file, push)
  assert.is(r.jobs.run?.result, 'failure')
  assert.equal(
    Object.entries(r.jobs.run?.jobs ?? {}).map(([id, j]) => [id, j.result]),
    [
      ['run (staging)', 'success'],
      ['run (other)', 'failure'],
    ],
  )
  const out = lines.join('\n')
  assert.match(out, 'env staging')
  assert.match(out, 'env other')
  assert.match(out, 'status failure')
  assert.not.match(out, 'status success')
  // if: github.ref == refs/heads/staging: on another branch the job is skipped.
  const skipped = await runner().run(file, { ...push, ref_name: 'main' })
  assert.is(skipped.jobs.run?.result, 'skipped')
})

test('$GITHUB_OUTPUT and $GITHUB_ENV: k=v lines and heredocs', () => {
  assert.equal(parseKeyValues('a=1\nb<<EOF\nx\ny=z\nEOF\nc=3=4\n'), { a: '1', b: 'x\ny=z', c: '3=4' })
})

test('the cargo-audit stand-in lists locked crates in affected versions, in the report the gates judge', () => {
  assert.ok(satisfies('0.6.14', '^0.6.14'))
  assert.not.ok(satisfies('0.7.0', '^0.6.14'))
  assert.ok(satisfies('1.2.0', '^1.0.0'))
  assert.ok(satisfies('0.1.5', '= 0.1.*'))
  assert.ok(satisfies('1.6.1', '>= 1.6.1'))
  assert.not.ok(satisfies('1.6.0', '>= 1.6.1'))
  const db = readDatabase(join(import.meta.dirname, '..', 'sandbox', 'advisory-db'))
  const lock = (pkgs: [string, string][]) =>
    pkgs.map(([n, v]) => `[[package]]\nname = "${n}"\nversion = "${v}"\n`).join('\n')
  const found = audit(
    lock([
      ['time', '0.2.22'],
      ['smallvec', '1.6.0'],
      ['api', '0.1.0'],
    ]),
    db,
  )
  assert.is(found.vulnerabilities.count, 2)
  const judged = parseAudit(JSON.stringify(found))
  assert.equal(
    judged.blocking.map((f) => f.id),
    ['CE-FIXTURE-0002'],
  )
  assert.equal(
    judged.other.map((f) => `${f.id} ${f.severity}`),
    ['CE-FIXTURE-0001 medium'],
  )
  const clean = audit(
    lock([
      ['time', '0.2.23'],
      ['time', '0.1.5'],
      ['smallvec', '0.6.14'],
    ]),
    db,
  )
  assert.is(clean.vulnerabilities.found, false)
  assert.throws(() => readDatabase(dir), /couldn't open advisory database/)
})

test('continue-on-error: the step fails (outcome), the job goes on and succeeds (conclusion); an event not in on: is refused', async () => {
  const file = workflow(
    'tolerant.yml',
    `name: t
on: push
jobs:
  deploy:
    runs-on: ubuntu-24.04
    steps:
      - id: ship
        continue-on-error: true
        run: exit 7
      - name: after
        run: test "$OUTCOME/$CONCLUSION" = "failure/success"
        env:
          OUTCOME: \${{ steps.ship.outcome }}
          CONCLUSION: \${{ steps.ship.conclusion }}
      - id: strict
        run: exit 2
`,
  )
  const r = await runner().run(file, push)
  assert.is(r.jobs.deploy?.result, 'failure')
  // The tolerated step did not fail the job; the next step ran and saw both values; the strict one failed it.
  assert.is(r.jobs.deploy?.failedStep?.name, 'run 3')
  assert.is(r.jobs.deploy?.failedStep?.code, 2)
  let refused = ''
  await runner()
    .run(file, { ...push, event_name: 'merge_group' })
    .catch((e: Error) => {
      refused = e.message
    })
  assert.match(refused, 'does not run on merge_group (on: push)')
})

test.run()

import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { parse as parseYaml } from 'yaml'
import {
  CI_ONLY_SECRETS,
  type LintContext,
  lintWorkflow,
  makeCalls,
  makeTargets,
  runsInstallScripts,
} from '../../lib/ci/workflow-lint.ts'
import { listEnvs, loadEnv } from '../../lib/env/load.ts'
import { suite } from '../harness.ts'
import { resolveExpressions, stepCondition } from '../sandbox/workflow-step.ts'

// Every workflow of this repository and every example for the app repository, through GitHub's own
// parser and our rules: make targets exist, secrets and inputs are declared, actions pinned by SHA.
const test = suite('GitHub Actions workflows: parsed and checked')
const ROOT = join(import.meta.dirname, '..', '..')
const files = [
  ...readdirSync(join(ROOT, '.github/workflows')).map((f) => join('.github/workflows', f)),
  ...readdirSync(join(ROOT, 'docs/ci')).map((f) => join('docs/ci', f)),
].filter((f) => /\.ya?ml$/.test(f))

function context(): LintContext {
  const environmentSecrets = new Set<string>()
  // env files whose hosts need the sandbox are skipped: their secrets are the sandbox's own.
  for (const name of listEnvs().filter((n) => n !== 'local'))
    for (const s of loadEnv(name).secrets) environmentSecrets.add(s)
  return {
    makeTargets: makeTargets(readFileSync(join(ROOT, 'Makefile'), 'utf8')),
    knownSecrets: new Set([...CI_ONLY_SECRETS, ...environmentSecrets]),
    environmentSecrets,
  }
}

test('every workflow and example caller passes', () => {
  assert.ok(files.length >= 7, files.join(' '))
  const ctx = context()
  for (const f of files) assert.equal(lintWorkflow(f, readFileSync(join(ROOT, f), 'utf8'), ctx), [], f)
})

test('make calls are read from scripts with -C and variables', () => {
  assert.equal(makeCalls('make -C runbooks gates WORKSPACE="$X" MIGRATIONS=m'), ['gates'])
  assert.equal(makeCalls('set -e\nmake deploy ENV=staging RELEASE=abc YES=1 && make health ENV=x'), [
    'deploy',
    'health',
  ])
  assert.equal(makeCalls('echo remake nothing; cmake build'), [])
})

const BASE = `name: t
on:
  workflow_call:
    inputs:
      environment: { type: string, required: true }
    secrets:
      SSH_PRIVATE_KEY: { required: true }
jobs:
  j:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683
        with:
          persist-credentials: false
      - run: make deploy ENV=\${{ inputs.environment }}
        env:
          K: \${{ secrets.SSH_PRIVATE_KEY }}
`

test('the base case passes, so each rejection below is the rule at work', () => {
  assert.equal(lintWorkflow('t.yml', BASE, context()), [])
})

test("rejected: an environment's secret declared required by a reusable workflow whose job has an environment", () => {
  const withEnvironment = BASE.replace(
    '    runs-on: ubuntu-24.04\n',
    '    runs-on: ubuntu-24.04\n    environment: staging\n',
  )
  assert.equal(lintWorkflow('t.yml', withEnvironment, context()), [
    "t.yml: on.workflow_call.secrets.SSH_PRIVATE_KEY is required, but it is a GitHub environment's secret (the job's environment: brings it; the caller cannot pass it): declare it required: false",
  ])
  assert.equal(
    lintWorkflow(
      't.yml',
      withEnvironment.replace('SSH_PRIVATE_KEY: { required: true }', 'SSH_PRIVATE_KEY: { required: false }'),
      context(),
    ),
    [],
  )
})

test('rejected: a make target that does not exist', () => {
  const problems = lintWorkflow('t.yml', BASE.replace('make deploy', 'make deploy-everything'), context())
  assert.equal(problems, [
    't.yml: jobs.j.steps[1] runs `make deploy-everything`, which the Makefile does not define',
  ])
})

test('rejected: an action pinned by tag, an undeclared secret or input, a schema error', () => {
  const ctx = context()
  assert.match(
    lintWorkflow('t.yml', BASE.replace(/checkout@[0-9a-f]{40}/, 'checkout@v4'), ctx).join('\n'),
    'actions/checkout@v4 is not pinned by a full commit SHA',
  )
  assert.equal(lintWorkflow('t.yml', BASE.replace('persist-credentials: false', 'fetch-depth: 1'), ctx), [
    't.yml: jobs.j.steps[0] checks out without persist-credentials: false (the token stays in .git/config)',
  ])
  assert.match(
    lintWorkflow('t.yml', BASE.replace('secrets.SSH_PRIVATE_KEY }}', 'secrets.PROD_DB_URL }}'), ctx).join(
      '\n',
    ),
    'secrets.PROD_DB_URL is used but not declared under on.workflow_call.secrets',
  )
  assert.match(
    lintWorkflow('t.yml', BASE.replace('inputs.environment }}', 'inputs.env }}'), ctx).join('\n'),
    'inputs.env is used but not declared',
  )
  assert.match(
    lintWorkflow('t.yml', BASE.replace('runs-on', 'run-on'), ctx).join('\n'),
    "Unexpected value 'run-on'",
  )
  const push = BASE.replace(/on:[\s\S]*?jobs:/, 'on: push\njobs:').replace(
    'inputs.environment',
    'github.ref_name',
  )
  assert.match(
    lintWorkflow('t.yml', push.replace('secrets.SSH_PRIVATE_KEY', 'secrets.NOBODY_HAS_THIS'), ctx).join('\n'),
    'secrets.NOBODY_HAS_THIS is not a secret any env file declares',
  )
})

test('rejected: npm install scripts in a job that holds secrets (GITHUB_TOKEN alone is not one)', () => {
  const ctx = context()
  const withInstall = (run: string, secret = 'SSH_PRIVATE_KEY') =>
    BASE.replace('      - run: make deploy', `      - run: ${run}\n      - run: make deploy`).replace(
      'secrets.SSH_PRIVATE_KEY',
      `secrets.${secret}`,
    )
  assert.equal(lintWorkflow('t.yml', withInstall('npm ci'), ctx), [
    't.yml: jobs.j.steps[1] runs npm ci/install without --ignore-scripts in a job that holds SSH_PRIVATE_KEY',
  ])
  assert.equal(lintWorkflow('t.yml', withInstall('npm ci --ignore-scripts'), ctx), [])
  assert.equal(lintWorkflow('t.yml', withInstall('npm ci', 'GITHUB_TOKEN'), ctx), [])
  assert.ok(runsInstallScripts('cd x && npm install'))
  assert.ok(runsInstallScripts('npm ci --ignore-scripts && npm i left-pad'))
  assert.not.ok(runsInstallScripts('npm run check && npm test'))
  assert.not.ok(runsInstallScripts('npm ci --prefix runbooks --ignore-scripts'))
})

test('deploy and rollback share one concurrency group per environment and are never cancelled halfway', () => {
  for (const file of ['deploy.yml', 'rollback.yml']) {
    const doc = parseYaml(readFileSync(join(ROOT, '.github/workflows', file), 'utf8')) as {
      concurrency: { group: string; 'cancel-in-progress': boolean }
    }
    assert.equal(
      doc.concurrency,
      { group: `deploy-${'$'}{{ inputs.environment }}`, 'cancel-in-progress': false },
      file,
    )
  }
})

test("the rehearsal's stand-in runner evaluates what our steps use, and refuses anything else", () => {
  const ctx = {
    inputs: { environment: 'staging' },
    secrets: { K: 's3cret' },
    github: { ref_name: 'staging', sha: 'abc' },
  }
  const e = (x: string) => `${'$'}{{ ${x} }}`
  assert.is(
    resolveExpressions(`${e('inputs.environment')}/${e('secrets.K')}@${e('github.sha')}`, ctx),
    'staging/s3cret@abc',
  )
  // As in Actions, a secret the environment does not hold is empty (the runbook then names it).
  assert.is(resolveExpressions(e('secrets.MISSING'), ctx), '')
  assert.is(resolveExpressions(e("format('{0}-x', inputs.environment)"), ctx), 'staging-x')
  assert.throws(() => resolveExpressions(e('matrix.environment'), ctx), /cannot evaluate/)
  assert.throws(() => resolveExpressions(e('inputs.environment =='), ctx), /cannot evaluate/)
  assert.ok(stepCondition("inputs.environment == 'staging'", ctx))
  assert.not.ok(stepCondition("inputs.environment == 'production'", ctx))
  assert.ok(stepCondition(`${e("github.ref_name == 'staging' && inputs.environment != ''")}`, ctx))
  assert.ok(stepCondition(undefined, ctx))
  assert.throws(() => stepCondition("needs.gates.result == 'success'", ctx), /cannot evaluate if/)
})

test.run()

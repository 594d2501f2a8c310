import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { RunbookError } from '../../lib/report/errors.ts'
import { print, setSinks } from '../../lib/report/output.ts'
import { type Context, type RunbookSpec, type RunOptions, runRunbook } from '../../lib/run/runbook.ts'
import { suite } from '../harness.ts'
import { ciEnvYaml } from './ci-env.ts'

// Every runbook under GitHub Actions: a group per step, an error annotation naming the failed step,
// the step timings in $GITHUB_STEP_SUMMARY, and each secret masked (besides our own redaction).
const test = suite('runbook output under GitHub Actions')
const SECRET = 'hunter2-very-secret-value'
const ENV = ciEnvYaml(['POSTGRES_PASSWORD', 'REDIS_PASSWORD'])

const spec: RunbookSpec = {
  name: 'demo',
  mutates: false,
  needs: () => ['app'],
  offline: true,
  steps: [
    { title: 'Read things', run: async () => 'ok' },
    {
      title: 'Gates, through nginx',
      next: 'look at the release',
      run: async (ctx) => {
        print(`using ${ctx.secrets.POSTGRES_PASSWORD}`)
        throw new RunbookError(`api p95 900 ms with ${SECRET}`, 4)
      },
    },
    { title: 'Record', run: async () => 'ok' },
  ],
}

async function run(env: Record<string, string>, s: RunbookSpec = spec, opts: RunOptions = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ce-actions-'))
  writeFileSync(join(dir, 'ci.yaml'), ENV)
  const summary = join(dir, 'summary.md')
  writeFileSync(summary, '')
  const saved = { ...process.env }
  Object.assign(process.env, {
    CE_ENV_DIR: dir,
    AUDIT_DIR: join(dir, 'audit'),
    POSTGRES_PASSWORD: SECRET,
    REDIS_PASSWORD: 'another-secret-value',
    GITHUB_STEP_SUMMARY: summary,
    ...env,
  })
  let out = ''
  let raw = ''
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((chunk: string) => {
    raw += chunk
    return true
  }) as typeof process.stdout.write
  setSinks((t) => {
    out += t
  })
  try {
    const code = await runRunbook(s, ['--env', 'ci'], opts)
    return { code, out, raw, summary: readFileSync(summary, 'utf8') }
  } finally {
    process.stdout.write = write
    setSinks(
      (t) => process.stdout.write(t),
      (t) => process.stderr.write(t),
    )
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k]
    Object.assign(process.env, saved)
  }
}

test('GITHUB_ACTIONS=true: groups, annotation, summary, masks; the secret still never printed', async () => {
  const r = await run({ GITHUB_ACTIONS: 'true' })
  assert.is(r.code, 4)
  assert.match(r.raw, `::add-mask::${SECRET}\n`)
  assert.match(r.out, '::group::demo [1/3] Read things\n      ✓ ok')
  assert.match(r.out, '::endgroup::')
  assert.match(r.out, '::group::demo [2/3] Gates, through nginx')
  assert.match(
    r.out,
    '::error title=demo%3A step 2 "Gates%2C through nginx" failed::api p95 900 ms with [secret:POSTGRES_PASSWORD]',
  )
  assert.not.match(r.out, SECRET)
  assert.match(r.summary, '### ❌ demo · ci: failed')
  assert.match(r.summary, '| 2 | Gates, through nginx | failed |')
  assert.match(r.summary, '| 3 | Record | not run |  |')
  assert.match(r.summary, '**Next:** look at the release')
  assert.not.match(r.summary, SECRET)
})

test('outside Actions: no workflow commands, no summary, no masks', async () => {
  const r = await run({ GITHUB_ACTIONS: '' })
  assert.is(r.code, 4)
  assert.not.match(r.out, '::')
  assert.not.match(r.raw, 'add-mask')
  assert.is(r.summary, '')
})

test('onContext: the caller holds the very context the steps ran with (make emergency reads what its restore recovered)', async () => {
  const ran: Context[] = []
  const seen: Context[] = []
  const tiny: RunbookSpec = {
    name: 'tiny',
    mutates: false,
    needs: () => ['app'],
    offline: true,
    steps: [
      {
        title: 'Look',
        run: async (ctx) => {
          ran.push(ctx)
          return 'ok'
        },
      },
    ],
  }
  const r = await run({}, tiny, { onContext: (ctx) => seen.push(ctx) })
  assert.is(r.code, 0, r.out)
  assert.is(seen.length, 1)
  assert.is(seen[0]?.env.name, 'ci')
  assert.ok(ran[0] === seen[0], 'the same object the step received')
})

test.run()

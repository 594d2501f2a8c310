import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import * as assert from 'uvu/assert'
import { suite } from '../harness.ts'

const test = suite('test harness', { timeoutS: 60 })

test('a failing hook, its unrun tests and a hung test all count as failures', () => {
  const root = resolve(import.meta.dirname, '..', '..')
  const run = spawnSync(resolve(root, 'node_modules/.bin/tsx'), ['test/run.ts', 'fixtures/harness'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 50_000,
  })
  assert.is(run.status, 1, run.stdout + run.stderr)
  const last = run.stdout.trim().split('\n').pop()
  assert.is(last, '1 passed, 5 failed')
  assert.match(run.stdout, 'hooked › before hook: database did not start')
  assert.match(run.stdout, 'hooked: 2 test(s) did not run because a hook failed')
  assert.match(run.stdout, 'slow › hangs forever: slow › hangs forever: timed out after 1s')
})

test.run()

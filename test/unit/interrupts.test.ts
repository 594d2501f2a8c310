import * as assert from 'uvu/assert'
import { type Interruptible, type StopSignal, stopAll } from '../../lib/run/interrupts.ts'
import { suite } from '../harness.ts'

// A signal during nested runs (emergency → restore): the outer run's step sees the inner run end;
// it must already know the run was interrupted, or its audit record says "failed" (stop 29's CI).
const test = suite('interrupts: nested runs on a signal')

function fakeRun(name: string, log: string[], code: number, onStop?: () => void): Interruptible {
  return {
    interrupt: (signal: StopSignal) => void log.push(`interrupt ${name} ${signal}`),
    stop: async () => {
      log.push(`stop ${name}`)
      onStop?.()
      await new Promise((r) => setTimeout(r, 5))
      log.push(`stopped ${name}`)
      return code
    },
  }
}

test('every run is marked interrupted before any stops; the innermost stops first; the outermost code wins', async () => {
  const log: string[] = []
  let outerKnewWhenInnerStopped = false
  const outer = fakeRun('emergency', log, 130)
  const inner = fakeRun('restore', log, 1, () => {
    outerKnewWhenInnerStopped = log.includes('interrupt emergency SIGINT')
  })
  const code = await stopAll('SIGINT', [outer, inner])
  assert.ok(outerKnewWhenInnerStopped, log.join(', '))
  assert.equal(log, [
    'interrupt emergency SIGINT',
    'interrupt restore SIGINT',
    'stop restore',
    'stopped restore',
    'stop emergency',
    'stopped emergency',
  ])
  assert.is(code, 130)
})

test('SIGTERM with no run in progress: exit 143', async () => {
  assert.is(await stopAll('SIGTERM', []), 143)
  assert.is(await stopAll('SIGINT', []), 130)
})

test.run()

/**
 * make bench-setup: times setup-server on a NEW sandbox droplet (fresh) and its no-op re-run.
 * Prints the figures and a final JSON line {"fresh_s":..,"rerun_s":..,"changed_on_rerun":..}.
 */
import { setSinks } from '../../lib/report/output.ts'
import { runRunbook } from '../../lib/run/runbook.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { createTestBed, destroyTestBed, writeManagedEnv } from '../support/test-bed.ts'

const bed = await createTestBed('bench-setup', ['web-1'])
writeManagedEnv(bed, 'bench')

async function timedRun(): Promise<{ seconds: number; changed: number; code: number; out: string }> {
  let out = ''
  setSinks((t) => {
    out += t
  })
  const started = performance.now()
  const code = await runRunbook(setupServer, ['--env', 'bench'])
  const seconds = (performance.now() - started) / 1000
  setSinks(
    (t) => process.stdout.write(t),
    (t) => process.stderr.write(t),
  )
  const changed = Number(/^(\d+) step\(s\) changed something/m.exec(out)?.[1] ?? Number.NaN)
  return { seconds, changed, code, out }
}

try {
  const fresh = await timedRun()
  if (fresh.code !== 0) throw new Error(`fresh setup failed:\n${fresh.out}`)
  console.log(`fresh setup:  ${fresh.seconds.toFixed(1)} s, ${fresh.changed} step(s) changed`)
  const rerun = await timedRun()
  if (rerun.code !== 0) throw new Error(`re-run failed:\n${rerun.out}`)
  console.log(`no-op re-run: ${rerun.seconds.toFixed(1)} s, ${rerun.changed} step(s) changed`)
  console.log(
    JSON.stringify({
      fresh_s: round(fresh.seconds),
      rerun_s: round(rerun.seconds),
      changed_on_rerun: rerun.changed,
    }),
  )
} finally {
  await destroyTestBed(bed)
}

function round(n: number): number {
  return Math.round(n * 10) / 10
}

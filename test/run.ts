/**
 * The test runner: `tsx test/run.ts [unit|integration|all] [file-filter]`.
 * Runs uvu suites through the strict harness and ends with the line `N passed, N failed`.
 */
import { readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const [kind = 'all', filter = ''] = process.argv.slice(2)
const root = resolve(import.meta.dirname)
const dirs = kind === 'all' ? ['unit', 'integration'] : [kind]
const files = dirs.flatMap((dir) =>
  readdirSync(join(root, dir))
    .filter((f) => f.endsWith('.test.ts') && f.includes(filter))
    .sort()
    .map((f) => join(root, dir, f)),
)

const g = globalThis as { UVU_DEFER?: number; UVU_QUEUE?: unknown[][]; UVU_INDEX?: number }
g.UVU_DEFER = 1
g.UVU_QUEUE = []
// Set before uvu is first imported (the harness imports it), or each suite runs on its own timer.
const uvu = await import('uvu')
const { tally } = await import('./harness.ts')
for (const [i, file] of files.entries()) {
  g.UVU_INDEX = i
  g.UVU_QUEUE.push([file.slice(root.length + 1)])
  await import(pathToFileURL(file).href)
}
await uvu.exec(false)

const slowest = tally.durations.filter((d) => d.seconds >= 30).sort((a, b) => b.seconds - a.seconds)
if (slowest.length)
  process.stdout.write(`Slowest suites:\n${slowest.map((d) => `  ${d.seconds}s  ${d.name}`).join('\n')}\n`)
// The ten slowest tests and hooks of 20 s or more: where a cut would save the most.
const slowTests = tally.testDurations
  .filter((d) => d.seconds >= 20)
  .sort((a, b) => b.seconds - a.seconds)
  .slice(0, 10)
if (slowTests.length)
  process.stdout.write(`Slowest tests:\n${slowTests.map((d) => `  ${d.seconds}s  ${d.name}`).join('\n')}\n`)
if (tally.failures.length)
  process.stdout.write(`Failures:\n${tally.failures.map((f) => `  - ${f}`).join('\n')}\n`)
if (files.length === 0) {
  process.stdout.write(`no test files matched "${kind}" "${filter}"\n`)
  tally.failed++
}
process.stdout.write(`${tally.passed} passed, ${tally.failed} failed\n`)
process.exit(tally.failed > 0 || tally.passed === 0 ? 1 : 0)

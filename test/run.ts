/**
 * The test runner: `tsx test/run.ts [unit|integration|all] [file-filter]`.
 * Runs uvu suites through the strict harness and ends with the line `N passed, N failed`.
 * The filter keeps the files whose names contain it (or any of its comma-separated parts).
 *
 * Integration suites run in TEST_LANES lanes (default 2): each suite in a process of its own
 * (`--one <file>`), the longest first, a new one starting as soon as a lane is free. Each suite has
 * its own droplets, network, env dir and ports, so two can run side by side; the sandbox images are
 * built once, before the lanes start. A suite's output is printed whole when it ends. TEST_LANES=1
 * runs them one after another in this process, as before.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

type Tally = typeof import('./harness.ts').tally

const root = resolve(import.meta.dirname)
const argv = process.argv.slice(2)

// Seconds each suite took (stop 28's CI, the pipeline suite from stop 37's): the order lanes take them
// in, longest first. The pipeline suite never runs beside the swarm suite (APART): beside it, its
// compiles made 3 of 1382 requests 502 during a swarm rollback (session 17). It used to run last, alone,
// with the other lane idle for its whole length (1394 s of stop 37's 4278 s); now it starts as soon as
// the swarm suite has ended, beside the others.
const WEIGHT: Record<string, number> = {
  swarm: 540,
  rehearsal: 420,
  pipeline: 410,
  emergency: 300,
  'setup-server': 290,
  deploy: 265,
  backup: 263,
  edge: 253,
  watchdog: 179,
  secrets: 170,
  health: 151,
  registry: 134,
  dns: 90,
  gates: 67,
  foundation: 48,
}
/** Suites that never run at the same time. */
const APART: [string, string][] = [['swarm', 'pipeline']]
const suiteName = (file: string) => file.replace(/^.*\//, '').replace('.test.ts', '')
const weight = (file: string) => WEIGHT[suiteName(file)] ?? 30

if (argv[0] === '--one') {
  // A lane's child: one suite file; its tally goes to TEST_RESULT for the parent to add up.
  const tally = await runInProcess([argv[1] as string])
  writeFileSync(process.env.TEST_RESULT as string, JSON.stringify(tally))
  process.exit(0)
}

const [kind = 'all', filter = ''] = argv
const list = (dir: string) =>
  readdirSync(join(root, dir))
    .filter((f) => f.endsWith('.test.ts') && filter.split(',').some((part) => f.includes(part)))
    .sort()
    .map((f) => join(root, dir, f))
// `kind` may also name another directory under test/ (the harness's own fixtures): run in this process.
const unitFiles = kind === 'all' || kind === 'unit' ? list('unit') : kind === 'integration' ? [] : list(kind)
const integrationFiles = kind === 'all' || kind === 'integration' ? list('integration') : []
const lanes = Math.max(1, Number(process.env.TEST_LANES ?? 2) || 1)

let tally: Tally
if (lanes === 1 || integrationFiles.length < 2) {
  tally = await runInProcess([...unitFiles, ...integrationFiles])
} else {
  tally = await runInProcess(unitFiles)
  const laneTally = await runInLanes(integrationFiles, lanes)
  tally.passed += laneTally.passed
  tally.failed += laneTally.failed
  tally.skipped += laneTally.skipped
  tally.failures.push(...laneTally.failures)
  tally.durations.push(...laneTally.durations)
  tally.testDurations.push(...laneTally.testDurations)
}
report(tally, unitFiles.length + integrationFiles.length)

/** Runs the files' suites in this process, in order; returns the harness's tally. */
async function runInProcess(files: string[]): Promise<Tally> {
  const g = globalThis as { UVU_DEFER?: number; UVU_QUEUE?: unknown[][]; UVU_INDEX?: number }
  g.UVU_DEFER = 1
  g.UVU_QUEUE = []
  // Set before uvu is first imported (the harness imports it), or each suite runs on its own timer.
  const uvu = await import('uvu')
  const { tally } = await import('./harness.ts')
  if (files.length === 0) return tally
  for (const [i, file] of files.entries()) {
    g.UVU_INDEX = i
    g.UVU_QUEUE.push([file.slice(root.length + 1)])
    await import(pathToFileURL(file).href)
  }
  await uvu.exec(false)
  return tally
}

async function runInLanes(files: string[], n: number): Promise<Tally> {
  // The images every suite starts from, built once here rather than raced for by two lanes.
  const { ensureDockerEngine } = await import('./sandbox/engine.ts')
  const { buildDropletImage, buildProvisionedImage } = await import('./sandbox/images.ts')
  const { buildFixtureImages } = await import('./sandbox/fixtures.ts')
  await ensureDockerEngine()
  await buildDropletImage()
  await buildProvisionedImage()
  await buildFixtureImages()

  const total: Tally = { passed: 0, failed: 0, skipped: 0, failures: [], durations: [], testDurations: [] }
  const queue = [...files].sort((a, b) => weight(b) - weight(a))
  const dir = mkdtempSync(join(tmpdir(), 'ce-lanes-'))
  const t0 = Date.now()
  const clock = () => `${Math.round((Date.now() - t0) / 1000)}s`
  process.stdout.write(`\nintegration: ${files.length} suites in ${n} lanes, longest first\n`)
  const running = new Set<string>()
  let ended: () => void = () => {}
  let oneEnded = new Promise<void>((r) => (ended = r))
  /** The longest queued suite that may run beside the running ones; waits while each one must not. */
  const next = async (): Promise<string | undefined> => {
    for (;;) {
      const at = queue.findIndex((f) =>
        APART.every(
          ([a, b]) => !(running.has(a) && suiteName(f) === b) && !(running.has(b) && suiteName(f) === a),
        ),
      )
      if (at >= 0) return queue.splice(at, 1)[0]
      if (queue.length === 0) return undefined
      await oneEnded
    }
  }
  const lane = async (id: number) => {
    for (let file = await next(); file; file = await next()) {
      running.add(suiteName(file))
      const name = file.slice(root.length + 1)
      const result = join(dir, `${id}-${name.replace(/\W/g, '_')}.json`)
      process.stdout.write(`[lane ${id} ${clock()}] ${name} started\n`)
      const started = Date.now()
      const { code, output } = await runChild(file, result)
      running.delete(suiteName(file))
      ended()
      oneEnded = new Promise<void>((r) => (ended = r))
      const secs = Math.round((Date.now() - started) / 1000)
      process.stdout.write(
        `\n[lane ${id} ${clock()}] ${name} ended after ${secs}s (exit ${code}):\n${output}\n`,
      )
      let got: Tally | undefined
      try {
        got = JSON.parse(readFileSync(result, 'utf8')) as Tally
      } catch {
        // A child that died before writing its tally (a crash, a signal) is one failure, not silence.
      }
      if (!got || code !== 0) {
        total.failed++
        total.failures.push(`${name}: the suite's process exited ${code} before it reported its results`)
      }
      if (got) {
        total.passed += got.passed
        total.failed += got.failed
        total.skipped += got.skipped
        total.failures.push(...got.failures)
        total.durations.push(...got.durations)
        total.testDurations.push(...got.testDurations)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(n, files.length) }, (_, i) => lane(i + 1)))
  rmSync(dir, { recursive: true, force: true })
  process.stdout.write(`integration: all lanes done in ${clock()}\n`)
  return total
}

function runChild(file: string, result: string): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'run.ts'), '--one', file], {
      cwd: join(root, '..'),
      env: { ...process.env, TEST_RESULT: result },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (b: Buffer) => (output += b.toString()))
    child.stderr.on('data', (b: Buffer) => (output += b.toString()))
    child.on('close', (code) => done({ code, output }))
  })
}

function report(tally: Tally, fileCount: number): never {
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
  if (fileCount === 0) {
    process.stdout.write(`no test files matched "${kind}" "${filter}"\n`)
    tally.failed++
  }
  process.stdout.write(`${tally.passed} passed, ${tally.failed} failed\n`)
  process.exit(tally.failed > 0 || tally.passed === 0 ? 1 : 0)
}

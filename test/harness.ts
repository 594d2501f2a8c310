import { suite as uvuSuite } from 'uvu'

// uvu, made strict: a throwing hook fails the run (uvu swallows it), every test has a timeout
// (uvu has none), and the run ends with `N passed, N failed` (uvu prints Total/Passed).
export const tally = {
  passed: 0,
  failed: 0,
  skipped: 0,
  failures: [] as string[],
  /** Each suite's wall time (hooks included), to see where the suite's time budget goes. */
  durations: [] as { name: string; seconds: number }[],
  /** Each test's and hook's own time: which ones to cut when the suite nears its budget. */
  testDurations: [] as { name: string; seconds: number }[],
}

const since = (t0: number) => Math.round((performance.now() - t0) / 100) / 10

type Handler<T> = (ctx: T) => unknown | Promise<unknown>

export interface SuiteOptions {
  /** Per-test timeout in seconds (hooks get three times as much). */
  timeoutS?: number
}

export function suite<T extends object = Record<string, unknown>>(name: string, options: SuiteOptions = {}) {
  const timeoutS = options.timeoutS ?? 30
  const inner = uvuSuite<T>(name, {} as T)
  let registered = 0
  let ran = 0
  let hookFailed = false
  let started = 0
  inner.before(() => {
    started = performance.now()
  })

  const guard = (label: string, fn: Handler<T>, limitS: number) => async (ctx: T) => {
    await withTimeout(
      Promise.resolve().then(() => fn(ctx)),
      limitS,
      `${name} › ${label}`,
    )
  }
  const hook = (kind: string, fn: Handler<T>) => async (ctx: T) => {
    const t0 = performance.now()
    try {
      await guard(kind, fn, timeoutS * 3)(ctx)
      tally.testDurations.push({ name: `${name} › (${kind})`, seconds: since(t0) })
    } catch (err) {
      hookFailed = true
      tally.failed++
      tally.failures.push(`${name} › ${kind} hook: ${(err as Error).message}`)
      process.stderr.write(`\n  ✘ ${name} › ${kind} hook failed: ${(err as Error).stack ?? err}\n`)
      throw err
    }
  }

  const test = (title: string, fn: Handler<T>, opts: { timeoutS?: number } = {}) => {
    registered++
    inner(title, async (ctx) => {
      ran++
      const t0 = performance.now()
      try {
        await guard(title, fn, opts.timeoutS ?? timeoutS)(ctx)
        tally.passed++
        tally.testDurations.push({ name: `${name} › ${title}`, seconds: since(t0) })
      } catch (err) {
        tally.failed++
        tally.failures.push(`${name} › ${title}: ${(err as Error).message.split('\n')[0]}`)
        throw err
      }
    })
  }
  test.before = (fn: Handler<T>) => inner.before(hook('before', fn))
  test.after = (fn: Handler<T>) => inner.after(hook('after', fn))
  test.beforeEach = (fn: Handler<T>) => inner.before.each(hook('beforeEach', fn))
  test.afterEach = (fn: Handler<T>) => inner.after.each(hook('afterEach', fn))
  test.run = () => {
    // Tests a failed hook kept from running count as failed, not as silently absent.
    inner.after(() => {
      tally.durations.push({ name, seconds: since(started) })
      if (hookFailed && ran < registered) {
        tally.failed += registered - ran
        tally.failures.push(`${name}: ${registered - ran} test(s) did not run because a hook failed`)
      }
    })
    inner.run()
  }
  return test
}

function withTimeout<V>(work: Promise<V>, seconds: number, label: string): Promise<V> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: timed out after ${seconds}s`)), seconds * 1000)
  })
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}

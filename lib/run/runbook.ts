import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { type Env, loadEnv } from '../env/load.ts'
import { secretsFor } from '../env/needs.ts'
import { loadSecrets } from '../env/secrets.ts'
import { EXIT, RunbookError } from '../report/errors.ts'
import { print, printErr, seconds, setSinks } from '../report/output.ts'
import { redact } from '../report/redact.ts'
import type { Outcome } from './audit.ts'
import { type ParsedArgs, parseArgs, stringArg } from './cli.ts'
import { confirm, connectStep, onlyHost } from './connect.ts'
import {
  appendStepSummary,
  endGroup,
  errorAnnotation,
  group,
  inActions,
  maskLines,
  summaryMarkdown,
} from './github-actions.ts'
import { enter, type Interruptible, leave, type StopSignal, stopAll } from './interrupts.ts'
import { STALE_AFTER_S } from './lock.ts'
import { holdsStore } from './records.ts'
import { exitCode, printSummary, reportError, reportStepFailure, writeAudit } from './run-report.ts'
import {
  type Context,
  type LocalRunbookSpec,
  nextOf,
  type RunbookSpec,
  type RunContext,
  type Step,
  type StepRecord,
} from './step.ts'

export { confirmMidRun, connectHost } from './connect.ts'
export type { Context, LocalRunbookSpec, RunbookSpec, RunContext, Step, StepStatus } from './step.ts'
export { changedIf } from './step.ts'

/**
 * JSON=1 (--json): the run's progress goes to stderr, so stdout carries only what the runbook writes
 * there itself (its JSON), for `make <runbook> JSON=1 > file`. For the entry points (main, run.ts) only:
 * a run inside a test keeps the sinks the test set.
 */
export function jsonOnStdout(argv: readonly string[]): void {
  if (argv.includes('--json')) setSinks((text) => process.stderr.write(text))
}

/** Runs a runbook from process.argv and exits with its documented exit code. */
export async function main(
  spec: RunbookSpec | LocalRunbookSpec,
  argv = process.argv.slice(2),
): Promise<never> {
  jsonOnStdout(argv)
  const code = await runRunbook(spec, argv)
  process.exit(code)
}

export interface RunOptions {
  /**
   * Adjusts the env after it is loaded and validated: `make emergency` runs setup-server, deploy,
   * restore and dns on a new host that is not in the env file yet.
   */
  env?: (env: Env) => Env
  /** Sees the run's context once it exists: make emergency reads what its restore recovered. */
  onContext?: (ctx: Context) => void
  /** The runbook this run is part of (make emergency runs deploy, restore... inside itself): in its audit record. */
  within?: string
}

/** A run's context as the runner holds it: an env run has env, secrets and hosts; a local run has none. */
type AnyContext = RunContext & Partial<Pick<Context, 'env' | 'secrets' | 'hosts'>>

export async function runRunbook(
  spec: RunbookSpec | LocalRunbookSpec,
  argv: string[],
  opts: RunOptions = {},
): Promise<number> {
  const local = 'local' in spec
  const mutates = !local && spec.mutates
  const started = new Date()
  const records: StepRecord[] = spec.steps.map((s) => ({ title: s.title, status: 'not run', ms: 0 }))
  const cleanups: (() => Promise<void>)[] = []
  const events: string[] = []
  let args: ParsedArgs = {}
  let ctx: AnyContext | undefined
  let where = ''
  let failedStep: string | null = null
  /** The failed step's advice for the on-call (the summary repeats it). */
  let failedNext: string | undefined
  let error: RunbookError | Error | undefined
  let outcome: Outcome = 'success'
  /** The run loaded the key of the env's backup store (or the store is a local directory): its record goes there too. */
  let storeHeld = false

  let finishing: Promise<number> | undefined
  const finish = (): Promise<number> => {
    finishing ??= finishOnce()
    return finishing
  }
  const finishOnce = async (): Promise<number> => {
    // A connection that dropped mid-run: one more (bounded) so the cleanups can still run there.
    for (const host of ctx?.hosts ?? []) {
      if (!host.connectionLost) continue
      printErr(`  ${host.name}: the SSH connection was lost; reconnecting for the cleanup`)
      if (await host.reconnect()) printErr(`  ${host.name}: reconnected`)
      else
        printErr(
          `  ${host.name}: could not reconnect. What this run holds there (the deploy lock) stays until its heartbeat is ${STALE_AFTER_S} s old; then, if no run is going, make unlock ENV=${ctx?.env?.name ?? '<env>'}.`,
        )
    }
    for (const cleanup of cleanups.reverse())
      await cleanup().catch((e: Error) => printErr(`cleanup failed: ${e.message}`))
    if (ctx && records.some((r) => r.status !== 'not run')) printSummary(records, mutates)
    if (inActions()) {
      // The failed step's advice as the console printed it; an error before any step has its own.
      const next = failedNext || (error instanceof RunbookError ? error.next : undefined)
      const failure =
        failedStep || error
          ? {
              step: failedStep ?? '(before the first step)',
              message: error?.message.split('\n')[0] ?? '',
              ...(next ? { next } : {}),
            }
          : undefined
      const rows = records.map((r) => ({ step: r.title, status: r.status, seconds: r.ms / 1000 }))
      const envName = ctx?.env?.name ?? stringArg(args, 'env')
      const title = envName ? `${spec.name} · ${envName}` : spec.name
      appendStepSummary(redact(summaryMarkdown(title, outcome, rows, failure)))
    }
    await writeAudit(spec.name, ctx, args, started, outcome, failedStep, error, events, {
      storeHeld,
      ...(opts.within ? { within: opts.within } : {}),
    })
    for (const host of ctx?.hosts ?? []) host.close()
    return exitCode(outcome, error)
  }

  try {
    args = parseArgs(argv, spec.options ?? [])
    const dryRun = args['dry-run'] === true
    const base: RunContext = {
      args,
      dryRun,
      release: null,
      onCleanup: (fn) => cleanups.push(fn),
      auditEvent: (event) => events.push(event),
      failure: () =>
        failedStep || error ? { step: failedStep ?? '', message: error?.message.split('\n')[0] ?? '' } : null,
    }
    if (local) {
      where = spec.check?.(args) ?? 'this machine'
      // A local run checks the code checked out here: under CI, that commit is its release.
      ctx = { ...base, release: process.env.GITHUB_SHA ?? null }
    } else {
      spec.validate?.(args)
      const loaded = onlyHost(loadEnv(stringArg(args, 'env')), stringArg(args, 'host'))
      const env = opts.env ? opts.env(loaded) : loaded
      const names = secretsFor(env, spec.needs(env, args))
      const secrets = await loadSecrets(env, process.env, { runbook: spec.name, names })
      storeHeld = holdsStore(env, names)
      // Under GitHub Actions the runner hides these in its log too (our own redaction stays first).
      if (inActions()) for (const line of maskLines(Object.values(secrets))) process.stdout.write(`${line}\n`)
      await confirm(spec, env, args, dryRun)
      ctx = { ...base, env, secrets, hosts: [] }
      opts.onContext?.(ctx as Context)
      where = `env ${env.name} (${env.kind}) · ${env.hosts.length} host(s)${env.overridden ? ` · addresses and endpoints from ${env.overridden}` : ''}`
    }
  } catch (err) {
    outcome = 'invalid-input'
    error = err as Error
    reportError(err as Error)
    return finish()
  }

  const context = ctx
  const self: Interruptible = {
    interrupt(signal) {
      outcome = 'interrupted'
      error = new RunbookError(
        `Interrupted by ${signal}`,
        signal === 'SIGINT' ? EXIT.interrupted : EXIT.terminated,
      )
      const current = records.find((r) => r.status === 'not run')
      failedStep = current?.title ?? null
      printErr(
        `\n${signal} received during "${failedStep}" of ${spec.name}: stopping, releasing what this run holds.`,
      )
    },
    // What runs on the hosts stops first, so the cleanups do not race it (compose up beside compose stop).
    stop: () => Promise.all((context.hosts ?? []).map((h) => h.cancelRunning().catch(() => {}))).then(finish),
  }
  // Runbooks run inside another (emergency runs deploy, restore...): only the outermost listens for
  // signals; on one, every run is marked interrupted, then the innermost stops first (interrupts.ts).
  const outermost = enter(self)
  // A second Ctrl-C (people press it twice at 3 a.m.) must not kill the cleanup halfway: it is
  // announced and absorbed; the cleanups are bounded and end by themselves.
  let stopping = false
  const onSignal = (signal: StopSignal) => async () => {
    if (stopping) {
      printErr(
        `\n${signal} again: still cleaning up (stopping this run's commands, releasing the lock, recording the run); it ends by itself. ` +
          `To abandon the cleanup anyway: kill -9 ${process.pid} (then the lock stays until make unlock ENV=${context.env?.name ?? '<env>'}).`,
      )
      return
    }
    stopping = true
    process.exit(await stopAll(signal))
  }
  const onInt = onSignal('SIGINT')
  const onTerm = onSignal('SIGTERM')
  if (outermost) {
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
  }

  print(`${spec.name} · ${where}${context.dryRun ? ' · DRY RUN: nothing will change' : ''}`)
  // Only the outermost run opens groups: Actions does not nest them (emergency runs deploy inside).
  const actions = inActions() && outermost
  // One cast for both kinds: a local run's steps are typed for RunContext, an env run's for Context.
  const steps = (
    local || spec.offline ? [...spec.steps] : [connectStep(spec), ...spec.steps]
  ) as Step<AnyContext>[]
  if (!local && !spec.offline) records.unshift({ title: steps[0]?.title ?? '', status: 'not run', ms: 0 })
  for (const [i, step] of steps.entries()) {
    // A signal stopped the run (its finish is under way): no further step starts.
    if ((outcome as Outcome) === 'interrupted') break
    const record = records[i] as StepRecord
    const heading = `[${i + 1}/${steps.length}] ${step.title}`
    if (actions) print(group(`${spec.name} ${heading}`))
    else print(`\n${heading}`)
    const t0 = Date.now()
    const skipped = step.skip?.(context)
    if (skipped) {
      record.status = 'skipped'
      print(`      – skipped: ${skipped}`)
      if (actions) print(endGroup())
      continue
    }
    try {
      const status = await step.run(context)
      record.status = context.dryRun && status === 'changed' ? 'dry-run' : (status ?? 'ok')
      record.ms = Date.now() - t0
      print(`      ✓ ${record.status}  ${seconds(record.ms)}`)
      if (actions) print(endGroup())
    } catch (err) {
      record.status = 'failed'
      record.ms = Date.now() - t0
      // Interrupted: the step failed because the signal stopped it; the record says interrupted.
      if ((outcome as Outcome) === 'interrupted') break
      const next = (err instanceof RunbookError && err.next) || nextOf(step, context)
      // The first failure decides the exit code and the summary; a keepGoing step lets the rest run.
      if (!error) {
        failedStep = step.title
        failedNext = next
        error = err as Error
      }
      outcome = 'failed'
      if (actions) print(endGroup())
      reportStepFailure(i + 1, step, err as Error, next, context)
      if (actions)
        print(errorAnnotation(`${spec.name}: step ${i + 1} "${step.title}" failed`, (err as Error).message))
      if (!step.keepGoing) break
    }
  }
  if (outcome === 'success' && context.dryRun) outcome = 'dry-run'
  leave(self)
  // While a signal's cleanup runs, its handlers stay: a further Ctrl-C is absorbed, never fatal.
  if (outermost && !stopping) {
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
  }
  return finish()
}

/** True when the module at `url` is the script node was started with (Node 20 has no import.meta.main). */
export function isMain(url: string): boolean {
  const entry = process.argv[1]
  return !!entry && realpathSync(entry) === realpathSync(fileURLToPath(url))
}

import { realpathSync } from 'node:fs'
import { createInterface } from 'node:readline/promises'
import { fileURLToPath } from 'node:url'
import { appendLineFromStdin } from '../commands/files.ts'
import { REMOTE_AUDIT_LOG } from '../env/host-paths.ts'
import { type Env, type Host, loadEnv } from '../env/load.ts'
import { loadSecrets, readPrivateKey, type Secrets } from '../env/secrets.ts'
import { HostSession } from '../host/session.ts'
import { CommandError, EXIT, InputError, LoginRefusedError, RunbookError } from '../report/errors.ts'
import { print, printErr, seconds, table } from '../report/output.ts'
import { redact, redactDeep } from '../report/redact.ts'
import { appendLocalAudit, auditLine, ciRunUrl, type Outcome, whoAmI } from './audit.ts'
import { type OptionSpec, type ParsedArgs, parseArgs, stringArg } from './cli.ts'
import {
  appendStepSummary,
  endGroup,
  errorAnnotation,
  group,
  inActions,
  maskLines,
  summaryMarkdown,
} from './github-actions.ts'

export type StepStatus = 'ok' | 'changed' | 'skipped' | 'failed' | 'not run' | 'dry-run'

export interface Context {
  env: Env
  secrets: Secrets
  args: ParsedArgs
  dryRun: boolean
  hosts: HostSession[]
  /** The release this run is about, for the audit record (deploy/rollback set it). */
  release: string | null
  /** Registers work that must happen however the run ends (release a lock): run in reverse order. */
  onCleanup(fn: () => Promise<void>): void
  /** Something this run did that its audit record must show (a swarm join token used): never a secret. */
  auditEvent(event: string): void
  /** The step that failed and why (for cleanups that report, like notifications); null while all is well. */
  failure(): { step: string; message: string } | null
}

export interface Step {
  title: string
  /** What the on-call should do if this step fails (a function when it depends on the env: swarm or not). */
  next?: string | ((ctx: Context) => string)
  /** Why this step does not apply to this run (a drill, a swarm env...), or false: it runs. Printed, recorded as skipped. */
  skip?: (ctx: Context) => string | false
  run(ctx: Context): Promise<StepStatus | undefined>
}

export interface RunbookSpec {
  name: string
  /** Changes hosts: production asks a person to confirm. */
  mutates: boolean
  /** Needs no host (listing backups while the droplet is gone): no SSH connection is made. */
  offline?: boolean
  /** Log in as ssh.bootstrap_user (setup-server) instead of ssh.user. */
  bootstrap?: boolean
  options?: OptionSpec[]
  steps: Step[]
}

interface StepRecord {
  title: string
  status: StepStatus
  ms: number
}

/** Runs a runbook from process.argv and exits with its documented exit code. */
export async function main(spec: RunbookSpec, argv = process.argv.slice(2)): Promise<never> {
  const code = await runRunbook(spec, argv)
  process.exit(code)
}

/** The runs in progress in this process, outermost first. */
const running: { stop: (signal: 'SIGINT' | 'SIGTERM') => Promise<number> }[] = []

export interface RunOptions {
  /**
   * Adjusts the env after it is loaded and validated: `make emergency` runs setup-server, deploy,
   * restore and dns on a new host that is not in the env file yet.
   */
  env?: (env: Env) => Env
}

export async function runRunbook(spec: RunbookSpec, argv: string[], opts: RunOptions = {}): Promise<number> {
  const started = new Date()
  const records: StepRecord[] = spec.steps.map((s) => ({ title: s.title, status: 'not run', ms: 0 }))
  const cleanups: (() => Promise<void>)[] = []
  const events: string[] = []
  let args: ParsedArgs = {}
  let ctx: Context | undefined
  let failedStep: string | null = null
  /** The failed step's advice for the on-call (the summary repeats it). */
  let failedNext: string | undefined
  let error: RunbookError | Error | undefined
  let outcome: Outcome = 'success'

  let finishing: Promise<number> | undefined
  const finish = (): Promise<number> => {
    finishing ??= finishOnce()
    return finishing
  }
  const finishOnce = async (): Promise<number> => {
    for (const cleanup of cleanups.reverse())
      await cleanup().catch((e: Error) => printErr(`cleanup failed: ${e.message}`))
    if (ctx && records.some((r) => r.status !== 'not run')) printSummary(records, spec.mutates)
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
      const title = `${spec.name} · ${ctx?.env.name ?? stringArg(args, 'env') ?? ''}`
      appendStepSummary(redact(summaryMarkdown(title, outcome, rows, failure)))
    }
    await writeAudit(spec, ctx, args, started, outcome, failedStep, error, events)
    for (const host of ctx?.hosts ?? []) host.close()
    return exitCode(outcome, error)
  }

  try {
    args = parseArgs(argv, spec.options ?? [])
    const loaded = onlyHost(loadEnv(stringArg(args, 'env')), stringArg(args, 'host'))
    const env = opts.env ? opts.env(loaded) : loaded
    const secrets = loadSecrets(env)
    // Under GitHub Actions the runner hides these in its log too (our own redaction stays first).
    if (inActions()) for (const line of maskLines(Object.values(secrets))) process.stdout.write(`${line}\n`)
    const dryRun = args['dry-run'] === true
    await confirm(spec, env, args, dryRun)
    ctx = {
      env,
      secrets,
      args,
      dryRun,
      hosts: [],
      release: null,
      onCleanup: (fn) => cleanups.push(fn),
      auditEvent: (event) => events.push(event),
      failure: () =>
        failedStep || error ? { step: failedStep ?? '', message: error?.message.split('\n')[0] ?? '' } : null,
    }
  } catch (err) {
    outcome = 'invalid-input'
    error = err as Error
    reportError(err as Error)
    return finish()
  }

  const context = ctx
  const stop = (signal: 'SIGINT' | 'SIGTERM'): Promise<number> => {
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
    return finish()
  }
  // Runbooks run inside another (emergency runs deploy, restore...): only the outermost listens for
  // signals, and on one it stops the innermost first, so each releases what it holds before the exit.
  const self = { stop }
  running.push(self)
  const outermost = running.length === 1
  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => async () => {
    let code = EXIT.interrupted as number
    for (const run of [...running].reverse()) code = await run.stop(signal)
    process.exit(code)
  }
  const onInt = onSignal('SIGINT')
  const onTerm = onSignal('SIGTERM')
  if (outermost) {
    process.once('SIGINT', onInt)
    process.once('SIGTERM', onTerm)
  }

  print(
    `${spec.name} · env ${context.env.name} (${context.env.kind}) · ${context.env.hosts.length} host(s)${context.dryRun ? ' · DRY RUN: nothing will change' : ''}`,
  )
  // Only the outermost run opens groups: Actions does not nest them (emergency runs deploy inside).
  const actions = inActions() && outermost
  const steps: Step[] = spec.offline ? [...spec.steps] : [connectStep(spec), ...spec.steps]
  if (!spec.offline) records.unshift({ title: steps[0]?.title ?? '', status: 'not run', ms: 0 })
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
      failedStep = step.title
      failedNext = (err instanceof RunbookError && err.next) || nextOf(step, context)
      outcome = 'failed'
      error = err as Error
      if (actions) print(endGroup())
      reportStepFailure(i + 1, step, err as Error, failedNext, context)
      if (actions)
        print(errorAnnotation(`${spec.name}: step ${i + 1} "${step.title}" failed`, (err as Error).message))
      break
    }
  }
  if (outcome === 'success' && context.dryRun) outcome = 'dry-run'
  running.splice(running.indexOf(self), 1)
  if (outermost) {
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
  }
  return finish()
}

function nextOf(step: Step, ctx: Context): string | undefined {
  return typeof step.next === 'function' ? step.next(ctx) : step.next
}

/** A step's status from whether its work changed anything. */
export function changedIf(changed: boolean): StepStatus {
  return changed ? 'changed' : 'ok'
}

/** HOST=<name>: run on that host only. */
function onlyHost(env: Env, name: string | undefined): Env {
  if (!name) return env
  const hosts = env.hosts.filter((h) => h.name === name)
  if (hosts.length === 0) {
    throw new InputError(`HOST=${name} is not a host of ${env.file}`, [
      `hosts: ${env.hosts.map((h) => h.name).join(', ')}`,
    ])
  }
  return { ...env, hosts, allHosts: env.hosts }
}

function connectStep(spec: RunbookSpec): Step {
  return {
    title: 'Connect to hosts (pinned host keys)',
    next: 'Nothing was changed. Fix the connection problem above, then run the same command again.',
    async run(ctx) {
      const privateKey = readPrivateKey(ctx.env, ctx.secrets)
      for (const host of ctx.env.hosts) {
        const session = await connectHost(ctx, host, privateKey, spec.bootstrap === true)
        ctx.hosts.push(session)
        const { user, sudo } = session.options
        print(
          `      ${host.name}: ${user}@${host.address}:${host.sshPort}${sudo ? ' (sudo)' : ''} key ${host.hostKey}`,
        )
      }
      return 'ok'
    },
  }
}

/**
 * Connects as ssh.user. A bootstrap runbook (setup-server) tries ssh.user with sudo first (a set-up
 * host, where root login is off) and falls back to ssh.bootstrap_user (a fresh droplet): in that
 * order, re-runs never make refused root logins that fail2ban would count against us.
 */
export async function connectHost(
  ctx: Context,
  host: Host,
  privateKey: string | undefined,
  bootstrap: boolean,
) {
  const open = async (user: string, sudo: boolean) => {
    const session = new HostSession(host, {
      user,
      sudo,
      privateKey,
      agent: ctx.env.ssh.key.agent ? process.env.SSH_AUTH_SOCK : undefined,
      connectTimeoutS: ctx.env.ssh.connectTimeoutS,
      commandTimeoutS: ctx.env.ssh.commandTimeoutS,
      dryRun: ctx.dryRun,
      echo: true,
    })
    await session.connect()
    return session
  }
  const { user, bootstrapUser } = ctx.env.ssh
  if (!bootstrap || bootstrapUser === user) return open(user, false)
  try {
    return await open(user, true)
  } catch (err) {
    if (!(err instanceof LoginRefusedError)) throw err
    print(`      ${host.name}: no ${user} login yet (a fresh host); using ${bootstrapUser}`)
    return open(bootstrapUser, false)
  }
}

async function confirm(spec: RunbookSpec, env: Env, args: ParsedArgs, dryRun: boolean): Promise<void> {
  if (!spec.mutates || !env.confirm || dryRun || args.yes === true) return
  if (!process.stdin.isTTY) {
    if (process.env.CI === 'true') return
    throw new InputError(
      `${spec.name} on ${env.name} needs confirmation and there is no terminal to ask.`,
      [],
      'Pass YES=1 (--yes) if you mean it.',
    )
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  const answer = await rl.question(
    `This changes ${env.name.toUpperCase()}. Type the environment name to continue: `,
  )
  rl.close()
  if (answer.trim() !== env.name) throw new InputError('Not confirmed: nothing was changed.')
}

/**
 * A confirmation in the middle of a run, before the point of no return (restore's swap): a person
 * types the env name; without a terminal only --yes (YES=1) goes on, in CI too.
 */
export async function confirmMidRun(ctx: Context, what: string): Promise<void> {
  if (ctx.dryRun || ctx.args.yes === true) return
  if (!process.stdin.isTTY)
    throw new InputError(
      `${what}: needs confirmation and there is no terminal to ask.`,
      [],
      'Pass YES=1 (--yes) if you mean it.',
    )
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  const answer = await rl.question(`${what}. Type the environment name (${ctx.env.name}) to continue: `)
  rl.close()
  if (answer.trim() !== ctx.env.name)
    throw new InputError('Not confirmed: stopped before changing anything live.')
}

function reportError(err: Error): void {
  printErr(`\n✗ ${err.message}`)
  if (err instanceof RunbookError && err.next) printErr(`  next: ${err.next}`)
}

function reportStepFailure(n: number, step: Step, err: Error, next: string | undefined, ctx: Context): void {
  const lines = [`\n✗ Step ${n} "${step.title}" failed`]
  if (err instanceof CommandError) {
    lines.push(`  host:        ${err.host}`, `  command:     ${err.command}`, `  exit status: ${err.status}`)
    if (err.stderrTail)
      lines.push('  stderr (last lines):', ...err.stderrTail.split('\n').map((l) => `    ${l}`))
  } else {
    lines.push(`  error:       ${err.message.split('\n').join('\n               ')}`)
  }
  lines.push(`  next:        ${next || 'Fix the cause above and run the same command again.'}`)
  if (ctx.dryRun) lines.push('  (dry run: nothing was changed)')
  printErr(lines.join('\n'))
}

function printSummary(records: StepRecord[], mutates: boolean): void {
  const rows = [
    ['#', 'step', 'status', 'time'],
    ...records.map((r, i) => [String(i + 1), r.title, r.status, r.status === 'not run' ? '' : seconds(r.ms)]),
  ]
  const changed = records.filter((r) => r.status === 'changed' || r.status === 'dry-run').length
  const verb = records.some((r) => r.status === 'dry-run') ? 'would change something' : 'changed something'
  print(`\nSummary\n${table(rows)}`)
  if (mutates)
    print(`${changed} step(s) ${verb}${changed === 0 ? ': the host(s) were already as wanted' : ''}`)
}

async function writeAudit(
  spec: RunbookSpec,
  ctx: Context | undefined,
  args: ParsedArgs,
  started: Date,
  outcome: Outcome,
  failedStep: string | null,
  error: Error | undefined,
  events: string[],
): Promise<void> {
  const ended = new Date()
  const line = auditLine({
    ts: ended.toISOString(),
    who: whoAmI(),
    runbook: spec.name,
    env: ctx?.env.name ?? stringArg(args, 'env') ?? '',
    args: redactDeep(args),
    release: ctx?.release ?? null,
    started_at: started.toISOString(),
    ended_at: ended.toISOString(),
    duration_s: Math.round((ended.getTime() - started.getTime()) / 100) / 10,
    outcome,
    failed_step: failedStep,
    error: error ? (error.message.split('\n')[0] ?? null) : null,
    hosts: ctx?.hosts.map((h) => h.name) ?? [],
    dry_run: ctx?.dryRun ?? args['dry-run'] === true,
    ci_run_url: ciRunUrl(),
    ...(events.length ? { events } : {}),
  })
  appendLocalAudit(line)
  if (ctx?.dryRun) return
  for (const host of ctx?.hosts ?? []) {
    await host
      .exec(appendLineFromStdin(REMOTE_AUDIT_LOG), { stdin: `${line}\n`, timeoutS: 15, echo: false })
      .catch((e: Error) =>
        printErr(`  (could not append the audit record on ${host.name}: ${e.message}; it is kept locally)`),
      )
  }
}

function exitCode(outcome: Outcome, error: Error | undefined): number {
  if (outcome === 'success' || outcome === 'dry-run') return EXIT.ok
  if (error instanceof RunbookError) return error.exitCode
  return EXIT.stepFailed
}

/** True when the module at `url` is the script node was started with (Node 20 has no import.meta.main). */
export function isMain(url: string): boolean {
  const entry = process.argv[1]
  return !!entry && realpathSync(entry) === realpathSync(fileURLToPath(url))
}

import { appendAuditRecord } from '../commands/audit-log.ts'
import { appendAuditCommand } from '../commands/checker.ts'
import { CommandError, EXIT, RunbookError } from '../report/errors.ts'
import { print, printErr, seconds, table } from '../report/output.ts'
import { redactDeep } from '../report/redact.ts'
import { appendLocalAudit, auditDir, auditLine, ciRunUrl, type Outcome, whoAmI } from './audit.ts'
import { type ParsedArgs, stringArg } from './cli.ts'
import { inActions } from './github-actions.ts'
import { putRunRecord } from './records.ts'
import type { Context, RunContext, Step, StepRecord } from './step.ts'

// How a run reports: a failed step (what, where, the exit status, what to do next), the summary table,
// the audit record (locally and on every host it touched), the exit code.

export function reportError(err: Error): void {
  printErr(`\n✗ ${err.message}`)
  if (err instanceof RunbookError && err.next) printErr(`  next: ${err.next}`)
}

export function reportStepFailure<C extends RunContext>(
  n: number,
  step: Step<C>,
  err: Error,
  next: string | undefined,
  ctx: C,
): void {
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

export function printSummary(records: StepRecord[], mutates: boolean): void {
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

export async function writeAudit(
  runbook: string,
  ctx: (RunContext & Partial<Pick<Context, 'env' | 'hosts'>>) | undefined,
  args: ParsedArgs,
  started: Date,
  outcome: Outcome,
  failedStep: string | null,
  error: Error | undefined,
  events: string[],
  more: { storeHeld?: boolean; within?: string } = {},
): Promise<void> {
  const ended = new Date()
  const line = auditLine({
    ts: ended.toISOString(),
    who: whoAmI(),
    runbook,
    env: ctx?.env?.name ?? stringArg(args, 'env') ?? '',
    ...(ctx?.env?.overridden ? { env_override: ctx.env.overridden } : {}),
    args: redactDeep(args),
    release: ctx?.release ?? null,
    started_at: started.toISOString(),
    ended_at: ended.toISOString(),
    duration_s: Math.round((ended.getTime() - started.getTime()) / 100) / 10,
    outcome,
    failed_step: failedStep,
    error: error ? (error.message.split('\n')[0] ?? null) : null,
    hosts: ctx?.hosts?.map((h) => h.name) ?? [],
    dry_run: ctx?.dryRun ?? args['dry-run'] === true,
    ci_run_url: ciRunUrl(),
    ...(events.length ? { events } : {}),
    ...(more.within ? { within: more.within } : {}),
  })
  appendLocalAudit(line)
  if (ctx?.dryRun) return
  for (const host of ctx?.hosts ?? []) {
    await host
      .exec(host.options.readHelper ? appendAuditCommand(host.options.readHelper) : appendAuditRecord(), {
        stdin: `${line}\n`,
        timeoutS: 15,
        echo: false,
      })
      .catch((e: Error) =>
        printErr(`  (could not append the audit record on ${host.name}: ${e.message}; it is kept locally)`),
      )
  }
  await recordOffHost(runbook, ctx, line, ended, more.storeHeld === true)
}

/** The record in the env's backup store too; or, when this run holds no key for it, where it is and how to copy it. */
async function recordOffHost(
  runbook: string,
  ctx: (RunContext & Partial<Pick<Context, 'env' | 'secrets'>>) | undefined,
  line: string,
  ended: Date,
  storeHeld: boolean,
): Promise<void> {
  const env = ctx?.env
  if (!env?.backup || !ctx?.secrets) return
  if (!storeHeld) {
    // Under Actions every workflow ends with make ship-records, which copies this machine's records.
    if (!inActions())
      print(
        `  (this run's audit record is in ${auditDir()} and on its hosts; make ship-records ENV=${env.name} copies it to the backup store)`,
      )
    return
  }
  await putRunRecord(env, ctx.secrets, runbook, line, ended).then(
    (where) => print(`  audit record: ${where}`),
    (e: Error) =>
      printErr(
        `  (could not put the audit record in the backup store: ${e.message}; it is kept in ${auditDir()}: make ship-records ENV=${env.name} copies it)`,
      ),
  )
}

export function exitCode(outcome: Outcome, error: Error | undefined): number {
  if (outcome === 'success' || outcome === 'dry-run') return EXIT.ok
  if (error instanceof RunbookError) return error.exitCode
  return EXIT.stepFailed
}

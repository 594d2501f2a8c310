import { maybeRestore } from '../backup/restore-state.ts'
import { EXIT, RunbookError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import { type Context, type RunbookSpec, runRunbook, type Step } from '../run/runbook.ts'
import { BUDGET_S, onlyHost, save, st } from './run.ts'
import { type NewHost, type Phase, spentS } from './state.ts'

// How each emergency phase runs: once (a resumed run skips what an earlier one finished), timed against
// the 15-minute budget, and recorded in the state file either way; other runbooks run on the new host.

/** Runs another runbook on the new host, in this process; its own steps, audit record and errors print. */
export async function onNewHostRun(
  ctx: Context,
  spec: RunbookSpec,
  args: string[],
  next: string,
  seen?: (sub: Context) => void,
): Promise<void> {
  await runOnHost(ctx, st(ctx).host, 'the new host', spec, args, next, seen)
}

/** Runs another runbook in this process on one host only (`host`): the new droplet, make image's builder. */
export async function runOnHost(
  ctx: Context,
  host: NewHost | undefined,
  which: string,
  spec: RunbookSpec,
  args: string[],
  next: string,
  seen?: (sub: Context) => void,
): Promise<void> {
  const argv = ['--env', ctx.env.name, '--yes', ...args, ...(ctx.dryRun ? ['--dry-run'] : [])]
  if (ctx.dryRun && !host) {
    print(
      `      would run: ${spec.name} ${argv.filter((a) => a !== '--dry-run').join(' ')}, on ${which} only`,
    )
    return
  }
  print(`      ── make ${spec.name} ${args.join(' ')} on ${which} ──`)
  let sub: Context | undefined
  const code = await runRunbook(spec, argv, {
    env: onlyHost(host, ctx.env),
    within: 'emergency',
    onContext: (c) => {
      sub = c
    },
  })
  print(`      ── ${spec.name}: exit ${code} ──`)
  if (code !== EXIT.ok)
    throw new RunbookError(
      `${spec.name} on ${which} failed (exit ${code}): its failed step is above`,
      code,
      next,
    )
  if (sub) seen?.(sub)
}

/** One phase: skipped when an earlier run finished it, timed against the budget, recorded either way. */
export function phase(name: Phase, title: string, next: string, run: (ctx: Context) => Promise<void>): Step {
  return {
    title: `${name}: ${title}`,
    next,
    async run(ctx) {
      const s = st(ctx)
      const before = s.phases[name]
      if (before?.status === 'done') {
        print(`      done in an earlier run (${before.s} s): not repeated`)
        return 'skipped'
      }
      if (ctx.dryRun) {
        await run(ctx)
        return 'dry-run'
      }
      const t0 = Date.now()
      const spentBefore = spentS(s) - (before?.s ?? 0)
      s.phases[name] = { status: 'running', s: 0, at: new Date().toISOString() }
      save(ctx)
      const record = (status: 'done' | 'failed') => {
        s.phases[name] = { status, s: Math.round((Date.now() - t0) / 100) / 10, at: new Date().toISOString() }
        save(ctx)
      }
      try {
        await run(ctx)
      } catch (err) {
        record('failed')
        throw err
      }
      record('done')
      const total = spentBefore + (s.phases[name]?.s ?? 0)
      print(
        `      ⏱ ${name} ${s.phases[name]?.s} s · ${Math.round(total)} s of the ${BUDGET_S / 60}-minute budget${total > BUDGET_S ? ' · OVER BUDGET' : ''}`,
      )
      return 'changed'
    },
  }
}

/**
 * What the restore recovered when it replayed the archived WAL, kept in the state: verify (perhaps in a
 * later, resumed run) compares the live tables with it rather than with the backup's manifest.
 */
export function keepRecovered(ctx: Context, sub: Context): void {
  const p = maybeRestore(sub)?.pitr
  if (!p?.tables) return
  st(ctx).recovered = { replayedTo: p.replayedTo ?? '', rows: p.rows ?? 0, tables: p.tables }
  save(ctx)
}

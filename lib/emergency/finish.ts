import { notifyRunOutcome } from '../notify/run-outcome.ts'
import { print, table } from '../report/output.ts'
import type { Context } from '../run/runbook.ts'
import { describeChange, hostEntry, writeNewHost } from './env-change.ts'
import { emergencyRun, save, st } from './run.ts'
import { type EmergencyState, PHASES, resumePoint, spentS, stateFile, writeState } from './state.ts'

// The end of an emergency: the report (timings, the env-file change, the old droplet) when it serves,
// and however it ends, where to resume and a message to the team.

export function report(ctx: Context): void {
  const s = st(ctx)
  if (ctx.dryRun) {
    print('      would print the timings, the env-file change and what to do with the old droplet')
    return
  }
  const entry = hostEntry(
    s.host as NonNullable<EmergencyState['host']>,
    ctx.env.hosts[0]?.roles ?? ['web', 'data'],
  )
  for (const line of describeChange(ctx.env.file, ctx.env.hosts, entry)) print(`      ${line}`)
  if (ctx.args['write-env'] === true) {
    writeNewHost(ctx.env.file, entry)
    print(`      written to ${ctx.env.file}: commit it (git diff shows only hosts:)`)
  } else print(`      WRITE_ENV=1 writes it; or edit ${ctx.env.file} by hand and commit it`)
  print(
    `      the old host(s) ${ctx.env.hosts.map((h) => h.address).join(', ')}: power off, do not destroy yet (docs/runbooks/emergency.md#afterwards)`,
  )
  s.finishedAt = new Date().toISOString()
  save(ctx)
  const phases = Object.fromEntries(PHASES.map((p) => [p, s.phases[p]?.s ?? 0]))
  print(
    table([
      ['phase', 'seconds'],
      ...Object.entries(phases).map(([p, v]) => [p, String(v)]),
      ['total', String(Math.round(spentS(s) * 10) / 10)],
    ]),
  )
  print(
    `emergency-summary ${JSON.stringify({ run: s.runId, host: s.host?.address, image: s.image ?? null, backup: s.backup?.id, release: s.release, total_s: Math.round(spentS(s) * 10) / 10, phases, rows_verified: s.result?.rowsVerified ?? 0, data_lost: s.result?.dataLost ?? null, replayed_to: s.recovered?.replayedTo ?? null })}`,
  )
}

/** However the run ends: the state says where to resume, and the team hears of it. */
export async function onEnd(ctx: Context): Promise<void> {
  const s = emergencyRun.maybe(ctx)
  if (!s) return
  const failure = ctx.failure()
  if (failure) {
    for (const p of PHASES)
      if (s.phases[p]?.status === 'running') s.phases[p] = { ...s.phases[p], status: 'failed' }
    writeState(s)
    print(
      `\n  RESUME: run the same make emergency command again: it continues from "${resumePoint(s)}" (${stateFile(ctx.env.name)})`,
    )
  }
  await notifyRunOutcome(ctx, {
    event: 'emergency',
    ok: failure === null,
    title: `emergency of ${ctx.env.name}: ${failure ? `stopped in ${resumePoint(s)}` : `serving from ${s.host?.address}`}`,
    ...(s.release ? { release: s.release } : {}),
    durationS: spentS(s),
    runbook: 'docs/runbooks/emergency.md',
    next: [`run make emergency ENV=${ctx.env.name} again: it resumes from ${resumePoint(s)}`],
  })
}

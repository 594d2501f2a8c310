/**
 * make restore-drill on an env that archives its WAL: a random point in the recovery window (from the
 * oldest base backup's end to a canary row the drill writes now), and after replay, the canary check:
 * the recovered database holds the newest canary row the live one had before the point (the watchdog
 * writes one each run) and none written after it. Nothing else live changes: the drill's canary row
 * and a WAL switch (what archive_timeout does every 30 s anyway).
 * On-call page: docs/runbooks/restore.md#the-drill
 */
import { canaryProbe, parseCanaryProbe, pitrCanaryWrite, walSwitch } from '../commands/pitr-canary.ts'
import type { HostSession } from '../host/session.ts'
import { IntegrityError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import type { Context } from '../run/runbook.ts'
import { DB_NAME, DB_USER } from '../stack/files.ts'
import { BASE_PART } from './base-backup.ts'
import { listBackups } from './catalog.ts'
import type { PitrPlan } from './pitr-plan.ts'
import { type RestoreRun, readBackupManifest } from './restore.ts'
import { openBackupTarget } from './take.ts'
import { archivedWal } from './wal-archive.ts'

/** A canary row's time is its insert's clock; its commit follows within this (a loaded machine included). */
export const CANARY_SLACK_MS = 5000
/** How long the drill waits for the WAL it switched to reach the store. */
const ARCHIVE_WAIT_S = 180

export interface DrillWindow {
  from: string
  to: string
}

/**
 * The recovery window: from the oldest base backup's end (plus the canary slack, so a canary row
 * written before that base is already before the point) to a second before `canaryAt` (the drill's
 * own canary, a commit after any point in the window: replay has a transaction to stop before).
 */
export function drillWindow(baseFinished: string[], canaryAt: string): DrillWindow | undefined {
  const opens = windowOpensAt(baseFinished)
  if (opens === undefined) return undefined
  const from = opens - 1000
  const to = Date.parse(canaryAt) - 1000
  if (Number.isNaN(to) || to < from) return undefined
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString() }
}

/** The earliest canary time (ms) whose window is not empty: the oldest base's end, the slack, a second each side. */
export function windowOpensAt(baseFinished: string[]): number | undefined {
  const starts = baseFinished.map((f) => Date.parse(f)).filter((t) => !Number.isNaN(t))
  if (!starts.length) return undefined
  return Math.min(...starts) + 1000 + CANARY_SLACK_MS + 1000
}

/** A point in the window, to the millisecond; `random` in [0, 1). */
export function pickPoint(w: DrillWindow, random: () => number = Math.random): string {
  const from = Date.parse(w.from)
  return new Date(from + Math.floor(random() * (Date.parse(w.to) - from + 1))).toISOString()
}

/**
 * The drill's point in time, or undefined when the env has no base backup (the drill restores the
 * latest backup whole, as before WAL archiving). Writes the drill's canary, switches the WAL and waits
 * until the switched segment is archived, so everything up to the canary can be replayed.
 */
export async function drillPoint(ctx: Context, host: HostSession): Promise<string | undefined> {
  const { store, keyring } = openBackupTarget(ctx)
  // Only the oldest base bounds the window (each base is taken during its backup): its manifest, not all.
  const withBase = (await listBackups(store, ctx.env.name, { keyring }))
    .filter((e) => e.complete && e.parts.includes(BASE_PART))
    .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())
  const finished: string[] = []
  for (const e of withBase) {
    const base = (await readBackupManifest(ctx, e.id)).manifest.base
    if (!base) continue
    finished.push(base.finished_at)
    break
  }
  if (!finished.length) {
    print('      no backup has a base backup (WAL archiving off): the drill restores the latest backup whole')
    return undefined
  }
  const data = { env: ctx.env.name, user: DB_USER, db: DB_NAME }
  if (ctx.dryRun) {
    print(`  [${host.name}] would write a canary row, switch the WAL and wait for it to be archived:`)
    print(`${pitrCanaryWrite(data, 'restore-drill')}\n${walSwitch(data)}`)
    const w = drillWindow(finished, new Date().toISOString())
    return w && pickPoint(w)
  }
  // A drill right after the first base backup (a rehearsal, a new env): the window opens a few seconds
  // after that base finished; wait for it rather than fall back to restoring the backup whole.
  const opensInMs = (windowOpensAt(finished) ?? 0) - Date.now()
  if (opensInMs > 0 && opensInMs < 60_000) {
    print(
      `      the oldest base backup finished moments ago: waiting ${(opensInMs / 1000).toFixed(1)} s for the window to open`,
    )
    await new Promise((r) => setTimeout(r, opensInMs + 500))
  }
  const canaryAt = (await host.exec(pitrCanaryWrite(data, 'restore-drill'), { echo: false })).stdout.trim()
  const [, segment = ''] = (await host.exec(walSwitch(data), { echo: false })).stdout.trim().split('|')
  const t0 = Date.now()
  while (!(await archivedWal(store, ctx.env.name)).some((w) => w.name === segment)) {
    if (Date.now() - t0 > ARCHIVE_WAIT_S * 1000)
      throw new IntegrityError(
        `the WAL shipper did not archive ${segment} within ${ARCHIVE_WAIT_S} s of the switch: the recovery point is falling behind (make health ENV=${ctx.env.name}; docs/runbooks/backup.md#wal-archiving)`,
      )
    await new Promise((r) => setTimeout(r, 2000))
  }
  print(
    `      canary row written at ${canaryAt}; WAL switched, ${segment} archived ${((Date.now() - t0) / 1000).toFixed(1)} s later`,
  )
  const w = drillWindow(finished, canaryAt)
  if (!w) {
    print(
      '      the oldest base backup finished moments ago: no window yet; the drill restores the latest backup whole',
    )
    return undefined
  }
  const point = pickPoint(w)
  print(`      drill point ${point}: random between ${w.from} (the oldest base) and ${w.to}`)
  return point
}

/** What the recovered and the live database say about the canary rows around the target. */
export interface CanaryVerdict {
  ok: boolean
  line: string
}

/**
 * Pure: the recovered database has no row written after `target`, and has the newest row the live one
 * wrote at least CANARY_SLACK_MS before it (or a newer one). `recoveredNewest`/`liveNewest` are ISO
 * times ('' for none); `liveNewest` is the newest live row at or before target - slack.
 */
export function canaryVerdict(
  target: string,
  recovered: { after: number; newest: string },
  liveNewest: string,
): CanaryVerdict {
  if (recovered.after > 0)
    return {
      ok: false,
      line: `replay went past ${target}: the recovered database has ${recovered.after} canary row(s) written after it`,
    }
  if (!liveNewest)
    return {
      ok: false,
      line: `the live database has no canary row written before ${target} to look for (the watchdog writes one each run; a restore since then replaced the database?): run the drill again`,
    }
  if (!recovered.newest || Date.parse(recovered.newest) < Date.parse(liveNewest))
    return {
      ok: false,
      line: `the canary row written at ${liveNewest} is not in the recovered database (its newest: ${recovered.newest || 'none'}): replay stopped before ${target}`,
    }
  const gap = ((Date.parse(target) - Date.parse(recovered.newest)) / 1000).toFixed(1)
  return {
    ok: true,
    line: `canary row written at ${recovered.newest} (${gap} s before the point) found, none after it`,
  }
}

/** The drill's canary check on the scratch database (a copy of the recovered one). */
export async function checkDrillCanary(r: RestoreRun, p: PitrPlan): Promise<void> {
  const before = new Date(Date.parse(p.target) - CANARY_SLACK_MS).toISOString()
  const probe = async (db: string, at: string) => {
    const out = (await r.host.exec(canaryProbe(r.data, db, at), { echo: false })).stdout
    const seen = parseCanaryProbe(out)
    if (!seen) throw new IntegrityError(`could not read the canary rows of ${db}: ${out.trim()}`)
    return seen
  }
  const recovered = await probe(r.scratch, p.target)
  const live = await probe(r.data.db, before)
  const v = canaryVerdict(p.target, recovered, live.newest)
  if (!v.ok) throw new IntegrityError(v.line)
  p.canary = recovered.newest
  print(`      ${v.line}`)
}

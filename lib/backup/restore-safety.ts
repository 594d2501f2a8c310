/**
 * restore's safety net: what brings back the state this restore replaces, should the restore itself be
 * the mistake (and the host lost with the replaced database it keeps, renamed).
 *
 * When the env archives its WAL and the archive already holds that state (a base backup of the live
 * cluster, and its WAL from that base through a segment switched now, without a hole), the safety net is
 * a point in time: a canary row is written, the WAL switched, and the switched segment waited for in the
 * store; `make restore AT=<the canary's time>` then brings back everything committed before it. No dump
 * of the live database competes with the scratch restore for the host's CPU and disk. Otherwise (no base
 * of this cluster, a hole, the shipper behind): a safety backup of the current state, as before. Either
 * runs in the background beside the scratch restore; the swap waits for it.
 */
import { pitrCanaryWrite, walSwitch } from '../commands/pitr-canary.ts'
import { labelled, print } from '../report/output.ts'
import type { Context } from '../run/runbook.ts'
import { BASE_PART, type BaseInfo } from './base-backup.ts'
import { listBackups } from './catalog.ts'
import { baseServes, walToReplay } from './pitr.ts'
import { type RestoreRun, readBackupManifest, type Safety, timedPhase } from './restore.ts'
import { takeBackup } from './take.ts'
import { type ArchivedWal, archivedWal, isSegmentName } from './wal-archive.ts'
import { parseSegment, segmentIndex } from './wal-chain.ts'

/** How long the switched segment may take to reach the store before the safety backup is taken instead. */
const ARCHIVE_WAIT_S = 60
/** The shipper archived nothing new for this long while the segment waited: not shipping (store down?). */
const STALL_S = 15
/** More segments than this between the newest archived and the switched one: the shipper is behind. */
const MAX_BEHIND = 8

/**
 * Starts the safety net in the background, its lines marked [safety backup]: the scratch restore runs
 * meanwhile. A run that ends early still waits for it (cleanup), so no backup is left half written; a
 * failure is reported where the restore waits for it (before anything live changes).
 */
export function startSafety(ctx: Context, r: RestoreRun): void {
  const safety = labelled('safety backup', () => timedPhase(r, 'safety-backup', () => takeSafety(ctx, r)))
  // Awaited by restore's confirmation step or the cleanup; never an unhandled rejection meanwhile.
  safety.catch(() => undefined)
  r.safety = safety
  ctx.onCleanup(async () => {
    await safety.catch(() => undefined)
  })
}

async function takeSafety(ctx: Context, r: RestoreRun): Promise<Safety> {
  const env = ctx.env.name
  const held = await walPoint(ctx, r)
  if ('point' in held) {
    print(
      `      the WAL archive holds the state before this restore, up to ${held.point}: no safety dump needed`,
    )
    return { point: held.point, undo: `make restore ENV=${env} AT=${held.point}` }
  }
  print(`      ${held.why}: a safety backup of the current state instead`)
  const run = await takeBackup(ctx, r.host, `pre-restore of ${r.entry.id}`)
  return { backupId: run.id, undo: `make restore ENV=${env} BACKUP=${run.id}` }
}

/**
 * The point in time the archive holds now, or why it cannot be trusted to: the newest base backup
 * (what a restore to a time this recent replays from) must be of the live cluster, and its WAL must run
 * without a hole through the segment switched after the canary row.
 */
async function walPoint(ctx: Context, r: RestoreRun): Promise<{ point: string } | { why: string }> {
  const withBase = (await listBackups(r.store, ctx.env.name, { keyring: r.keyring }))
    .filter((e) => e.complete && e.parts.includes(BASE_PART))
    .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
  const newest = withBase[0]
  const base = newest && (await readBackupManifest(ctx, newest.id)).manifest.base
  if (!base) return { why: 'no backup has a base backup (WAL archiving off)' }
  const canaryAt = (await r.host.exec(pitrCanaryWrite(r.data, 'restore'), { echo: false })).stdout.trim()
  const [, segment = ''] = (await r.host.exec(walSwitch(r.data), { echo: false })).stdout.trim().split('|')
  const t0 = Date.now()
  let progress = { newest: '', at: t0 }
  for (;;) {
    const archived = await archivedWal(r.store, ctx.env.name)
    if (archived.some((w) => w.name === segment))
      return judgeSafetyPoint({ id: newest.id, base }, archived, segment, canaryAt)
    const last =
      archived
        .filter((w) => w.system === base.system && isSegmentName(w.name))
        .map((w) => w.name)
        .sort()
        .at(-1) ?? ''
    if (last !== progress.newest) progress = { newest: last, at: Date.now() }
    const behind = last && segment ? segmentDistance(last, segment) : 0
    const stalled = (Date.now() - progress.at) / 1000
    if (behind > MAX_BEHIND)
      return { why: `the WAL shipper is ${behind} segments behind (its newest archived: ${last})` }
    if (stalled > STALL_S || Date.now() - t0 > ARCHIVE_WAIT_S * 1000)
      return {
        why: `the WAL shipper did not archive ${segment} (nothing new archived for ${Math.round(stalled)} s; its newest: ${last || 'none'}; make health says why)`,
      }
    await new Promise((done) => setTimeout(done, 1000))
  }
}

/** How many segments `to` is after `from` on the same timeline (0 when not, or not comparable). */
export function segmentDistance(from: string, to: string): number {
  const a = parseSegment(from)
  const b = parseSegment(to)
  if (!a || !b || a.timeline !== b.timeline) return 0
  return Math.max(0, segmentIndex(b) - segmentIndex(a))
}

/**
 * Pure: `canaryAt` is a point `make restore AT=` can bring back when the base (backup `id`'s) finished
 * before it and its WAL reaches `segment` (switched after the canary, and archived) without a hole.
 */
export function judgeSafetyPoint(
  newest: { id: string; base: BaseInfo },
  archived: ArchivedWal[],
  segment: string,
  canaryAt: string,
): { point: string } | { why: string } {
  const { wal, gap } = walToReplay(archived, newest.base)
  if (!wal.some((w) => w.name === segment))
    return {
      why: `the WAL of backup ${newest.id}'s base does not reach ${segment}${gap ? ` (${gap})` : ' (it is of another cluster: an older one)'}`,
    }
  if (!baseServes(newest.base, canaryAt))
    return { why: `backup ${newest.id}'s base finished moments ago (${newest.base.finished_at})` }
  return { point: canaryAt }
}

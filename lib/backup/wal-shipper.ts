/**
 * One pass of the WAL shipper over its spool: every finished WAL file, oldest first, sealed, uploaded,
 * read back, and only then removed from the spool. The first failure stops the pass (the order of the
 * archive is kept) and is reported in the status; the spool keeps everything not yet archived.
 * The service (wal-shipper-main.ts) runs a pass every few seconds.
 */
import { readdir, readFile, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { BackupStore } from '../store/store.ts'
import type { Recipient } from './keys.ts'
import { isSegmentName, segmentSystem, shipWalFile, WAL_FILE } from './wal-archive.ts'

export interface ShipperStatus {
  version: 1
  env: string
  /** When this status was written. */
  at: string
  /** The newest WAL file archived (by this shipper), and when; the cluster it came from. */
  last?: string
  lastAt?: string
  system?: string
  /** Files archived since the service started. */
  shipped: number
  /** Files waiting in the spool, and the age of the oldest in seconds. */
  backlog: number
  oldestWaitingS: number
  /** The last pass's failure (no secret in it), and since when passes fail. */
  error?: string
  failingSince?: string
}

export interface PassResult {
  shipped: { name: string; status: string; bytes: number; system: string }[]
  backlog: number
  oldestWaitingS: number
  error?: string
}

/** WAL files waiting in the spool, oldest name first (temporary `.x.tmp` files and the marker are not). */
export async function spoolFiles(spool: string): Promise<string[]> {
  return (await readdir(spool)).filter((n) => WAL_FILE.test(n)).sort()
}

export async function shipPass(opts: {
  spool: string
  store: BackupStore
  recipient: Recipient
  env: string
  /** The cluster of the last segment shipped before (status.system): a history file's, if no segment follows it. */
  lastSystem?: string
  now?: () => number
}): Promise<PassResult> {
  const now = opts.now ?? Date.now
  const shipped: PassResult['shipped'] = []
  let error: string | undefined
  const files = await spoolFiles(opts.spool)
  let system = opts.lastSystem
  for (const [i, name] of files.entries()) {
    const path = join(opts.spool, name)
    try {
      const bytes = await readFile(path)
      if (isSegmentName(name)) system = segmentSystem(name, bytes)
      else {
        // A timeline history file belongs to the cluster of the segments after it (a promotion writes it
        // just before the new timeline's first segment); with none yet, of the last one shipped.
        const next = files.slice(i + 1).find(isSegmentName)
        if (next) system = segmentSystem(next, await readFile(join(opts.spool, next)))
        if (!system) break
      }
      const out = await shipWalFile(opts.store, opts.recipient, opts.env, system, name, bytes)
      await unlink(path)
      shipped.push({ name, status: out.status, bytes: out.bytes, system })
    } catch (err) {
      const e = err as Error & { next?: string }
      error = `${name}: ${e.message}${e.next ? ` (${e.next})` : ''}`
      break
    }
  }
  return { shipped, ...(await spoolBacklog(opts.spool, now)), ...(error ? { error } : {}) }
}

/** How many WAL files wait in the spool, and how long the oldest has (0 when none or unreadable). */
export async function spoolBacklog(
  spool: string,
  now: () => number = Date.now,
): Promise<{ backlog: number; oldestWaitingS: number }> {
  const left = await spoolFiles(spool).catch(() => [] as string[])
  let oldestWaitingS = 0
  if (left[0]) {
    const st = await stat(join(spool, left[0])).catch(() => undefined)
    if (st) oldestWaitingS = Math.max(0, Math.round((now() - st.mtimeMs) / 1000))
  }
  return { backlog: left.length, oldestWaitingS }
}

/** The status after a pass, from the one before it. */
export function nextStatus(
  prev: ShipperStatus | undefined,
  env: string,
  pass: PassResult,
  at: Date,
): ShipperStatus {
  const last = pass.shipped.at(-1)
  return {
    version: 1,
    env,
    at: at.toISOString(),
    ...(last
      ? { last: last.name, lastAt: at.toISOString(), system: last.system }
      : prev?.last
        ? { last: prev.last, lastAt: prev.lastAt, ...(prev.system ? { system: prev.system } : {}) }
        : {}),
    shipped: (prev?.shipped ?? 0) + pass.shipped.length,
    backlog: pass.backlog,
    oldestWaitingS: pass.oldestWaitingS,
    ...(pass.error ? { error: pass.error, failingSince: prev?.failingSince ?? at.toISOString() } : {}),
  }
}

/**
 * Restoring, phase by phase (runbooks/restore.ts runs one phase per step). Nothing live is touched
 * until every part verified and the database restored into a scratch copy matches the manifest.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type DataTarget,
  parsePgVerify,
  pgDropDb,
  pgRestoreScratch,
  pgSwap,
  pgVerify,
  redisDrill,
  redisStage,
  redisSwap,
  redisUnstage,
  scratchDb,
} from '../commands/backup.ts'
import type { HostSession } from '../host/session.ts'
import { IntegrityError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import type { Context } from '../run/runbook.ts'
import { DB_NAME, DB_USER } from '../stack/files.ts'
import { readObject } from '../store/storage.ts'
import { BASE_PART } from './base-backup.ts'
import { type BackupEntry, listBackups, manifestKey, newBackupId, partKey, resolveBackup } from './catalog.ts'
import { decryptBuffer } from './format.ts'
import { compareCounts, type Manifest, PARTS, parseManifest, totalRows } from './manifest.ts'
import type { PitrPlan } from './pitr-plan.ts'
import { type BackupTarget, openBackupTarget } from './take.ts'
import { downloadVerified, restoreFromFile } from './transfer.ts'

export interface RestoreRun extends BackupTarget {
  entry: BackupEntry
  manifest: Manifest
  host: HostSession
  data: DataTarget
  /** Verified ciphertext, on this machine (0700 directory, removed at the end). */
  dir: string
  files: Record<string, string>
  scratch: string
  swapped: boolean
  /** Redis's container, found while staging (the swap makes no Docker lookup in the pause). */
  redisContainer?: string
  /** Redis's files were swapped for the staged ones (nothing staged is left to remove). */
  redisSwapped?: boolean
  /** Redis's key count once it answered after the swap. */
  redisKeysAfter?: number
  /** When the services that use the data stopped (their maintenance page went up). */
  pauseStartedMs?: number
  keptAs: string
  timings: Record<string, number>
  /** Restore to a point in time (AT=): the base backup and the WAL to replay instead of the dump. */
  pitr?: PitrPlan
  /** The safety net (a point the WAL archive holds, or a backup), in the background beside the scratch restore. */
  safety?: Promise<Safety>
}

/** restore's safety net (lib/backup/restore-safety.ts): what undoes this restore. */
export interface Safety {
  /** `make restore ENV=.. AT=..` or `make restore ENV=.. BACKUP=..`. */
  undo: string
  /** The point in time the WAL archive holds (the safety net without a dump). */
  point?: string
  /** The safety backup taken instead. */
  backupId?: string
}

const RESTORE_TIMEOUT_S = 6 * 3600

export async function timedPhase<T>(
  r: { timings: Record<string, number> },
  phase: string,
  fn: () => Promise<T>,
): Promise<T> {
  const t0 = Date.now()
  try {
    return await fn()
  } finally {
    r.timings[phase] = Math.round((Date.now() - t0) / 100) / 10
  }
}

/** The backup (BACKUP=<id> or the latest complete one) and its manifest, decrypted and checked. */
export async function chooseBackup(ctx: Context, host: HostSession, requested?: string): Promise<RestoreRun> {
  const timings: Record<string, number> = {}
  const t0 = Date.now()
  const { target, entry, manifest } = await readBackupManifest(ctx, requested)
  timings.manifest = Math.round((Date.now() - t0) / 100) / 10
  const dir = mkdtempSync(join(tmpdir(), `ce-restore-${process.pid}-`))
  return {
    ...target,
    entry,
    manifest,
    host,
    data: { env: ctx.env.name, user: DB_USER, db: DB_NAME },
    dir,
    files: {},
    scratch: scratchDb(entry.id),
    swapped: false,
    // Named for this restore's own time, not the backup's: the same backup may be restored twice (a
    // point in time, then the whole backup), and each replaced database is kept.
    keptAs: `${DB_NAME}_before_${newBackupId().toLowerCase()}`,
    timings,
  }
}

/** A backup (BACKUP=<id> or the latest complete one) and its manifest, decrypted and checked; no host needed. */
export async function readBackupManifest(ctx: Context, requested?: string) {
  const target = openBackupTarget(ctx)
  const entry = resolveBackup(
    await listBackups(target.store, ctx.env.name, { keyring: target.keyring }),
    requested,
    {
      env: ctx.env.name,
      store: target.store.description,
    },
  )
  const key = manifestKey(ctx.env.name, entry.id)
  const sealed = await readObject(target.store, key)
  const manifest = parseManifest(
    decryptBuffer(target.keyring, sealed, {
      label: `backup ${entry.id} manifest`,
      env: ctx.env.name,
      context: key,
    }).toString('utf8'),
    `backup ${entry.id}`,
  )
  if (manifest.id !== entry.id || manifest.env !== ctx.env.name)
    throw new IntegrityError(`backup ${entry.id}: its manifest names ${manifest.env}/${manifest.id}`)
  return { target, entry, manifest }
}

export function describeBackup(r: RestoreRun): string[] {
  const m = r.manifest
  return [
    `backup ${m.id} of ${m.env} taken ${m.created_at} on ${m.host} (${m.reason}); release ${m.release ?? 'none'}`,
    `postgres: ${Object.keys(m.postgres.tables).length} tables, ${m.postgres.rows} rows; redis: ${m.redis.keys} keys; key ${m.key_id}`,
  ]
}

/** Every part downloaded (ciphertext) and checked: every tag, every size, every SHA-256. */
export async function downloadAll(r: RestoreRun): Promise<void> {
  await timedPhase(r, 'download+verify', async () => {
    // The dump, or for restore AT=<time> the base backup instead: never both.
    const skip = r.pitr ? PARTS.postgres : BASE_PART
    for (const [part, info] of Object.entries(r.manifest.parts).filter(([p]) => p !== skip)) {
      const file = join(r.dir, `${part}.enc`)
      await downloadVerified(
        r.store,
        partKey(r.manifest.env, r.entry.id, part),
        file,
        r.keyring,
        info,
        `${r.entry.id}/${part}`,
      )
      r.files[part] = file
    }
  })
  print(`      ${Object.keys(r.files).length} parts verified: every tag and SHA-256 matches the manifest`)
}

/** pg_restore into a scratch database, then its row counts and canary against the manifest. */
export async function restoreScratch(r: RestoreRun): Promise<void> {
  await timedPhase(r, 'postgres-scratch', async () => {
    await restoreFromFile(
      r.host,
      pgRestoreScratch(r.data, r.scratch, partBytes(r, PARTS.postgres), r.manifest.postgres.compression),
      need(r, PARTS.postgres),
      objectKey(r, PARTS.postgres),
      r.keyring,
      PARTS.postgres,
      RESTORE_TIMEOUT_S,
    )
  })
  await timedPhase(r, 'postgres-verify', async () => {
    const got = parsePgVerify(
      (await r.host.exec(pgVerify(r.data, r.scratch, r.manifest.id), { echo: false })).stdout,
    )
    const diff = compareCounts(r.manifest.postgres.tables, got.counts)
    if (diff.length)
      throw new IntegrityError(
        `the restored database does not match the backup's row counts:\n  ${diff.join('\n  ')}`,
      )
    if (got.canary !== r.manifest.postgres.canary.token)
      throw new IntegrityError(`the restored database lacks the canary row of backup ${r.manifest.id}`)
    print(
      `      scratch database ${r.scratch}: ${totalRows(got.counts)} rows in ${Object.keys(got.counts).length} tables match; canary found`,
    )
  })
}

/** Drill only: the backup's Redis files loaded by a throwaway redis-server; its key count checked. */
export async function drillRedis(r: RestoreRun): Promise<void> {
  await timedPhase(r, 'redis-verify', async () => {
    const out = await restoreFromFile(
      r.host,
      redisDrill(r.data, r.manifest.redis.aof),
      need(r, PARTS.redis),
      objectKey(r, PARTS.redis),
      r.keyring,
      PARTS.redis,
      600,
    )
    checkKeys(r, Number(out.trim()))
  })
}

export async function dropScratch(r: RestoreRun): Promise<void> {
  await r.host.exec(pgDropDb(r.data, r.scratch), { echo: false, allowFail: true })
}

export async function swapDatabase(r: RestoreRun): Promise<void> {
  await timedPhase(r, 'postgres-swap', () =>
    r.host.exec(pgSwap(r.data, r.scratch, r.keptAs), { echo: false }),
  )
  r.swapped = true
  print(`      ${r.data.db} is now the restored data; the previous database is kept as ${r.keptAs}`)
}

/** Before anything stops: the backup's Redis files decrypted into a staging directory in Redis's volume. */
export async function stageRedis(r: RestoreRun): Promise<void> {
  const out = await timedPhase(r, 'redis-stage', () =>
    restoreFromFile(
      r.host,
      redisStage(r.data),
      need(r, PARTS.redis),
      objectKey(r, PARTS.redis),
      r.keyring,
      PARTS.redis,
      900,
    ),
  )
  r.redisContainer = out.trim().split('\n').pop()
}

/** The swap helper (and staged files a failed run left behind) removed: outside the pause. */
export async function unstageRedis(r: RestoreRun): Promise<void> {
  await r.host.exec(redisUnstage(r.data), { echo: false, allowFail: true })
}

/** Redis stopped, its files swapped for the staged ones, started; returns its key count (checked later). */
export async function swapRedis(r: RestoreRun): Promise<void> {
  if (!r.redisContainer) throw new IntegrityError("Redis's files were not staged")
  const id = r.redisContainer
  const out = await timedPhase(r, 'redis-swap', () =>
    r.host.exec(redisSwap(r.data, id), { echo: false, timeoutS: 120 }),
  )
  r.redisSwapped = true
  r.redisKeysAfter = Number(out.stdout.trim().split('\n').pop())
}

/** After the pause: Redis has the backup's key count. */
export function checkRedisKeys(r: RestoreRun): void {
  checkKeys(r, r.redisKeysAfter ?? Number.NaN)
}

function checkKeys(r: RestoreRun, keys: number): void {
  if (keys !== r.manifest.redis.keys)
    throw new IntegrityError(
      `Redis has ${keys} keys after the restore; the backup had ${r.manifest.redis.keys}`,
    )
  print(`      redis: ${keys} keys, as in the backup`)
}

/** The part's plaintext size, as the (authenticated) manifest vouches for it. */
function partBytes(r: RestoreRun, part: string): number {
  const info = r.manifest.parts[part]
  if (!info) throw new IntegrityError(`the backup's manifest has no ${part} part`)
  return info.bytes
}

function need(r: RestoreRun, part: string): string {
  const file = r.files[part]
  if (!file) throw new IntegrityError(`${part} was not downloaded and verified`)
  return file
}

/** The part's name in the store: what its tags are bound to. */
function objectKey(r: RestoreRun, part: string): string {
  return partKey(r.manifest.env, r.entry.id, part)
}

export function removeDownloads(r: RestoreRun): void {
  rmSync(r.dir, { recursive: true, force: true })
}

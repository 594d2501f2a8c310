/**
 * Taking a backup, phase by phase: the backup runbook runs one phase per step; restore's safety
 * backup and deploy's pre-migration backup run them all with takeBackup().
 */

import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import {
  type Compression,
  canarySql,
  canaryWrite,
  configTar,
  type DataTarget,
  pgBaseBackup,
  pgDumpWithCounts,
  pgGlobals,
  redisSnapshot,
} from '../commands/backup.ts'
import { pitrCanaryWrite } from '../commands/pitr-canary.ts'
import { remotePaths } from '../env/host-paths.ts'
import type { Env } from '../env/load.ts'
import type { HostSession } from '../host/session.ts'
import { InputError, IntegrityError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import type { Context } from '../run/runbook.ts'
import { DB_NAME, DB_USER } from '../stack/files.ts'
import { type BackupStore, openStore, readObject } from '../store/storage.ts'
import { BASE_PART, type BaseInfo, parseBaseBackupLog } from './base-backup.ts'
import { listBackups, manifestKey, markComplete, newBackupId, partKey } from './catalog.ts'
import { countingStream, decryptBuffer, decryptStream, encryptBuffer, hashingStream } from './format.ts'
import { Keyring } from './keys.ts'
import { MANIFEST_FORMAT, type Manifest, PARTS, type PartInfo, totalRows } from './manifest.ts'
import { captureToStore } from './transfer.ts'

export interface BackupTarget {
  store: BackupStore
  keyring: Keyring
}

export interface BackupRun extends BackupTarget {
  env: Env
  host: HostSession
  id: string
  reason: string
  data: DataTarget
  parts: Record<string, PartInfo>
  tables: Record<string, number>
  canary: { backup_id: string; token: string }
  redis: { aof: boolean; keys: number }
  /** The dump was compressed with zstd on the host (else by pg_dump itself). */
  dumpCompression?: Compression
  /** The physical base backup, taken when the env archives WAL (make backup's WAL step said so). */
  base?: BaseInfo
  /** make backup's WAL step found archiving on: take a base backup too. */
  archiving?: boolean
  release: string | null
  timings: Record<string, number>
  manifestBytes: number
  completed: boolean
}

const DUMP_TIMEOUT_S = 6 * 3600

/** The env's backup store (its credentials only, no key), or a clear error naming what is missing. */
export function openBackupStore(ctx: Context): BackupStore {
  const config = ctx.env.backup
  if (!config)
    throw new InputError(
      `${ctx.env.file} has no backup: section, so there is nowhere to keep or find backups`,
      [],
      'Add backup.store (type: s3 with endpoint/bucket/prefix, or type: local with dir) and BACKUP_KEY under secrets.',
    )
  return openStore(config.store, ctx.secrets)
}

/** The env's backup store and keys, or a clear error naming what is missing. */
export function openBackupTarget(ctx: Context): BackupTarget {
  const store = openBackupStore(ctx)
  return { store, keyring: Keyring.fromSecrets(ctx.secrets) }
}

/** Checks the store answers (a listing) and picks a fresh backup id. */
export async function startBackup(
  ctx: Context,
  host: HostSession,
  target: BackupTarget,
  reason: string,
): Promise<BackupRun> {
  let id = newBackupId()
  const existing = new Set((await listBackups(target.store, ctx.env.name)).map((e) => e.id))
  while (existing.has(id)) {
    await new Promise((r) => setTimeout(r, 1000))
    id = newBackupId()
  }
  const release = ctx.dryRun
    ? null
    : (
        await host.exec(`cat ${remotePaths(ctx.env).currentRelease} 2>/dev/null || true`, {
          probe: true,
          echo: false,
        })
      ).stdout.trim() || null
  return {
    ...target,
    env: ctx.env,
    host,
    id,
    reason,
    data: { env: ctx.env.name, user: DB_USER, db: DB_NAME },
    parts: {},
    tables: {},
    canary: { backup_id: id, token: randomBytes(16).toString('hex') },
    redis: { aof: false, keys: 0 },
    release,
    timings: {},
    manifestBytes: 0,
    completed: false,
  }
}

async function timed<T>(run: BackupRun, phase: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now()
  try {
    return await fn()
  } finally {
    run.timings[phase] = Math.round((Date.now() - t0) / 100) / 10
  }
}

async function capture(run: BackupRun, part: string, command: string): Promise<string> {
  const { info, stderr } = await captureToStore(
    run.host,
    command,
    run.store,
    partKey(run.env.name, run.id, part),
    run.keyring,
    DUMP_TIMEOUT_S,
  )
  run.parts[part] = info
  print(`      ${part}: ${mb(info.bytes)} → ${mb(info.stored_bytes)} encrypted`)
  return stderr
}

const CANARY_NEXT = 'Postgres did not take the canary row: is it running and healthy? (make status)'

/** A canary row, then pg_dump -Fc and exact row counts in one snapshot. */
export async function dumpPostgres(run: BackupRun): Promise<void> {
  await writeDumpCanary(run)
  await captureDump(run)
}

/**
 * make backup with WAL archiving on: the canary rows first (the dump's, then a point-in-time one), then
 * pg_dump and pg_basebackup at the same time: both start after the canaries committed, so both hold them
 * (a drill point after this base has a canary before it to find). Two streams over the one SSH
 * connection; the slower one sets the time. When one fails the other is waited for, and the first
 * failure is the one reported (the backup is then discarded whole, as with any failed part).
 */
export async function dumpWithBase(run: BackupRun): Promise<void> {
  await writeDumpCanary(run)
  await run.host.exec(pitrCanaryWrite(run.data, 'backup'), {
    echo: false,
    next: CANARY_NEXT,
  })
  const [dump, base] = await Promise.allSettled([captureDump(run), captureBase(run)])
  if (dump.status === 'rejected') throw dump.reason
  if (base.status === 'rejected') throw base.reason
}

async function writeDumpCanary(run: BackupRun): Promise<void> {
  await timed(run, 'canary', () =>
    run.host.exec(canaryWrite(run.data), {
      stdin: canarySql(run.canary.backup_id, run.canary.token),
      echo: false,
      next: CANARY_NEXT,
    }),
  )
}

async function captureDump(run: BackupRun): Promise<void> {
  await timed(run, 'postgres', async () => {
    const stderr = await capture(run, PARTS.postgres, pgDumpWithCounts(run.data))
    const line = stderr.split('\n').find((l) => l.startsWith('ce-counts '))
    if (!line) throw new IntegrityError('pg_dump finished but the row counts were not reported')
    run.tables = JSON.parse(line.slice('ce-counts '.length)) as Record<string, number>
    if (/^ce-dump compression=zstd$/m.test(stderr)) run.dumpCompression = 'zstd'
    print(
      `      ${Object.keys(run.tables).length} tables, ${totalRows(run.tables)} rows; canary ${run.canary.backup_id}`,
    )
  })
  await timed(run, 'globals', () => capture(run, PARTS.globals, pgGlobals(run.data)))
}

/**
 * The physical base backup (pg_basebackup's tar), for restore to a point in time with the archived WAL
 * from its start segment on.
 */
async function captureBase(run: BackupRun): Promise<void> {
  await timed(run, 'base', async () => {
    run.base = parseBaseBackupLog(await capture(run, BASE_PART, pgBaseBackup(run.data)))
    print(
      `      cluster ${run.base.system}: replay from ${run.base.start_wal} (${run.base.start_lsn}), consistent at ${run.base.end_lsn}, ${run.base.finished_at}`,
    )
  })
}

export async function snapshotRedis(run: BackupRun): Promise<void> {
  await timed(run, 'redis', async () => {
    const stderr = await capture(run, PARTS.redis, redisSnapshot(run.data))
    const m = stderr.match(/^ce-redis aof=(\w+) keys=(\d+)$/m)
    if (!m) throw new IntegrityError('the Redis snapshot finished but its key count was not reported')
    run.redis = { aof: m[1] === 'yes', keys: Number(m[2]) }
    print(`      redis: ${run.redis.keys} keys, AOF ${run.redis.aof ? 'on (saved too)' : 'off'}`)
  })
}

export async function archiveConfig(run: BackupRun): Promise<void> {
  const includeSecrets = run.env.backup?.includeSecrets ?? false
  await timed(run, 'config', () => capture(run, PARTS.config, configTar(run.env.name, includeSecrets)))
}

export function buildManifest(run: BackupRun): Manifest {
  return {
    format: MANIFEST_FORMAT,
    env: run.env.name,
    id: run.id,
    host: run.host.name,
    created_at: new Date().toISOString(),
    release: run.release,
    key_id: run.keyring.current.id,
    reason: run.reason,
    parts: run.parts,
    postgres: {
      database: run.data.db,
      tables: run.tables,
      rows: totalRows(run.tables),
      canary: run.canary,
      ...(run.dumpCompression ? { compression: run.dumpCompression } : {}),
    },
    redis: run.redis,
    ...(run.base ? { base: run.base } : {}),
    secrets_included: run.env.backup?.includeSecrets ?? false,
    timings_s: run.timings,
  }
}

export async function writeManifest(run: BackupRun): Promise<void> {
  const key = manifestKey(run.env.name, run.id)
  const sealed = encryptBuffer(run.keyring, Buffer.from(JSON.stringify(buildManifest(run), null, 2)), {
    context: key,
  })
  await run.store.put(key, sealed)
  run.manifestBytes = sealed.length
}

/** Reads every object back from the store and checks every tag and SHA-256 against the manifest. */
export async function readBack(run: BackupRun): Promise<void> {
  await timed(run, 'verify', async () => {
    const key = manifestKey(run.env.name, run.id)
    const sealed = await readObject(run.store, key)
    const manifest = JSON.parse(
      decryptBuffer(run.keyring, sealed, { label: 'manifest', context: key }).toString(),
    )
    if (manifest.id !== run.id) throw new IntegrityError(`the manifest read back names backup ${manifest.id}`)
    for (const [part, info] of Object.entries(run.parts)) {
      const plain = hashingStream()
      const stored = countingStream()
      const key = partKey(run.env.name, run.id, part)
      await pipeline(
        await run.store.get(key),
        stored,
        decryptStream(run.keyring, { label: part, context: key }),
        plain,
        new Writable({ write: (_c, _e, done) => done() }),
      )
      const got = plain.digest()
      if (got.sha256 !== info.sha256 || got.bytes !== info.bytes || stored.bytes() !== info.stored_bytes)
        throw new IntegrityError(
          `${part} read back from ${run.store.description} differs from what was uploaded`,
        )
    }
    print(
      `      read back ${Object.keys(run.parts).length} parts and the manifest: every tag and SHA-256 matches`,
    )
  })
}

/** The COMPLETE marker, last: from now on this backup can be "latest". */
export async function complete(run: BackupRun): Promise<void> {
  await markComplete(
    run.store,
    run.env.name,
    run.id,
    {
      parts: Object.fromEntries(Object.entries(run.parts).map(([p, i]) => [p, i.stored_bytes])),
      manifest_bytes: run.manifestBytes,
    },
    run.keyring,
  )
  run.completed = true
  print(`      backup ${run.id} complete in ${run.store.description}`)
}

/** Removes what a failed backup uploaded (it never had a COMPLETE marker, so it was never "latest"). */
export async function discardIncomplete(run: BackupRun): Promise<void> {
  if (run.completed) return
  const objects = await run.store.list(`${run.env.name}/${run.id}/`)
  await run.store.delete(objects.map((o) => o.key))
}

/** Every phase in order: for restore's safety backup and deploy's pre-migration backup. */
export async function takeBackup(ctx: Context, host: HostSession, reason: string): Promise<BackupRun> {
  const run = await startBackup(ctx, host, openBackupTarget(ctx), reason)
  try {
    await dumpPostgres(run)
    await snapshotRedis(run)
    await archiveConfig(run)
    await writeManifest(run)
    await readBack(run)
    await complete(run)
    return run
  } finally {
    await discardIncomplete(run).catch(() => {})
  }
}

function mb(bytes: number): string {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / 1048576).toFixed(1)} MB`
}

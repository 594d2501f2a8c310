/**
 * The manifest: what a backup holds and how to check it, stored encrypted (so authenticated) next to
 * the parts. Restore believes nothing that the manifest does not vouch for.
 */
import type { Compression } from '../commands/backup.ts'
import type { BaseInfo } from './base-backup.ts'

export const MANIFEST_FORMAT = 1

export interface PartInfo {
  /** Plaintext size and SHA-256: checked again after decryption on restore. */
  bytes: number
  sha256: string
  /** Size of the encrypted object in the store. */
  stored_bytes: number
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT
  env: string
  id: string
  host: string
  created_at: string
  /** The release that was live when the backup was taken (its history is in config.tar). */
  release: string | null
  key_id: string
  /** Why it was taken: scheduled/manual, pre-restore, pre-migration. */
  reason: string
  parts: Record<string, PartInfo>
  postgres: {
    database: string
    /** Exact rows per table, counted in the dump's own snapshot. */
    tables: Record<string, number>
    rows: number
    canary: { backup_id: string; token: string }
    /**
     * zstd: the dump part is an uncompressed custom-format dump compressed with zstd on the host. Absent:
     * pg_dump compressed its data itself (gzip), as every backup before zstd.
     */
    compression?: Compression
  }
  redis: { aof: boolean; keys: number }
  /** The physical base backup (part postgres.base.tar), when the env archives WAL: for restore AT=. */
  base?: BaseInfo
  secrets_included: boolean
  timings_s: Record<string, number>
}

export const PARTS = {
  postgres: 'postgres.dump',
  globals: 'globals.sql',
  redis: 'redis.tar',
  config: 'config.tar',
} as const

/** Parses a decrypted manifest, refusing anything that is not one this code understands. */
export function parseManifest(text: string, label: string): Manifest {
  let m: Manifest
  try {
    m = JSON.parse(text) as Manifest
  } catch {
    throw new Error(`${label}: the manifest is not JSON`)
  }
  if (m.format !== MANIFEST_FORMAT)
    throw new Error(
      `${label}: manifest format ${m.format} is not supported (this runbook reads ${MANIFEST_FORMAT})`,
    )
  for (const part of Object.values(PARTS))
    if (!m.parts?.[part]) throw new Error(`${label}: the manifest lists no ${part}`)
  // A compression this code cannot unpack is refused here, not half way through a restore.
  const compressions: [string, unknown, readonly unknown[]][] = [
    ['postgres.compression', m.postgres?.compression, [undefined, 'zstd']],
    ['base.compression', m.base?.compression, [undefined, 'gzip', 'zstd']],
  ]
  for (const [field, value, known] of compressions)
    if (!known.includes(value))
      throw new Error(
        `${label}: the manifest's ${field} is ${JSON.stringify(value)}, which this runbook cannot unpack (update this repository)`,
      )
  return m
}

export function totalRows(tables: Record<string, number>): number {
  return Object.values(tables).reduce((a, b) => a + b, 0)
}

/** Differences between the manifest's row counts and a restored database's, one line each. */
export function compareCounts(expected: Record<string, number>, actual: Record<string, number>): string[] {
  const names = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort()
  return names
    .filter((n) => expected[n] !== actual[n])
    .map(
      (n) =>
        `${n}: backup has ${expected[n] ?? 'no such table'}, restored has ${actual[n] ?? 'no such table'}`,
    )
}

import type { BaseInfo } from './base-backup.ts'
import type { ArchivedWal } from './wal-archive.ts'

/** A restore to a point in time (AT=): what lib/backup/pitr.ts chose and what replay reached. */
export interface PitrPlan {
  /** An ISO time (UTC), or 'latest': every archived segment. */
  target: string
  base: BaseInfo
  /** The segments (and timeline history files) to replay, in order. */
  wal: ArchivedWal[]
  /** describeGaps of the chain after the base, when a hole cut it short ('' otherwise). */
  gap: string
  /** What replay reached: the last transaction's commit time (set once the server promoted). */
  replayedTo?: string
  /** Rows in the recovered database, as copied into scratch and counted. */
  rows?: number
  /** Those rows per table (make emergency verifies the live database against them). */
  tables?: Record<string, number>
  /** A restore drill: the canary rows are checked around the target (lib/backup/pitr-drill.ts). */
  drill?: boolean
  /** The newest canary row the recovered database holds (a drill's check found it). */
  canary?: string
}

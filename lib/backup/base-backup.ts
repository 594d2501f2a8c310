/**
 * The physical base backup a backup carries when the env archives WAL (make backup): pg_basebackup's
 * tar (with the WAL it needs to be consistent, -X fetch), sealed and stored as one more part beside the
 * dump. With the archived WAL of its cluster from `start_wal` on, it is what `make restore AT=<time>`
 * replays to a point in time. Kept and pruned with its backup, so base backups and WAL are one chain.
 * Pure: parsing pg_basebackup's report, LSN arithmetic. Unit tested.
 */
import type { Compression } from '../commands/backup.ts'
import { IntegrityError } from '../report/errors.ts'
import { segmentName, segmentsPerLog } from './wal-chain.ts'

export const BASE_PART = 'postgres.base.tar'

export interface BaseInfo {
  /** The cluster's system identifier (decimal): its WAL is under wal/<env>/<system>/. */
  system: string
  timeline: number
  /** Where replay starts (the checkpoint's redo point) and the segment holding it. */
  start_lsn: string
  start_wal: string
  /** Where the backup is consistent: a restore can stop at any point after it. */
  end_lsn: string
  /** The host's clock when pg_basebackup finished: a restore to a time after it can use this base. */
  finished_at: string
  /** How the tar is compressed (bases taken before compression are plain tars). */
  compression?: Compression
  /** The databases' size when it was taken: what the data directory unpacks to, about. */
  data_bytes?: number
}

const LSN = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i

/** An LSN (`16/B374D848`) as a 64-bit number; RangeError on anything else. */
export function parseLsn(lsn: string): bigint {
  const m = LSN.exec(lsn)
  if (!m) throw new RangeError(`not a WAL location (LSN): ${JSON.stringify(lsn)}`)
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`)
}

/** The name of the segment holding `lsn` on `timeline` (16 MiB segments unless told). */
export function walSegmentOf(timeline: number, lsn: string, segmentBytes = 16 * 1024 * 1024): string {
  const perLog = segmentsPerLog(segmentBytes)
  const value = parseLsn(lsn)
  const log = Number(value >> 32n)
  const seg = Number((value & 0xffffffffn) / BigInt(segmentBytes))
  if (seg >= perLog) throw new RangeError(`${lsn}: segment ${seg} past the log's ${perLog}`)
  return segmentName(timeline, log, seg)
}

/**
 * BaseInfo from the base backup command's stderr: pg_basebackup -v's start and end points, and the
 * `ce-base system=` and `ce-base finished=` lines pgBaseBackup() adds. Missing lines: IntegrityError
 * (a base we cannot place in its chain is no use for a restore).
 */
export function parseBaseBackupLog(stderr: string): BaseInfo {
  const start = /write-ahead log start point: ([0-9A-F]+\/[0-9A-F]+) on timeline (\d+)/i.exec(stderr)
  const end = /write-ahead log end point: ([0-9A-F]+\/[0-9A-F]+)/i.exec(stderr)
  const system = /^ce-base system=(\d{1,20})$/m.exec(stderr)
  const finished = /^ce-base finished=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$/m.exec(stderr)
  const missing = [
    !start && 'its start point',
    !end && 'its end point',
    !system && "the cluster's system identifier",
    !finished && 'when it finished',
  ].filter(Boolean)
  if (!start || !end || !system || !finished)
    throw new IntegrityError(`the base backup finished but did not report ${missing.join(', ')}`)
  const packed = /^ce-base size=(\d+) compression=(gzip|zstd)$/m.exec(stderr)
  const timeline = Number(start[2])
  const startLsn = (start[1] as string).toUpperCase()
  return {
    system: system[1] as string,
    timeline,
    start_lsn: startLsn,
    start_wal: walSegmentOf(timeline, startLsn),
    end_lsn: (end[1] as string).toUpperCase(),
    finished_at: finished[1] as string,
    ...(packed ? { compression: packed[2] as Compression, data_bytes: Number(packed[1]) } : {}),
  }
}

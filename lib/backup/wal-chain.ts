/**
 * PostgreSQL WAL segment names and the continuity of an archived chain of them. Pure, unit tested.
 * A segment name is 24 hex digits: 8 timeline, 8 log (high 32 bits), 8 seg (the segment within the log).
 */

/** One WAL segment, parsed from its 24-hex-digit name (kept uppercase in `name`). */
export interface Segment {
  timeline: number
  log: number
  seg: number
  name: string
}

/** A hole: `missing` segments between `after` and `before` (present, or `after` precedes `from`). */
export interface ChainGap {
  after: string
  before: string
  missing: number
}

/** checkChain's findings: the highest timeline's first, last, count and holes; every timeline seen. */
export interface ChainReport {
  first?: string
  last?: string
  count: number
  gaps: ChainGap[]
  timelines: number[]
}

const SEGMENT_NAME = /^[0-9A-F]{24}$/i
const MAX_U32 = 0xffffffff

/** The segment a plain 24-hex-digit name stands for; undefined for .partial, .backup, .history, etc. */
export function parseSegment(name: string): Segment | undefined {
  if (!SEGMENT_NAME.test(name)) return undefined
  const upper = name.toUpperCase()
  const part = (i: number) => Number.parseInt(upper.slice(i * 8, i * 8 + 8), 16)
  return { timeline: part(0), log: part(1), seg: part(2), name: upper }
}

/** The uppercase 24-hex-digit name of a segment; throws RangeError on a part that is not a 32-bit unsigned integer. */
export function segmentName(timeline: number, log: number, seg: number): string {
  return [timeline, log, seg]
    .map((n) => {
      if (!Number.isInteger(n) || n < 0 || n > MAX_U32)
        throw new RangeError(`not a 32-bit WAL name part: ${n}`)
      return n.toString(16).toUpperCase().padStart(8, '0')
    })
    .join('')
}

/** Segments per log (0x100000000 / segmentBytes); segmentBytes must be a power of two from 1 MiB to 1 GiB. */
export function segmentsPerLog(segmentBytes = 16 * 1024 * 1024): number {
  const ok =
    Number.isInteger(segmentBytes) &&
    segmentBytes >= 1024 * 1024 &&
    segmentBytes <= 1024 * 1024 * 1024 &&
    (segmentBytes & (segmentBytes - 1)) === 0
  if (!ok)
    throw new RangeError(`WAL segment size must be a power of two from 1 MiB to 1 GiB, not ${segmentBytes}`)
  return 0x100000000 / segmentBytes
}

/** The segment after `s` on the same timeline: seg + 1, or the next log's segment 0 after the log's last one. */
export function nextSegment(s: Segment, perLog = 256): Segment {
  return segmentAt(s.timeline, segmentIndex(s, perLog) + 1, perLog)
}

/** The segment's position on its timeline (log * perLog + seg), for ordering and counting. */
export function segmentIndex(s: Segment, perLog = 256): number {
  return s.log * perLog + s.seg
}

/** The segment at `index` on `timeline`; the inverse of segmentIndex. */
function segmentAt(timeline: number, index: number, perLog: number): Segment {
  const log = Math.floor(index / perLog)
  const seg = index % perLog
  return { timeline, log, seg, name: segmentName(timeline, log, seg) }
}

/**
 * The continuity of the highest timeline's segments among `names` (unparseable names ignored, duplicates
 * counted once; a switch to a new timeline is not a gap). With `from`, segments before it are ignored and the
 * chain must start at it: a first present segment after `from` is a gap whose `after` is the segment before
 * `from` ('' when `from` is the very first segment). That start check applies only when `from` is on the
 * highest timeline (an older `from` may be continued on an older timeline). Throws RangeError on a bad `from`.
 */
export function checkChain(names: string[], opts: { from?: string; perLog?: number } = {}): ChainReport {
  const perLog = opts.perLog ?? 256
  const from = opts.from === undefined ? undefined : parseSegment(opts.from)
  if (opts.from !== undefined && (!from || from.seg >= perLog))
    throw new RangeError(`from is not a WAL segment name: ${opts.from}`)

  const segments = names.map(parseSegment).filter((s): s is Segment => s !== undefined && s.seg < perLog)
  const timelines = [...new Set(segments.map((s) => s.timeline))].sort((a, b) => a - b)
  const top = timelines.at(-1)
  const fromIndex = from ? segmentIndex(from, perLog) : Number.NEGATIVE_INFINITY
  const indexes = [
    ...new Set(
      segments
        .filter((s) => s.timeline === top)
        .map((s) => segmentIndex(s, perLog))
        .filter((i) => i >= fromIndex),
    ),
  ].sort((a, b) => a - b)

  const first = indexes[0]
  const last = indexes.at(-1)
  if (top === undefined || first === undefined || last === undefined) return { count: 0, gaps: [], timelines }

  const name = (i: number) => segmentAt(top, i, perLog).name
  const gaps: ChainGap[] = []
  if (from && from.timeline === top && first > fromIndex)
    gaps.push({
      after: fromIndex === 0 ? '' : name(fromIndex - 1),
      before: name(first),
      missing: first - fromIndex,
    })
  for (let k = 1; k < indexes.length; k++) {
    const a = indexes[k - 1] as number
    const b = indexes[k] as number
    if (b - a > 1) gaps.push({ after: name(a), before: name(b), missing: b - a - 1 })
  }
  return { first: name(first), last: name(last), count: indexes.length, gaps, timelines }
}

/** One human line for the report's gaps (at most `max` listed, then `and N more`); '' when there is none. */
export function describeGaps(report: ChainReport, max = 3): string {
  const { gaps } = report
  if (gaps.length === 0) return ''
  const missing = gaps.reduce((sum, g) => sum + g.missing, 0)
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`
  const listed = gaps
    .slice(0, Math.max(0, max))
    .map((g) => (g.after ? `after ${g.after} up to ${g.before}` : `up to ${g.before}`))
  const more = gaps.length - listed.length
  if (more > 0) listed.push(`and ${more} more`)
  return `${plural(gaps.length, 'gap')} (${plural(missing, 'segment')} missing): ${listed.join('; ')}`
}

// The health history: one JSON line per check result, appended on each host every minute by the
// watchdog and by `make health`, in /var/log/conciliaextrato/health/<env>.jsonl:
//   {"at":"<ISO 8601>","source":"watchdog"|"health","host":"<hostname>","check":"http:<domain>"|...,
//    "ok":true|false,"ms":<number, http checks only>,"detail":"..."}
// Pure: text in, probes out. A line may be malformed or cut short (a crash mid-write): it is skipped
// and counted, never fatal.

export interface Probe {
  /** Milliseconds since the Unix epoch. */
  at: number
  source: string
  host: string
  check: string
  ok: boolean
  /** Response time (http checks only). */
  ms?: number
  detail?: string
}

export interface History {
  probes: Probe[]
  /** JSON lines read (blank lines and the reader's `#file`/`#unreadable` markers excluded). */
  lines: number
  /** Lines skipped: not JSON, cut short, or missing/invalid `at`, `check` or `ok`. */
  malformed: number
  /**
   * Clock jumps back: lines stamped earlier than the previous valid line of the same file by more than
   * the tolerance (a clock set back, or a late writer). Counted, then handled like any line: probes
   * are sorted by time, so the result does not depend on the order lines were written in.
   */
  clockBackwards: number
  /** Files the host could not read (the reader's `#unreadable <path>` lines). */
  unreadable: string[]
}

/** Two writers (watchdog, `make health`) may stamp lines a little out of order: not a clock change. */
export const CLOCK_TOLERANCE_S = 120

// A time zone is required: without one, the same text is a different instant on each machine.
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/

export interface ParseOptions {
  /** Host name for lines that carry none (the host the file was read from). */
  host?: string
  clockToleranceS?: number
}

/**
 * Parses history text (one or more files; the reader puts `#file <path>` before each, which resets
 * the clock-jump detection) into probes in file order.
 */
export function parseHistory(text: string, options: ParseOptions = {}): History {
  const toleranceMs = (options.clockToleranceS ?? CLOCK_TOLERANCE_S) * 1000
  const out: History = { probes: [], lines: 0, malformed: 0, clockBackwards: 0, unreadable: [] }
  let previous: number | undefined
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line) continue
    if (line.startsWith('#file ')) {
      previous = undefined
      continue
    }
    if (line.startsWith('#unreadable ')) {
      out.unreadable.push(line.slice('#unreadable '.length))
      continue
    }
    out.lines++
    const probe = parseLine(line, options.host ?? '')
    if (!probe) {
      out.malformed++
      continue
    }
    if (previous !== undefined && probe.at < previous - toleranceMs) out.clockBackwards++
    previous = probe.at
    out.probes.push(probe)
  }
  return out
}

function parseLine(line: string, defaultHost: string): Probe | undefined {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return undefined
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined
  const o = value as Record<string, unknown>
  if (typeof o.at !== 'string' || !ISO_8601.test(o.at)) return undefined
  const at = Date.parse(o.at)
  if (!Number.isFinite(at)) return undefined
  if (typeof o.check !== 'string' || !o.check || typeof o.ok !== 'boolean') return undefined
  const probe: Probe = {
    at,
    source: typeof o.source === 'string' ? o.source : '',
    host: typeof o.host === 'string' && o.host ? o.host : defaultHost,
    check: o.check,
    ok: o.ok,
  }
  if (typeof o.ms === 'number' && Number.isFinite(o.ms) && o.ms >= 0) probe.ms = o.ms
  if (typeof o.detail === 'string') probe.detail = o.detail
  return probe
}

/** Total order on probes (time first), so merging histories never depends on file or host order. */
export function compareProbes(a: Probe, b: Probe): number {
  return (
    a.at - b.at ||
    cmp(a.check, b.check) ||
    cmp(a.host, b.host) ||
    cmp(a.source, b.source) ||
    Number(a.ok) - Number(b.ok) ||
    (a.ms ?? -1) - (b.ms ?? -1) ||
    cmp(a.detail ?? '', b.detail ?? '')
  )
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/**
 * Merges the probes of several histories (hosts), sorted by time. Probes stamped later than `now` plus
 * the clock tolerance come from a clock that ran ahead: they are dropped (they would fall outside any
 * window ending now anyway) and counted per history, in the same order as `histories`.
 */
export function mergeHistories(
  histories: History[],
  now: number,
  clockToleranceS = CLOCK_TOLERANCE_S,
): { probes: Probe[]; future: number[] } {
  const limit = now + clockToleranceS * 1000
  const future = histories.map((h) => h.probes.filter((p) => p.at > limit).length)
  const probes = histories.flatMap((h) => h.probes.filter((p) => p.at <= limit)).sort(compareProbes)
  return { probes, future }
}

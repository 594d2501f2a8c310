import type { AuditRecord } from '../run/audit.ts'
import { RUNS_DIR, recordsPrefix } from '../store/record-keys.ts'
import { type BackupStore, readObject } from '../store/store.ts'

// The runs' audit records as the env's backup store keeps them (lib/store/record-keys.ts): one object per
// run (the step runner's), and whole audit files (make ship-records, at the end of every workflow), so a
// run is often there twice: counted once (same runbook, start, person and env).

export interface ReadRecords {
  records: AuditRecord[]
  objects: number
  /** Lines that are not an audit record (a truncated copy, another file): counted, never fatal. */
  malformed: number
}

/** Whether a key under records/<env>/ may hold records of these months (YYYY-MM). */
export function keyMayHold(key: string, env: string, months: readonly string[]): boolean {
  const rest = key.slice(recordsPrefix(env).length)
  const [first = '', second = ''] = rest.split('/')
  if (first === RUNS_DIR) return months.includes(second) && key.endsWith('.json')
  // records/<env>/<YYYY-MM-DD>/<run>/audit/<file>: a machine's audit file holds its earlier runs too, so a
  // copy made in or after the first month may hold any of them.
  return (
    /^\d{4}-\d{2}-\d{2}$/.test(first) &&
    rest.includes('/audit/') &&
    first.slice(0, 7) >= ([...months].sort()[0] ?? '')
  )
}

export function parseRecords(text: string): { records: AuditRecord[]; malformed: number } {
  const records: AuditRecord[] = []
  let malformed = 0
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    try {
      const r = JSON.parse(line) as AuditRecord
      if (typeof r.runbook === 'string' && typeof r.ended_at === 'string' && typeof r.started_at === 'string')
        records.push(r)
      else malformed++
    } catch {
      malformed++
    }
  }
  return { records, malformed }
}

export function dedupe(records: readonly AuditRecord[]): AuditRecord[] {
  const seen = new Map<string, AuditRecord>()
  for (const r of records) seen.set(`${r.env}|${r.runbook}|${r.started_at}|${r.who}`, r)
  return [...seen.values()]
}

export async function readRecords(
  store: BackupStore,
  env: string,
  months: readonly string[],
): Promise<ReadRecords> {
  const keys = (await store.list(recordsPrefix(env))).filter((o) => keyMayHold(o.key, env, months))
  const all: AuditRecord[] = []
  let malformed = 0
  for (const { key } of keys) {
    const parsed = parseRecords((await readObject(store, key)).toString('utf8'))
    all.push(...parsed.records)
    malformed += parsed.malformed
  }
  return { records: dedupe(all), objects: keys.length, malformed }
}

import { ident } from './masking.ts'

// make rehearse-migration's verdict: the scratch copy before and after the release's migrations. Pure.

export interface Constraint {
  table: string
  name: string
  /** p primary key, f foreign key, u unique, c check, x exclusion, n not null (Postgres 17+). */
  type: string
  validated: boolean
}

export function parseConstraints(out: string): Constraint[] {
  return out
    .split('\n')
    .filter((l) => l.includes('\t'))
    .map((l) => {
      const [table = '', name = '', type = '', validated = ''] = l.split('\t')
      return { table, name, type, validated: validated === 't' }
    })
}

export interface Comparison {
  rows_before: number
  rows_after: number
  /** Tables that lost rows or went away: data loss unless the release says so. */
  lost: string[]
  /** Constraints the migrations dropped (named: a review point, not a failure). */
  dropped: string[]
  /** Constraints the migrations added or changed. */
  added: string[]
  /** Constraints left NOT VALID: the rehearsal validates them against the copy's data. */
  unvalidated: Constraint[]
}

const total = (c: Record<string, number>) => Object.values(c).reduce((s, n) => s + n, 0)
const key = (c: Constraint) => `${c.table}.${c.name} (${c.type})`

export function compareCopies(
  before: { counts: Record<string, number>; constraints: Constraint[] },
  after: { counts: Record<string, number>; constraints: Constraint[] },
): Comparison {
  const lost = Object.entries(before.counts).flatMap(([table, n]) => {
    const now = after.counts[table]
    if (now === undefined) return [`${table} is gone (it held ${n} rows)`]
    return now < n ? [`${table} lost ${n - now} of ${n} rows`] : []
  })
  const was = new Set(before.constraints.map(key))
  const is = new Set(after.constraints.map(key))
  return {
    rows_before: total(before.counts),
    rows_after: total(after.counts),
    lost,
    dropped: [...was].filter((k) => !is.has(k)),
    added: [...is].filter((k) => !was.has(k)),
    unvalidated: after.constraints.filter((c) => !c.validated),
  }
}

/** VALIDATE CONSTRAINT for each NOT VALID one: the copy's data must satisfy it. `table` is regclass text. */
export function validateSql(constraints: readonly Constraint[]): string {
  return constraints.map((c) => `ALTER TABLE ${c.table} VALIDATE CONSTRAINT ${ident(c.name)};`).join('\n')
}

import type { AuditRecord } from '../run/audit.ts'

// Delivery metrics for one env and one month, from the runs' audit records (make report). Pure.
// - deploys: deploy runs that ran (not a dry run, not refused input) and ended in the month;
//   success_rate: the share that succeeded.
// - lead time: a successful deploy's end minus its commit's time (COMMITTED_AT=, which CI passes).
// - change failure rate: the share of successful deploys that a rollback undid before the next
//   successful deploy (an emergency replaces a lost droplet: not a change that failed).
// - time to restore (mttr_s): per successful rollback or emergency in the month, from the start of
//   the failure to the end of the run that restored service. The failure starts when the undone
//   release went live (a rollback), or when the emergency began (the droplet's loss is not in the
//   records): an upper bound for a rollback, a lower one for an emergency.
// - time spent: the runs' durations added up, per runbook (time tracking of deployment work).

export interface DeployRow {
  ended_at: string
  release: string | null
  who: string
  outcome: AuditRecord['outcome']
  duration_s: number
  lead_time_s: number | null
  undone_by: string | null
}

export interface RestoreRow {
  runbook: string
  release: string | null
  failure_started_at: string
  restored_at: string
  restore_s: number
}

export interface DeliveryMetrics {
  env: string
  month: string
  deploys: number
  deploys_ok: number
  success_rate: number | null
  lead_time_p50_s: number | null
  lead_time_p90_s: number | null
  change_failures: number
  change_failure_rate: number | null
  rollbacks: number
  emergencies: number
  restores: number
  mttr_s: number | null
  time_by_runbook: Record<string, { runs: number; seconds: number }>
  deploy_rows: DeployRow[]
  restore_rows: RestoreRow[]
}

const UNDO = new Set(['rollback', 'emergency'])

/** 2026-11 -> [start, end) in ms, UTC. */
export function monthWindow(month: string): { from: number; to: number } {
  const m = /^(\d{4})-(\d{2})$/.exec(month)
  if (!m) throw new Error(`month ${month}: expected YYYY-MM`)
  const y = Number(m[1])
  const mo = Number(m[2])
  return { from: Date.UTC(y, mo - 1, 1), to: Date.UTC(y, mo, 1) }
}

export function previousMonth(month: string): string {
  const { from } = monthWindow(month)
  return new Date(from - 1).toISOString().slice(0, 7)
}

/**
 * The records that count: runs of this env that ran (no dry run, no refused input) and were not part of
 * another run (an emergency's deploy is the emergency's), oldest first.
 */
export function ranRecords(records: readonly AuditRecord[], env: string): AuditRecord[] {
  return records
    .filter(
      (r) =>
        r.env === env && !r.within && !r.dry_run && r.outcome !== 'dry-run' && r.outcome !== 'invalid-input',
    )
    .sort((a, b) => a.ended_at.localeCompare(b.ended_at))
}

/** The nearest-rank percentile (p in 0..100) of the values; null for none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[rank - 1] as number
}

const ms = (iso: string) => Date.parse(iso)
const round1 = (n: number) => Math.round(n * 10) / 10
const ratio = (a: number, b: number) => (b === 0 ? null : Math.round((a / b) * 1000) / 1000)

function leadTime(r: AuditRecord): number | null {
  const committed = r.args['committed-at']
  if (typeof committed !== 'string' || Number.isNaN(ms(committed))) return null
  const s = (ms(r.ended_at) - ms(committed)) / 1000
  return s >= 0 ? round1(s) : null
}

export function deliveryMetrics(
  records: readonly AuditRecord[],
  env: string,
  month: string,
): DeliveryMetrics {
  const { from, to } = monthWindow(month)
  const inMonth = (r: AuditRecord) => ms(r.ended_at) >= from && ms(r.ended_at) < to
  // Every run of the env, also before the month: a rollback early in it may undo a deploy of the last.
  const ran = ranRecords(records, env)
  const okDeploys = ran.filter((r) => r.runbook === 'deploy' && r.outcome === 'success')
  const undos = ran.filter((r) => UNDO.has(r.runbook) && r.outcome === 'success')
  const rollbacks = undos.filter((r) => r.runbook === 'rollback')

  /** The rollback that undid a deploy: the first after it and before the next good deploy. */
  const undoneBy = (d: AuditRecord): AuditRecord | undefined => {
    const next = okDeploys.find((o) => ms(o.ended_at) > ms(d.ended_at))
    return rollbacks.find(
      (u) => ms(u.started_at) >= ms(d.ended_at) && (!next || ms(u.started_at) < ms(next.ended_at)),
    )
  }

  const deploys = ran.filter((r) => r.runbook === 'deploy' && inMonth(r))
  const deployRows: DeployRow[] = deploys.map((d) => {
    const undo = d.outcome === 'success' ? undoneBy(d) : undefined
    return {
      ended_at: d.ended_at,
      release: d.release,
      who: d.who,
      outcome: d.outcome,
      duration_s: d.duration_s,
      lead_time_s: d.outcome === 'success' ? leadTime(d) : null,
      undone_by: undo ? `${undo.runbook} ${undo.ended_at}` : null,
    }
  })
  const ok = deployRows.filter((d) => d.outcome === 'success')
  const leads = ok.flatMap((d) => (d.lead_time_s === null ? [] : [d.lead_time_s]))
  const failures = ok.filter((d) => d.undone_by !== null).length

  const restoreRows: RestoreRow[] = undos.filter(inMonth).map((u) => {
    const bad =
      u.runbook === 'rollback'
        ? [...okDeploys].reverse().find((d) => ms(d.ended_at) <= ms(u.started_at))
        : undefined
    const start = bad ? bad.ended_at : u.started_at
    return {
      runbook: u.runbook,
      release: bad?.release ?? u.release,
      failure_started_at: start,
      restored_at: u.ended_at,
      restore_s: round1((ms(u.ended_at) - ms(start)) / 1000),
    }
  })

  const time: Record<string, { runs: number; seconds: number }> = {}
  for (const r of ran.filter(inMonth)) {
    const t = time[r.runbook] ?? { runs: 0, seconds: 0 }
    time[r.runbook] = t
    t.runs += 1
    t.seconds = round1(t.seconds + r.duration_s)
  }

  const mttr = restoreRows.length
    ? round1(restoreRows.reduce((s, r) => s + r.restore_s, 0) / restoreRows.length)
    : null
  return {
    env,
    month,
    deploys: deploys.length,
    deploys_ok: ok.length,
    success_rate: ratio(ok.length, deploys.length),
    lead_time_p50_s: percentile(leads, 50),
    lead_time_p90_s: percentile(leads, 90),
    change_failures: failures,
    change_failure_rate: ratio(failures, ok.length),
    rollbacks: restoreRows.filter((r) => r.runbook === 'rollback').length,
    emergencies: restoreRows.filter((r) => r.runbook === 'emergency').length,
    restores: ran.filter(
      (r) => r.runbook === 'restore' && r.outcome === 'success' && r.args.drill !== true && inMonth(r),
    ).length,
    mttr_s: mttr,
    time_by_runbook: time,
    deploy_rows: deployRows,
    restore_rows: restoreRows,
  }
}

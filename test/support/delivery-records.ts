import type { IncidentEvent } from '../../lib/incident/model.ts'
import type { AuditRecord } from '../../lib/run/audit.ts'

/** An incident's event as make incident writes it (env ci, by ana; recorded when it happened). */
export function incidentEvent(
  id: string,
  kind: IncidentEvent['kind'],
  at: string,
  more: Partial<IncidentEvent> = {},
): IncidentEvent {
  return { id, env: 'ci', kind, at, recorded_at: at, who: 'ana', text: kind, ...more }
}

/** An audit record as the step runner writes it, for env `env`: a run of `runbook` ending at `ended`. */
export function auditRecord(
  env: string,
  runbook: string,
  ended: string,
  durationS: number,
  more: Partial<AuditRecord> = {},
): AuditRecord {
  const end = Date.parse(ended)
  return {
    ts: ended,
    who: 'ana',
    runbook,
    env,
    args: {},
    release: null,
    started_at: new Date(end - durationS * 1000).toISOString(),
    ended_at: new Date(end).toISOString(),
    duration_s: durationS,
    outcome: 'success',
    failed_step: null,
    error: null,
    hosts: ['qa-1'],
    dry_run: false,
    ci_run_url: null,
    ...more,
  }
}

/**
 * The month the must-show counts (2026-11): 20 deploys (the 7th failed), each committed 30 min + i min
 * before it went live; a rollback an hour after the 12th; an emergency whose deploy runs inside it; a dry
 * run, a refused one, and a deploy of another env. Expected: 20 deploys, success 0.95, lead p50 2400 s,
 * change failure 1/19, time to restore 3660 s.
 */
export function novemberRecords(env: string): AuditRecord[] {
  const out: AuditRecord[] = []
  for (let i = 0; i < 20; i++) {
    const ended = `2026-11-${String(i + 1).padStart(2, '0')}T10:00:00.000Z`
    const committed = new Date(Date.parse(ended) - (1800 + 60 * i) * 1000).toISOString()
    out.push(
      auditRecord(env, 'deploy', ended, 120, {
        release: `v${i + 1}`,
        args: { env, release: `v${i + 1}`, 'committed-at': committed },
        ...(i === 6
          ? { outcome: 'failed' as const, failed_step: 'Health gate', error: 'api unhealthy' }
          : {}),
      }),
    )
  }
  // An hour after v12 went live (2026-11-12T10:00Z), a 60 s rollback.
  out.push(auditRecord(env, 'rollback', '2026-11-12T11:01:00.000Z', 60, { release: 'v11' }))
  // An emergency on the 25th (600 s), with the deploy it ran inside it: not a deploy of its own.
  out.push(auditRecord(env, 'emergency', '2026-11-25T03:10:00.000Z', 600))
  out.push(
    auditRecord(env, 'deploy', '2026-11-25T03:08:00.000Z', 90, { within: 'emergency', release: 'v20' }),
  )
  out.push(auditRecord(env, 'deploy', '2026-11-26T10:00:00.000Z', 5, { dry_run: true, outcome: 'dry-run' }))
  out.push(auditRecord(env, 'deploy', '2026-11-26T10:01:00.000Z', 0, { outcome: 'invalid-input' }))
  out.push(auditRecord('other', 'deploy', '2026-11-26T10:02:00.000Z', 100))
  return out
}

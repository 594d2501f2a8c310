/** One health check's verdict: the word health's checks, its swarm checks and its report share. */
export interface HealthResult {
  check: string
  target: string
  /** null: not applicable here (said why in `value`), never counted as passed. */
  ok: boolean | null
  value: string
  limit: string
  runbook: string
}

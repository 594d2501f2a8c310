import { appendFileSync, mkdirSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join, resolve } from 'node:path'
import { runLocalSync } from '../host/local-run.ts'
import { redactDeep } from '../report/redact.ts'

/** Local audit trail of this machine's runs (AUDIT_DIR overrides, read at each write). */
export function auditDir(): string {
  return resolve(process.env.AUDIT_DIR ?? resolve(import.meta.dirname, '..', '..', '.audit'))
}

export type Outcome = 'success' | 'failed' | 'invalid-input' | 'interrupted' | 'dry-run'

export interface AuditRecord {
  ts: string
  who: string
  runbook: string
  env: string
  args: Record<string, string | boolean>
  release: string | null
  started_at: string
  ended_at: string
  duration_s: number
  outcome: Outcome
  failed_step: string | null
  error: string | null
  hosts: string[]
  dry_run: boolean
  ci_run_url: string | null
  /** What the run did that an auditor asks about (a swarm join token read and used); never a secret. */
  events?: string[]
  /** The override file that pointed the env at other machines (CE_ENV_OVERRIDE), if one did. */
  env_override?: string
  /** The runbook this run was part of (emergency's deploy, restore...): make report counts the outer one only. */
  within?: string
}

/** Who is running this: the CI actor, else the git user, else the login name. */
export function whoAmI(source: NodeJS.ProcessEnv = process.env): string {
  if (source.GITHUB_ACTOR) return `${source.GITHUB_ACTOR} (github actions)`
  // No git, or no user.name: the login name.
  const name = runLocalSync(['git', 'config', 'user.name']).stdout.trim()
  if (name) return name
  return source.USER || userInfo().username
}

export function ciRunUrl(source: NodeJS.ProcessEnv = process.env): string | null {
  const { GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_RUN_ID } = source
  return GITHUB_SERVER_URL && GITHUB_REPOSITORY && GITHUB_RUN_ID
    ? `${GITHUB_SERVER_URL}/${GITHUB_REPOSITORY}/actions/runs/${GITHUB_RUN_ID}`
    : null
}

/** The audit line, redacted: secrets never reach an audit record. */
export function auditLine(record: AuditRecord): string {
  return JSON.stringify(redactDeep(record))
}

export function appendLocalAudit(line: string, dir = auditDir()): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const file = join(dir, 'audit.jsonl')
  appendFileSync(file, `${line}\n`, { mode: 0o600 })
  return file
}

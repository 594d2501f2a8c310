import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Env } from '../../lib/env/load.ts'
import { secretsFor } from '../../lib/env/needs.ts'
import { type ParsedArgs, parseArgs } from '../../lib/run/cli.ts'
import { argvFromVars, TARGET_ALIASES } from '../../lib/run/make-vars.ts'
import type { RunbookSpec } from '../../lib/run/runbook.ts'
import { access } from '../../runbooks/access.ts'
import { alert } from '../../runbooks/alert.ts'
import { backup } from '../../runbooks/backup.ts'
import { backups } from '../../runbooks/backups.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { dns } from '../../runbooks/dns.ts'
import { emergency } from '../../runbooks/emergency.ts'
import { exec } from '../../runbooks/exec.ts'
import { health } from '../../runbooks/health.ts'
import { heartbeats } from '../../runbooks/heartbeats.ts'
import { image } from '../../runbooks/image.ts'
import { incident } from '../../runbooks/incident.ts'
import { loadtest } from '../../runbooks/loadtest.ts'
import { logs } from '../../runbooks/logs.ts'
import { maintenance } from '../../runbooks/maintenance.ts'
import { pruneBackups } from '../../runbooks/prune-backups.ts'
import { psql } from '../../runbooks/psql.ts'
import { rehearseMigration } from '../../runbooks/rehearse-migration.ts'
import { releases } from '../../runbooks/releases.ts'
import { report } from '../../runbooks/report.ts'
import { restore } from '../../runbooks/restore.ts'
import { rollback } from '../../runbooks/rollback.ts'
import { rotateSecret } from '../../runbooks/rotate-secret.ts'
import { secretsEdit } from '../../runbooks/secrets-edit.ts'
import { securityScan } from '../../runbooks/security-scan.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { status } from '../../runbooks/status.ts'
import { statusPage } from '../../runbooks/status-page.ts'
import { unlock } from '../../runbooks/unlock.ts'
import { uptime } from '../../runbooks/uptime.ts'
import { verifyServer } from '../../runbooks/verify-server.ts'

/** Every runbook that runs against an env, by its file name in runbooks/. */
export const RUNBOOKS: Record<string, RunbookSpec> = {
  access,
  alert,
  backup,
  backups,
  deploy,
  dns,
  emergency,
  exec,
  health,
  heartbeats,
  report,
  'status-page': statusPage,
  image,
  incident,
  loadtest,
  'security-scan': securityScan,
  logs,
  maintenance,
  'prune-backups': pruneBackups,
  psql,
  'rehearse-migration': rehearseMigration,
  releases,
  restore,
  rollback,
  'rotate-secret': rotateSecret,
  'secrets-edit': secretsEdit,
  'setup-server': setupServer,
  status,
  unlock,
  uptime,
  'verify-server': verifyServer,
}

const ROOT = join(import.meta.dirname, '..', '..')

/**
 * What `make <target> VAR=value...` (or runbooks/run.ts <target>) runs, as run.ts builds it: the
 * runbook the Makefile recipe names, the flags its alias adds (restore-drill: --drill) and the flags
 * the variables set (through each option's makeVar).
 */
export function makeRunbook(
  target: string,
  vars: Record<string, string>,
  makefile = readFileSync(join(ROOT, 'Makefile'), 'utf8'),
): { runbook: string; args: ParsedArgs } | undefined {
  const recipe = makefile.match(new RegExp(`^${target}:.*\\n\\t(.*)$`, 'm'))?.[1] ?? ''
  const called = recipe.match(/\$\(call RUNBOOK,([a-z-]+)\)/)?.[1]
  if (!called) return undefined
  const alias = TARGET_ALIASES[called]
  const runbook = alias?.runbook ?? called
  const spec = RUNBOOKS[runbook]
  if (!spec) return undefined
  const args = parseArgs(
    [...(alias?.argv ?? []), ...argvFromVars(spec.options ?? [], vars)],
    spec.options ?? [],
  )
  return { runbook, args }
}

/** The secrets `make <target>` loads for an env (undefined: the target runs no env runbook). */
export function secretsOfMake(target: string, vars: Record<string, string>, env: Env): string[] | undefined {
  const run = makeRunbook(target, vars)
  const spec = run && RUNBOOKS[run.runbook]
  return spec && run ? secretsFor(env, spec.needs(env, run.args)) : undefined
}

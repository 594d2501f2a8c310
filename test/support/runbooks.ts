import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Env } from '../../lib/env/load.ts'
import { secretsFor } from '../../lib/env/needs.ts'
import type { ParsedArgs } from '../../lib/run/cli.ts'
import type { RunbookSpec } from '../../lib/run/runbook.ts'
import { alert } from '../../runbooks/alert.ts'
import { backup } from '../../runbooks/backup.ts'
import { backups } from '../../runbooks/backups.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { dns } from '../../runbooks/dns.ts'
import { emergency } from '../../runbooks/emergency.ts'
import { health } from '../../runbooks/health.ts'
import { pruneBackups } from '../../runbooks/prune-backups.ts'
import { releases } from '../../runbooks/releases.ts'
import { restore } from '../../runbooks/restore.ts'
import { rollback } from '../../runbooks/rollback.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { status } from '../../runbooks/status.ts'
import { unlock } from '../../runbooks/unlock.ts'
import { uptime } from '../../runbooks/uptime.ts'
import { verifyServer } from '../../runbooks/verify-server.ts'

/** Every runbook that runs against an env, by its file name in runbooks/. */
export const RUNBOOKS: Record<string, RunbookSpec> = {
  alert,
  backup,
  backups,
  deploy,
  dns,
  emergency,
  health,
  'prune-backups': pruneBackups,
  releases,
  restore,
  rollback,
  'setup-server': setupServer,
  status,
  unlock,
  uptime,
  'verify-server': verifyServer,
}

const ROOT = join(import.meta.dirname, '..', '..')

/**
 * What `make <target> VAR=value...` runs, read from the Makefile: the runbook, the flags its recipe
 * adds (restore-drill: --drill) and the flags the variables set (through each option's makeVar).
 */
export function makeRunbook(
  target: string,
  vars: Record<string, string>,
  makefile = readFileSync(join(ROOT, 'Makefile'), 'utf8'),
): { runbook: string; args: ParsedArgs } | undefined {
  const recipe = makefile.match(new RegExp(`^${target}:.*\\n\\t(.*)$`, 'm'))?.[1] ?? ''
  const call = recipe.match(/\$\(call RUNBOOK,([a-z-]+)\)\s*([^$]*)/)
  const spec = call ? RUNBOOKS[call[1] ?? ''] : undefined
  if (!call || !spec) return undefined
  const args: ParsedArgs = {}
  for (const flag of (call[2] ?? '').match(/--[a-z-]+/g) ?? []) args[flag.slice(2)] = true
  for (const option of spec.options ?? []) {
    const [name, fixed] = (option.makeVar ?? '').split('=')
    const value = name ? vars[name] : undefined
    if (value !== undefined) args[option.name] = fixed !== undefined || !option.value ? true : value
  }
  return { runbook: call[1] ?? '', args }
}

/** The secrets `make <target>` loads for an env (undefined: the target runs no env runbook). */
export function secretsOfMake(target: string, vars: Record<string, string>, env: Env): string[] | undefined {
  const run = makeRunbook(target, vars)
  const spec = run && RUNBOOKS[run.runbook]
  return spec && run ? secretsFor(env, spec.needs(env, run.args)) : undefined
}

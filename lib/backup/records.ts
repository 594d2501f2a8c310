/**
 * Where a run's records go in the backup store (ship-records): records/<env>/<day>/<run>/<name>, where
 * <name> is audit/<file> or state/<file>. Pure, unit tested; the store's own prefix comes first.
 */
import { checkKey } from '../store/store.ts'

export interface RecordFile {
  /** audit/audit.jsonl, state/emergency-production.json */
  name: string
  dir: string
  base: string
}

/** The files to ship: every file of the audit directory, and the env's files of the state directory. */
export function recordFiles(
  env: string,
  dirs: { audit: string; state: string },
  exists: (p: string) => boolean,
  list: (p: string, o: { withFileTypes: true }) => Array<{ name: string; isFile(): boolean }>,
): RecordFile[] {
  return (['audit', 'state'] as const).flatMap((kind) => {
    const dir = dirs[kind]
    if (!exists(dir)) return []
    return list(dir, { withFileTypes: true })
      .filter((e) => e.isFile() && !e.name.endsWith('.tmp'))
      .filter((e) => kind === 'audit' || e.name.includes(`-${env}.`))
      .map((e) => e.name)
      .sort()
      .map((base) => ({ name: `${kind}/${base}`, dir, base }))
  })
}

/** RUN_ID=, else `<GITHUB_RUN_ID>-<GITHUB_RUN_ATTEMPT>`, else the time (2026-12-06T02-20-00Z). */
export const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

export function runName(given: string | undefined, env: NodeJS.ProcessEnv, now = new Date()): string {
  const name =
    given ?? (env.GITHUB_RUN_ID ? `${env.GITHUB_RUN_ID}-${env.GITHUB_RUN_ATTEMPT ?? '1'}` : undefined)
  return (
    name ??
    now
      .toISOString()
      .replace(/\.\d+Z$/, 'Z')
      .replaceAll(':', '-')
  )
}

export function recordKey(env: string, run: string, name: string, now = new Date()): string {
  const key = `records/${env}/${now.toISOString().slice(0, 10)}/${run}/${name}`
  checkKey(key, 'record key')
  return key
}

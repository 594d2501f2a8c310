/**
 * Where the records of runs live in an env's backup store, beside its backups, so they outlive the
 * droplet and the CI runner (make report reads them back). Pure, unit tested; the store's own prefix
 * comes first.
 * - records/<env>/runs/<YYYY-MM>/<ended>-<runbook>-<rand>.json: one run's audit record, put by the
 *   step runner as the run ends (lib/run/records.ts). Never overwritten: a key is new for every run.
 * - records/<env>/<YYYY-MM-DD>/<run>/audit/<file>: a machine's whole audit file, copied by
 *   make ship-records at the end of every workflow (lib/backup/records.ts).
 * - records/<env>/incidents/<id>/<recorded>-<kind>-<rand>.json: an incident's events (make incident).
 */
import { checkKey } from './store.ts'

export const RUNS_DIR = 'runs'

/** records/<env>/runs/2026-12/2026-12-07T18-20-05.123Z-deploy-1a2b3c.json */
export function runRecordKey(env: string, runbook: string, ended: Date, rand: string): string {
  const iso = ended.toISOString()
  const key = `records/${env}/${RUNS_DIR}/${iso.slice(0, 7)}/${iso.replaceAll(':', '-')}-${runbook}-${rand}.json`
  checkKey(key, 'record key')
  return key
}

export const INCIDENTS_DIR = 'incidents'

/** records/<env>/incidents/<id>/<recorded>-<kind>-<rand>.json: one event of an incident (make incident). */
export function incidentEventKey(
  env: string,
  id: string,
  recorded: Date,
  kind: string,
  rand: string,
): string {
  const key = `records/${env}/${INCIDENTS_DIR}/${id}/${recorded.toISOString().replaceAll(':', '-')}-${kind}-${rand}.json`
  checkKey(key, 'incident record key')
  return key
}

/** Every record of the env: runs, copies and incidents. */
export const recordsPrefix = (env: string): string => `records/${env}/`

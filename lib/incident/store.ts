import { randomBytes } from 'node:crypto'
import { INCIDENTS_DIR, incidentEventKey, recordsPrefix } from '../store/record-keys.ts'
import { type BackupStore, readObject } from '../store/store.ts'
import { type Incident, type IncidentEvent, incidentOf } from './model.ts'

// The incident register in the env's backup store: each event an object of its own, added, never
// replaced (the everyday key cannot overwrite or delete), under records/<env>/incidents/<id>/.

export async function addEvent(store: BackupStore, event: IncidentEvent): Promise<string> {
  const key = incidentEventKey(
    event.env,
    event.id,
    new Date(event.recorded_at),
    event.kind,
    randomBytes(3).toString('hex'),
  )
  await store.put(key, Buffer.from(`${JSON.stringify(event)}\n`))
  return key
}

/** Every incident of the env, newest detection first; events that do not parse are counted. */
export async function readIncidents(
  store: BackupStore,
  env: string,
): Promise<{ incidents: Incident[]; malformed: number }> {
  const prefix = `${recordsPrefix(env)}${INCIDENTS_DIR}/`
  const byId = new Map<string, IncidentEvent[]>()
  let malformed = 0
  for (const { key } of await store.list(prefix)) {
    if (!key.endsWith('.json')) continue
    try {
      const e = JSON.parse((await readObject(store, key)).toString('utf8')) as IncidentEvent
      if (typeof e.id !== 'string' || typeof e.at !== 'string' || e.env !== env)
        throw new Error('not an event')
      byId.set(e.id, [...(byId.get(e.id) ?? []), e])
    } catch {
      malformed++
    }
  }
  const incidents = [...byId.values()]
    .map((events) => incidentOf(events))
    .filter((i): i is Incident => !!i)
    .sort((a, b) => b.detected_at.localeCompare(a.detected_at))
  return { incidents, malformed }
}

/**
 * The layout of backups in a store, and finding them. One backup is one directory:
 *
 *   <env>/<id>/<part>.enc      an encrypted part (e.g. db.enc, uploads.enc)
 *   <env>/<id>/manifest.enc    the encrypted manifest
 *   <env>/<id>/COMPLETE        {id, completed_at, parts: {name: bytes}, manifest_bytes}, written LAST,
 *                              only after every object was uploaded and read back
 *
 * The id is the UTC start time, YYYYMMDDTHHMMSSZ (e.g. 20261126T123000Z), so ids sort by time. A backup
 * counts as complete only if its COMPLETE marker parses and matches the objects actually there, so an
 * interrupted or half-deleted backup is never picked as the latest.
 */
import { InputError, IntegrityError, PreconditionError } from '../report/errors.ts'
import { type BackupStore, readObject } from './storage.ts'

export const MANIFEST = 'manifest'
export const COMPLETE = 'COMPLETE'
const ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/
const PART = /^[a-z0-9][a-z0-9._-]*$/

export interface BackupEntry {
  id: string
  createdAt: Date
  /** The COMPLETE marker is there and matches the objects. */
  complete: boolean
  /** All objects of the backup, marker included. */
  bytes: number
  /** Part names (`db` for `db.enc`), sorted; the manifest is not a part. */
  parts: string[]
  /** Why a backup with a COMPLETE marker still does not count as complete. */
  problem?: string
}

export interface CompleteMarker {
  id: string
  completed_at: string
  parts: Record<string, number>
  manifest_bytes: number
}

export function newBackupId(date: Date = new Date()): string {
  if (Number.isNaN(date.getTime())) throw new InputError('newBackupId: invalid date')
  return date
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '')
}

/** The time an id stands for; a malformed id is an InputError naming BACKUP. */
export function parseBackupId(id: string): Date {
  const [, y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0] = (ID.exec(id) ?? []).map(Number)
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s))
  // The round trip rejects impossible times such as month 13 or 24:00.
  if (!ID.test(id) || Number.isNaN(date.getTime()) || newBackupId(date) !== id) {
    throw new InputError(
      `BACKUP=${JSON.stringify(id)} is not a backup id: expected the UTC time YYYYMMDDTHHMMSSZ, e.g. 20261126T123000Z`,
      [],
      'List the backups with make backups ENV=<env> and copy an id from there.',
    )
  }
  return date
}

export function isBackupId(id: string): boolean {
  try {
    parseBackupId(id)
    return true
  } catch {
    return false
  }
}

export function checkEnvName(env: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(env))
    throw new InputError(`not an env name: ${JSON.stringify(env)}`)
}

export function backupPrefix(env: string, id: string): string {
  checkEnvName(env)
  parseBackupId(id)
  return `${env}/${id}/`
}

export function partKey(env: string, id: string, part: string): string {
  if (!PART.test(part) || part === MANIFEST) {
    throw new InputError(
      `not a backup part name: ${JSON.stringify(part)} (lowercase a-z 0-9 . _ -, not "manifest")`,
    )
  }
  return `${backupPrefix(env, id)}${part}.enc`
}

export const manifestKey = (env: string, id: string): string => `${backupPrefix(env, id)}${MANIFEST}.enc`
export const completeKey = (env: string, id: string): string => `${backupPrefix(env, id)}${COMPLETE}`

/**
 * Writes the COMPLETE marker, after checking that every part and the manifest are in the store with
 * exactly the sizes given (call it only after the upload was read back and verified).
 */
export async function markComplete(
  store: BackupStore,
  env: string,
  id: string,
  sizes: { parts: Record<string, number>; manifest_bytes: number },
  now: Date = new Date(),
): Promise<CompleteMarker> {
  const marker: CompleteMarker = {
    id,
    completed_at: now.toISOString(),
    parts: sizes.parts,
    manifest_bytes: sizes.manifest_bytes,
  }
  const problem = await checkMarker(store, env, id, marker, undefined)
  if (problem) throw new IntegrityError(`backup ${id} cannot be marked complete: ${problem}`)
  await store.put(completeKey(env, id), Buffer.from(`${JSON.stringify(marker, null, 2)}\n`))
  return marker
}

/** Every backup of `env` in the store, newest first. Reads each COMPLETE marker. */
export async function listBackups(store: BackupStore, env: string): Promise<BackupEntry[]> {
  checkEnvName(env)
  const objects = await store.list(`${env}/`)
  const byId = new Map<string, Map<string, number>>()
  for (const { key, bytes } of objects) {
    const [, id = '', ...rest] = key.split('/')
    if (!isBackupId(id) || rest.length === 0) continue
    const files = byId.get(id) ?? new Map<string, number>()
    files.set(rest.join('/'), bytes)
    byId.set(id, files)
  }
  const entries = await mapLimit([...byId], 8, async ([id, files]): Promise<BackupEntry> => {
    const parts = [...files.keys()]
      .filter((f) => f.endsWith('.enc') && !f.includes('/') && f !== `${MANIFEST}.enc`)
      .map((f) => f.slice(0, -'.enc'.length))
      .sort()
    const bytes = [...files.values()].reduce((a, b) => a + b, 0)
    const entry: BackupEntry = { id, createdAt: parseBackupId(id), complete: false, bytes, parts }
    if (files.has(COMPLETE)) {
      const problem = await readMarker(store, env, id).then(
        (marker) => checkMarker(store, env, id, marker, files),
        (err: Error) => {
          if (err instanceof IntegrityError) return err.message
          throw err
        },
      )
      if (problem) entry.problem = problem
      else entry.complete = true
    }
    return entry
  })
  return entries.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
}

export async function readMarker(store: BackupStore, env: string, id: string): Promise<CompleteMarker> {
  const text = (await readObject(store, completeKey(env, id))).toString('utf8')
  let marker: CompleteMarker
  try {
    marker = JSON.parse(text) as CompleteMarker
  } catch {
    throw new IntegrityError(`the COMPLETE marker of backup ${id} is not JSON`)
  }
  const partsOk =
    marker !== null &&
    typeof marker.parts === 'object' &&
    marker.parts !== null &&
    Object.values(marker.parts).every((n) => Number.isSafeInteger(n) && n >= 0)
  if (!partsOk || !Number.isSafeInteger(marker.manifest_bytes) || typeof marker.completed_at !== 'string') {
    throw new IntegrityError(`the COMPLETE marker of backup ${id} is malformed`)
  }
  return marker
}

/** What is wrong with the marker against the store (or a listing of the backup), or undefined. */
async function checkMarker(
  store: BackupStore,
  env: string,
  id: string,
  marker: CompleteMarker,
  listed: Map<string, number> | undefined,
): Promise<string | undefined> {
  if (marker.id !== id) return `its COMPLETE marker names ${marker.id}`
  const expected: [string, string, number][] = [
    ...Object.entries(marker.parts).map(([p, n]): [string, string, number] => [`part ${p}`, `${p}.enc`, n]),
    ['the manifest', `${MANIFEST}.enc`, marker.manifest_bytes],
  ]
  for (const [what, file, bytes] of expected) {
    const actual = listed ? listed.get(file) : (await store.head(`${backupPrefix(env, id)}${file}`))?.bytes
    if (actual === undefined) return `${what} (${file}) is missing`
    if (actual !== bytes) return `${what} (${file}) has ${actual} bytes, the marker says ${bytes}`
  }
  return undefined
}

/** The newest complete backup, if any. */
export function latestComplete<E extends { createdAt: Date; complete: boolean }>(
  entries: E[],
): E | undefined {
  let best: E | undefined
  for (const e of entries) if (e.complete && (!best || e.createdAt > best.createdAt)) best = e
  return best
}

/**
 * The backup to restore: `requested` (it must exist and be complete), else the newest complete one.
 * `where` names the env and store in the message when there is none.
 */
export function resolveBackup(
  entries: BackupEntry[],
  requested?: string,
  where: { env?: string; store?: string } = {},
): BackupEntry {
  const env = where.env ?? '<env>'
  const newest = [...entries].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime()).slice(0, 5)
  const ids = (list: BackupEntry[]) => list.map((e) => e.id)
  const recent = newest.map(
    (e) => `${e.id}${e.complete ? '' : ` (incomplete${e.problem ? `: ${e.problem}` : ''})`}`,
  )
  const listHint = `Pick a complete one (make backups ENV=${env}), or leave BACKUP unset for the latest complete one.`
  if (requested !== undefined && requested !== '') {
    parseBackupId(requested)
    const entry = entries.find((e) => e.id === requested)
    if (!entry?.complete) {
      const why = !entry
        ? 'does not exist'
        : `is incomplete (${entry.problem ?? 'no COMPLETE marker: the backup did not finish'})`
      const head = `BACKUP=${requested} ${why}${where.env ? ` for ${where.env}` : ''}`
      throw new InputError(
        recent.length ? `${head}. The latest backups:` : `${head}: there are no backups at all.`,
        recent,
        listHint,
      )
    }
    return entry
  }
  const latest = latestComplete(entries)
  if (!latest) {
    throw new PreconditionError(
      `no complete backup for ${env} in ${where.store ?? 'the backup store'}${entries.length ? ` (only incomplete ones: ${ids(newest).join(', ')})` : ''}`,
      `Make a backup first (make backup ENV=${env}), or check the backup store settings of ${env}.`,
    )
  }
  return latest
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

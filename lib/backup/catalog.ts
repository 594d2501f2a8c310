/**
 * The layout of backups in a store, and finding them. One backup is one directory:
 *
 *   <env>/<id>/<part>.enc      an encrypted part (e.g. db.enc, uploads.enc)
 *   <env>/<id>/manifest.enc    the encrypted manifest
 *   <env>/<id>/COMPLETE        {id, completed_at, parts: {name: bytes}, manifest_bytes, key_id, mac},
 *                              written LAST, only after every object was uploaded and read back
 *
 * The id is the UTC start time, YYYYMMDDTHHMMSSZ (e.g. 20261126T123000Z), so ids sort by time. A backup
 * counts as complete only if its COMPLETE marker parses and matches the objects actually there, so an
 * interrupted or half-deleted backup is never picked as the latest.
 *
 * The marker is signed: `mac` is an HMAC-SHA256, under a key derived from BACKUP_KEY (key_id says which),
 * of the env, the id and the marker's fields. Without the key nobody can write one that verifies, so a
 * marker planted in the bucket never makes a backup complete. An id more than MAX_CLOCK_SKEW_MS in the
 * future never counts either (a planted "newest" backup, or a machine with a wrong clock). Markers from
 * before signing (no mac) still count, but the latest backup is always a signed one when there is one.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { InputError, IntegrityError, PreconditionError } from '../report/errors.ts'
import { type BackupStore, readObject } from '../store/storage.ts'
import type { Keyring } from './keys.ts'

export const MANIFEST = 'manifest'
export const COMPLETE = 'COMPLETE'
const ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/
const PART = /^[a-z0-9][a-z0-9._-]*$/
/** How far in the future a backup id may be (clocks differ a little): beyond it, the backup is refused. */
export const MAX_CLOCK_SKEW_MS = 10 * 60 * 1000

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
  /**
   * How its marker was checked: `signed` (its mac verified with the keyring), `unverified` (signed,
   * but listed without a keyring), `legacy` (made before markers were signed). Only on complete entries.
   */
  marker?: 'signed' | 'unverified' | 'legacy'
  /** Its marker is signed with this key id, which the keyring lacks (retention keeps such backups). */
  unknownKey?: string
}

export interface CompleteMarker {
  id: string
  completed_at: string
  parts: Record<string, number>
  manifest_bytes: number
  /** The id of the backup key whose marker key made `mac` (absent on legacy markers). */
  key_id?: string
  /** HMAC-SHA256, hex, of markerMessage(). */
  mac?: string
}

/** What a marker's mac covers: the env and every field but the mac, in a fixed order. */
export function markerMessage(env: string, m: CompleteMarker): string {
  const parts = Object.entries(m.parts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return JSON.stringify([
    'ce-backup-complete-v2',
    env,
    m.id,
    m.completed_at,
    parts,
    m.manifest_bytes,
    m.key_id,
  ])
}

function markerMac(key: Buffer, env: string, m: CompleteMarker): string {
  return createHmac('sha256', key).update(markerMessage(env, m)).digest('hex')
}

/** Why a signed marker does not verify with the keyring, or undefined when it does. */
export function markerSignatureProblem(keyring: Keyring, env: string, m: CompleteMarker): string | undefined {
  const key = m.key_id ? keyring.byId(m.key_id) : undefined
  if (!key)
    return `its COMPLETE marker is signed with key id ${m.key_id ?? '(none)'}, which is not in the keyring (${keyring.describe()}): put that key in BACKUP_KEY_PREVIOUS`
  const want = Buffer.from(markerMac(key.markerKey, env, m), 'hex')
  const got = Buffer.from(m.mac ?? '', 'hex')
  if (got.length !== want.length || !timingSafeEqual(got, want))
    return 'its COMPLETE marker failed authentication: it was planted or modified in the store'
  return undefined
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
  keyring: Keyring,
  now: Date = new Date(),
): Promise<CompleteMarker> {
  const marker: CompleteMarker = {
    id,
    completed_at: now.toISOString(),
    parts: sizes.parts,
    manifest_bytes: sizes.manifest_bytes,
    key_id: keyring.current.id,
  }
  marker.mac = markerMac(keyring.current.markerKey, env, marker)
  const problem = await checkMarker(store, env, id, marker, undefined)
  if (problem) throw new IntegrityError(`backup ${id} cannot be marked complete: ${problem}`)
  await store.put(completeKey(env, id), Buffer.from(`${JSON.stringify(marker, null, 2)}\n`))
  return marker
}

export interface ListOptions {
  /** Verifies each signed marker; without it signed markers are `unverified` (health's age check). */
  keyring?: Keyring
  /** For the future-id bound (tests). */
  now?: Date
}

/** Every backup of `env` in the store, newest first. Reads each COMPLETE marker. */
export async function listBackups(
  store: BackupStore,
  env: string,
  opts: ListOptions = {},
): Promise<BackupEntry[]> {
  checkEnvName(env)
  const latestAllowed = (opts.now ?? new Date()).getTime() + MAX_CLOCK_SKEW_MS
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
      let kind: BackupEntry['marker']
      const problem = await readMarker(store, env, id).then(
        async (marker) => {
          const sizes = await checkMarker(store, env, id, marker, files)
          if (sizes) return sizes
          if (marker.mac === undefined) kind = 'legacy'
          else if (!opts.keyring) kind = 'unverified'
          else {
            kind = 'signed'
            if (!opts.keyring.byId(marker.key_id ?? '')) entry.unknownKey = marker.key_id
            return markerSignatureProblem(opts.keyring, env, marker)
          }
          return undefined
        },
        (err: Error) => {
          if (err instanceof IntegrityError) return err.message
          throw err
        },
      )
      if (problem) entry.problem = problem
      else if (entry.createdAt.getTime() > latestAllowed)
        entry.problem = `its id is ${Math.round((entry.createdAt.getTime() - latestAllowed + MAX_CLOCK_SKEW_MS) / 60000)} min in the future: a planted backup or a machine with a wrong clock; it is never used`
      else {
        entry.complete = true
        entry.marker = kind
      }
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
  const signatureOk =
    marker?.mac === undefined ||
    (typeof marker.mac === 'string' && /^[0-9a-f]{64}$/.test(marker.mac) && typeof marker.key_id === 'string')
  if (
    !partsOk ||
    !signatureOk ||
    !Number.isSafeInteger(marker.manifest_bytes) ||
    typeof marker.completed_at !== 'string'
  ) {
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

/**
 * The newest complete backup, if any: a signed one when there is one (a legacy marker, unsigned, could
 * have been planted), else the newest legacy one (backups made before markers were signed).
 */
export function latestComplete<E extends { createdAt: Date; complete: boolean; marker?: string }>(
  entries: E[],
): E | undefined {
  const newest = (list: E[]) => {
    let best: E | undefined
    for (const e of list) if (e.complete && (!best || e.createdAt > best.createdAt)) best = e
    return best
  }
  return newest(entries.filter((e) => e.marker !== 'legacy')) ?? newest(entries)
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
    if (entry?.unknownKey) throw wrongKey(entry.unknownKey, `backup ${requested}`)
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
  const signedElsewhere = newest.find((e) => e.unknownKey)
  if (!latest && signedElsewhere?.unknownKey)
    throw wrongKey(signedElsewhere.unknownKey, `the newest backup of ${env} (${signedElsewhere.id})`)
  if (!latest) {
    throw new PreconditionError(
      `no complete backup for ${env} in ${where.store ?? 'the backup store'}${entries.length ? ` (only incomplete ones: ${ids(newest).join(', ')})` : ''}`,
      `Make a backup first (make backup ENV=${env}), or check the backup store settings of ${env}.`,
    )
  }
  return latest
}

/** A backup whose marker is signed with a key the keyring lacks: the key is wrong or missing. */
function wrongKey(keyId: string, what: string): PreconditionError {
  return new PreconditionError(
    `wrong key: ${what} needs key id ${keyId} (its COMPLETE marker is signed with it), which the keyring does not have`,
    `Put the key whose id is ${keyId} in BACKUP_KEY (or BACKUP_KEY_PREVIOUS, comma-separated older keys) and run again. Nothing was restored.`,
  )
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

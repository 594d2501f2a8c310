/**
 * The words every backup store shares: the BackupStore interface, key rules, the Spaces secret names and
 * small reads. The stores (store-local.ts, store-s3.ts) build on this file; storage.ts picks one.
 * Keys are relative to the store's root (`<dir>/<key>` or `<prefix>/<key>`), `/`-separated, never `..`.
 */
import type { Readable } from 'node:stream'
import { InputError, IntegrityError } from '../report/errors.ts'

export interface BackupStore {
  /** For messages: `dir /path` or `s3://bucket/prefix at https://endpoint` (never credentials). */
  readonly description: string
  /**
   * Streams `body` to `key`; it appears whole or not at all. `size`, if given, is checked. Never
   * overwrites: a key that already holds an object throws ObjectExistsError (S3: `If-None-Match: *`).
   */
  put(key: string, body: Readable | Buffer, opts?: { size?: number }): Promise<{ bytes: number }>
  /** The object's bytes; a missing object throws IntegrityError. */
  get(key: string): Promise<Readable>
  head(key: string): Promise<{ bytes: number } | undefined>
  /** Every object whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<{ key: string; bytes: number }[]>
  /** Deletes the objects (missing ones are fine), in the order given where that matters. */
  delete(keys: string[]): Promise<void>
  /**
   * Whether the store keeps what a key deletes or overwrites (bucket versioning, object lock). A store
   * without such settings (a local directory) has no protection() at all.
   */
  protection?(): Promise<Protection>
}

/** A bucket's settings that keep deleted or overwritten objects; `unreadable` when the key may not read them. */
export interface Protection {
  versioning: 'enabled' | 'suspended' | 'off' | 'unreadable'
  objectLock: 'enabled' | 'off' | 'unreadable'
  /** Object lock's default retention, e.g. `COMPLIANCE 30 days`. */
  retention?: string
  /** The S3 error code that made a setting unreadable. */
  why?: string
}

export { ACCESS_KEY_SECRET, SECRET_KEY_SECRET } from '../env/backup.ts'

/** Throws unless `key` is a relative `/`-separated path without empty, `.` or `..` segments. */
export function checkKey(key: string, what = 'key'): void {
  const problem =
    key === ''
      ? 'is empty'
      : key.startsWith('/')
        ? 'starts with /'
        : key.includes('\\') || key.includes('\0')
          ? 'contains \\ or NUL'
          : key.split('/').some((s) => s === '..' || s === '.')
            ? 'has a . or .. segment'
            : key.split('/').includes('')
              ? 'has an empty segment'
              : undefined
  if (problem) throw new InputError(`backup store ${what} ${JSON.stringify(key)} ${problem}`)
}

/** Like checkKey, but a prefix may be empty or end with `/`. */
export function checkPrefix(prefix: string): void {
  if (prefix !== '') checkKey(prefix.endsWith('/') ? `${prefix}x` : prefix, 'prefix')
}

/** A put to a key that already holds an object: nothing was written, the object there is unchanged. */
export class ObjectExistsError extends IntegrityError {
  constructor(key: string, store: BackupStore) {
    super(
      `${key} already exists in ${store.description}: backups are never overwritten`,
      'Another run wrote the same key (two backups in the same second, or a retried upload that had landed): list them with make backups ENV=<env>, then run again.',
    )
  }
}

export function missingObject(key: string, store: BackupStore): IntegrityError {
  return new IntegrityError(
    `missing object ${key} in ${store.description}`,
    'The backup is incomplete or was deleted: pick another one (list them: make backups ENV=<env>).',
  )
}

/** Reads an object fully (small ones: a manifest, a COMPLETE marker). */
export async function readObject(store: BackupStore, key: string): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of await store.get(key)) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

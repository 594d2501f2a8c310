/**
 * Where backups are kept: the BackupStore interface, key rules, and openStore() for the configured target
 * (a local directory, or an S3-compatible bucket such as DigitalOcean Spaces). Keys are relative to the
 * store's root (`<dir>/<key>` or `<prefix>/<key>`), `/`-separated, and never contain `..`.
 */
import type { Readable } from 'node:stream'
import type { StoreConfig } from '../env/backup.ts'
import { InputError, IntegrityError } from '../report/errors.ts'
import { LocalStore } from './store-local.ts'
import { S3Store, type S3StoreOptions } from './store-s3.ts'

export interface BackupStore {
  /** For messages: `dir /path` or `s3://bucket/prefix at https://endpoint` (never credentials). */
  readonly description: string
  /** Streams `body` to `key`; it appears whole or not at all. `size`, if given, is checked. */
  put(key: string, body: Readable | Buffer, opts?: { size?: number }): Promise<{ bytes: number }>
  /** The object's bytes; a missing object throws IntegrityError. */
  get(key: string): Promise<Readable>
  head(key: string): Promise<{ bytes: number } | undefined>
  /** Every object whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<{ key: string; bytes: number }[]>
  /** Deletes the objects (missing ones are fine), in the order given where that matters. */
  delete(keys: string[]): Promise<void>
}

export const ACCESS_KEY_SECRET = 'SPACES_ACCESS_KEY_ID'
export const SECRET_KEY_SECRET = 'SPACES_SECRET_ACCESS_KEY'

export function openStore(
  config: StoreConfig,
  secrets: Readonly<Record<string, string | undefined>> = {},
  s3Options: S3StoreOptions = {},
): BackupStore {
  if (config.type === 'local') return new LocalStore(config.dir)
  const missing = [ACCESS_KEY_SECRET, SECRET_KEY_SECRET].filter((name) => !secrets[name])
  if (missing.length) {
    throw new InputError(
      `the backup store s3://${config.bucket} needs the secret(s) ${missing.join(', ')}`,
      [],
      'Create a Spaces access key (DigitalOcean control panel > API > Spaces Keys) and set both secrets.',
    )
  }
  const credentials = {
    accessKeyId: secrets[ACCESS_KEY_SECRET] as string,
    secretAccessKey: secrets[SECRET_KEY_SECRET] as string,
  }
  return new S3Store(config, credentials, s3Options)
}

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

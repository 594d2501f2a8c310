import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { GetObjectCommand, PutObjectCommand, type PutObjectCommandInput } from '@aws-sdk/client-s3'
import { ACCESS_KEY_SECRET, S3_SECRETS, SECRET_KEY_SECRET, type StoreConfig } from '../env/backup.ts'
import type { Secrets } from '../env/secrets.ts'
import { InputError, PreconditionError } from '../report/errors.ts'
import { s3Client } from '../store/store-s3.ts'

// make status-page's last step: the page (index.html) and its data (status.json) written to the
// status_page store, each replaced whole, then read back and compared. S3: public-read objects with a
// short cache, so the page seen is at most a minute older than the last run. A directory: files
// renamed into place (a reader never sees half a page).

export interface PageFile {
  name: 'index.html' | 'status.json'
  body: string
  contentType: string
}

/** The object key of a page file under the store's prefix. */
export function pageKey(store: StoreConfig, name: string): string {
  return store.type === 's3' && store.prefix ? `${store.prefix.replace(/\/+$/, '')}/${name}` : name
}

/** The PutObject request of one page file (pure: unit-tested). */
export function putRequest(
  store: Extract<StoreConfig, { type: 's3' }>,
  file: PageFile,
): PutObjectCommandInput {
  return {
    Bucket: store.bucket,
    Key: pageKey(store, file.name),
    Body: file.body,
    ContentType: file.contentType,
    // Anyone may read it (the status page is public); a visitor's copy is at most a minute old.
    ACL: 'public-read',
    CacheControl: 'public, max-age=60',
  }
}

/** Where the page is: the store's address of index.html (for messages; never a credential). */
export function pageLocation(store: StoreConfig): string {
  return store.type === 's3'
    ? `s3://${store.bucket}/${pageKey(store, 'index.html')} at ${store.endpoint}`
    : join(store.dir, 'index.html')
}

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex')

/** Writes the files, then reads each back: a page that did not land as written is an error. */
export async function publishPage(store: StoreConfig, secrets: Secrets, files: PageFile[]): Promise<void> {
  if (store.type === 'local') {
    mkdirSync(store.dir, { recursive: true })
    for (const f of files) {
      const path = join(store.dir, f.name)
      writeFileSync(`${path}.tmp`, f.body)
      renameSync(`${path}.tmp`, path)
      if (sha256(readFileSync(path)) !== sha256(f.body))
        throw new PreconditionError(`${path} does not hold what was written`)
    }
    return
  }
  const missing = S3_SECRETS.filter((n) => !secrets[n])
  if (missing.length)
    throw new InputError(
      `the status page store s3://${store.bucket} needs the secret(s) ${missing.join(', ')}`,
      [],
      'Set the Spaces key pair (the one the backups use, with write access to this bucket too).',
    )
  const secret = secrets[SECRET_KEY_SECRET] as string
  const client = s3Client(
    store,
    { accessKeyId: secrets[ACCESS_KEY_SECRET] as string, secretAccessKey: secret },
    { requestTimeoutMs: 60_000 },
  )
  try {
    for (const f of files) {
      const what = `s3://${store.bucket}/${pageKey(store, f.name)}`
      try {
        await client.send(new PutObjectCommand(putRequest(store, f)))
        const back = await client.send(
          new GetObjectCommand({ Bucket: store.bucket, Key: pageKey(store, f.name) }),
        )
        const body = Buffer.from((await back.Body?.transformToByteArray()) ?? [])
        if (sha256(body) !== sha256(f.body)) throw new Error('read back, it differs from what was written')
      } catch (err) {
        const e = err as Error & { name?: string; $metadata?: { httpStatusCode?: number } }
        const status = e.$metadata?.httpStatusCode ? ` (HTTP ${e.$metadata.httpStatusCode})` : ''
        throw new PreconditionError(
          `writing ${what} at ${store.endpoint} failed: ${e.name ?? 'Error'}${status}: ${e.message}`
            .split(secret)
            .join('[secret]'),
          `Check that the bucket ${store.bucket} exists, that the Spaces key may write to it, and that ${store.endpoint} answers; then run make status-page again (the last published page stays until then).`,
        )
      }
    }
  } finally {
    client.destroy()
  }
}

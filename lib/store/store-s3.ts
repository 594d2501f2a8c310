/**
 * A BackupStore in an S3-compatible bucket (production: DigitalOcean Spaces), objects at `<prefix>/<key>`.
 * Uploads stream through lib-storage's Upload (multipart above one part, a few parts in parallel; a failed
 * upload is aborted, so no object appears). S3 errors become PreconditionErrors naming the endpoint, the
 * bucket and the S3 error code, with a hint; the secret key never appears in a message.
 *
 * S3-compatibles (Spaces, fakes) reject or mishandle the CRC32 flexible checksums recent SDKs send by
 * default, so checksums are sent/validated only where the API requires them; DeleteObjects, which
 * requires one, gets the classic Content-MD5 instead (see contentMd5ForDeleteObjects).
 */
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import {
  DeleteObjectsCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { IntegrityError, PreconditionError } from '../report/errors.ts'
import {
  type BackupStore,
  checkKey,
  checkPrefix,
  missingObject,
  ObjectExistsError,
  type Protection,
} from './store.ts'

export interface S3Config {
  endpoint: string
  region: string
  bucket: string
  prefix: string
}

export interface S3StoreOptions {
  /** Attempts per request, retries included (SDK default 3). Tests use 1. */
  maxAttempts?: number
  /** Keys per ListObjectsV2 page (S3 maximum and default 1000). */
  pageSize?: number
  /** Multipart part size in bytes (default 8 MiB; S3 minimum 5 MiB). */
  partSize?: number
  /** Parts uploaded in parallel (default 4). */
  queueSize?: number
}

const MiB = 1024 * 1024
// The SDK warns on every run that its 2027 releases will need Node 22. That belongs in the README
// (it says so), not in the middle of an on-call's restore output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
])
const CREDENTIAL_CODES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'Forbidden'])

/** A client of an S3-compatible endpoint (a Space), as every store of this project talks to one. */
export function s3Client(
  config: Pick<S3Config, 'endpoint' | 'region'>,
  credentials: { accessKeyId: string; secretAccessKey: string },
  { maxAttempts = 3, requestTimeoutMs = 120_000 }: { maxAttempts?: number; requestTimeoutMs?: number } = {},
): S3Client {
  return new S3Client({
    endpoint: config.endpoint,
    region: config.region,
    credentials,
    // Path-style (<endpoint>/<bucket>/<key>): Spaces accepts it, and it works for local servers and
    // for bucket names with dots under TLS.
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts,
    requestHandler: { connectionTimeout: 10_000, requestTimeout: requestTimeoutMs },
  })
}

export class S3Store implements BackupStore {
  readonly description: string
  private readonly client: S3Client
  private readonly root: string

  constructor(
    readonly config: S3Config,
    private readonly credentials: { accessKeyId: string; secretAccessKey: string },
    private readonly opts: S3StoreOptions = {},
  ) {
    this.root = config.prefix.replace(/^\/+|\/+$/g, '')
    if (this.root) checkPrefix(this.root)
    this.description = `s3://${config.bucket}/${this.root ? `${this.root}/` : ''} at ${config.endpoint}`
    this.client = s3Client(config, credentials, { maxAttempts: opts.maxAttempts ?? 3 })
    this.client.middlewareStack.add(contentMd5ForDeleteObjects, {
      step: 'build',
      priority: 'low',
      name: 'contentMd5ForDeleteObjects',
    })
  }

  private objectKey(key: string): string {
    checkKey(key)
    return this.root ? `${this.root}/${key}` : key
  }

  async put(key: string, body: Readable | Buffer, opts: { size?: number } = {}): Promise<{ bytes: number }> {
    const Key = this.objectKey(key)
    let bytes = 0
    let Body: Readable | Buffer
    if (Buffer.isBuffer(body)) {
      bytes = body.length
      if (opts.size !== undefined && bytes !== opts.size) throw sizeMismatch(key, opts.size, bytes)
      Body = body
    } else {
      // Count the bytes as lib-storage reads them; a size mismatch fails the upload before it completes.
      Body = Readable.from(
        (async function* () {
          for await (const chunk of body) {
            bytes += (chunk as Buffer).length
            yield chunk
          }
          if (opts.size !== undefined && bytes !== opts.size) throw sizeMismatch(key, opts.size, bytes)
        })(),
        { objectMode: false },
      )
    }
    const upload = new Upload({
      client: this.client,
      // If-None-Match: * on PutObject and CompleteMultipartUpload: the store refuses to replace an object.
      params: {
        Bucket: this.config.bucket,
        Key,
        Body,
        ContentType: 'application/octet-stream',
        IfNoneMatch: '*',
      },
      partSize: this.opts.partSize ?? 8 * MiB,
      queueSize: this.opts.queueSize ?? 4,
      leavePartsOnError: false,
    })
    try {
      await upload.done()
    } catch (err) {
      const code = errorCode(err)
      if (code === 'PreconditionFailed' || code === 'ConditionalRequestConflict')
        throw new ObjectExistsError(key, this)
      throw this.failure(err, `upload ${key}`)
    }
    return { bytes }
  }

  async get(key: string): Promise<Readable> {
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.config.bucket, Key: this.objectKey(key) }),
      )
      return out.Body as Readable
    } catch (err) {
      if (errorCode(err) === 'NoSuchKey') throw missingObject(key, this)
      throw this.failure(err, `download ${key}`)
    }
  }

  async head(key: string): Promise<{ bytes: number } | undefined> {
    try {
      const out = await this.client.send(
        new HeadObjectCommand({ Bucket: this.config.bucket, Key: this.objectKey(key) }),
      )
      return { bytes: out.ContentLength ?? 0 }
    } catch (err) {
      // A HEAD answer has no body, so a missing key and a missing bucket both read as 404 NotFound.
      const code = errorCode(err)
      if (code === 'NotFound' || code === 'NoSuchKey') return undefined
      throw this.failure(err, `check ${key}`)
    }
  }

  async list(prefix: string): Promise<{ key: string; bytes: number }[]> {
    checkPrefix(prefix)
    const full = this.root ? `${this.root}/${prefix}` : prefix
    const found: { key: string; bytes: number }[] = []
    let ContinuationToken: string | undefined
    do {
      let page: ListObjectsV2CommandOutput
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.config.bucket,
            Prefix: full,
            MaxKeys: this.opts.pageSize ?? 1000,
            ContinuationToken,
          }),
        )
      } catch (err) {
        throw this.failure(err, `list ${prefix || '(all)'}`)
      }
      for (const item of page.Contents ?? []) {
        if (item.Key === undefined) continue
        found.push({
          key: this.root ? item.Key.slice(this.root.length + 1) : item.Key,
          bytes: item.Size ?? 0,
        })
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined
      if (page.IsTruncated && !ContinuationToken) {
        throw new PreconditionError(
          `${this.description}: a truncated listing came without a continuation token`,
        )
      }
    } while (ContinuationToken)
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  async delete(keys: string[]): Promise<void> {
    const objectKeys = keys.map((k) => this.objectKey(k))
    // Batches of 1000 (the DeleteObjects maximum), one after the other, so the order given holds.
    for (let i = 0; i < objectKeys.length; i += 1000) {
      const batch = objectKeys.slice(i, i + 1000)
      let errors: { Key?: string; Code?: string; Message?: string }[]
      try {
        const out = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.config.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        )
        errors = out.Errors ?? []
      } catch (err) {
        throw this.failure(err, `delete ${batch.length} object(s)`)
      }
      if (errors.length) {
        const first = errors[0]
        throw new PreconditionError(
          `${this.description}: ${errors.length} object(s) could not be deleted, e.g. ${first?.Key}: ${first?.Code} ${first?.Message ?? ''}`.trim(),
          hint(first?.Code ?? ''),
        )
      }
    }
  }

  async protection(): Promise<Protection> {
    const Bucket = this.config.bucket
    const out: Protection = { versioning: 'unreadable', objectLock: 'unreadable' }
    // A key limited to the bucket's objects may not read its settings: that is said, not failed.
    const unreadable = (err: unknown) => {
      const code = errorCode(err)
      if (!CREDENTIAL_CODES.has(code) && code !== 'NotImplemented')
        throw this.failure(err, 'read bucket settings')
      out.why = code
    }
    try {
      const v = await this.client.send(new GetBucketVersioningCommand({ Bucket }))
      out.versioning = v.Status === 'Enabled' ? 'enabled' : v.Status === 'Suspended' ? 'suspended' : 'off'
    } catch (err) {
      unreadable(err)
    }
    try {
      const l = await this.client.send(new GetObjectLockConfigurationCommand({ Bucket }))
      const c = l.ObjectLockConfiguration
      out.objectLock = c?.ObjectLockEnabled === 'Enabled' ? 'enabled' : 'off'
      const r = c?.Rule?.DefaultRetention
      if (r?.Mode) out.retention = `${r.Mode} ${r.Days ? `${r.Days} days` : `${r.Years} years`}`
    } catch (err) {
      // S3 answers a bucket that never had object lock with this error, not with an empty configuration.
      if (errorCode(err) === 'ObjectLockConfigurationNotFoundError') out.objectLock = 'off'
      else unreadable(err)
    }
    return out
  }

  /** An S3/network error as a PreconditionError; anything else (the body stream's own error) unchanged. */
  private failure(err: unknown, what: string): unknown {
    if (err instanceof IntegrityError || !isS3Error(err)) return err
    const code = errorCode(err)
    const e = err as Error & { $metadata?: { httpStatusCode?: number } }
    const status = e.$metadata?.httpStatusCode ? ` (HTTP ${e.$metadata.httpStatusCode})` : ''
    const detail = e.message && e.message !== code && e.message !== 'UnknownError' ? `: ${e.message}` : ''
    const message = `S3 ${what} failed at ${this.config.endpoint}, bucket ${this.config.bucket}: ${code}${status}${detail}`
    return new PreconditionError(message.split(this.credentials.secretAccessKey).join('[secret]'), hint(code))
  }
}

function hint(code: string): string {
  if (code === 'NoSuchBucket')
    return 'Check the bucket name and region of the backup store in the env file; the bucket must exist (create it in the DigitalOcean control panel).'
  if (CREDENTIAL_CODES.has(code))
    return 'Check the secrets SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY: a Spaces access key with read/write access to this bucket.'
  if (code === 'RequestTimeTooSkewed') return "Fix this machine's clock (NTP), then run again."
  if (NETWORK_CODES.has(code) || code === 'TimeoutError')
    return 'Check the endpoint URL of the backup store and that this machine can reach it, then run again.'
  return 'Run again; if it persists, check https://status.digitalocean.com and the store settings.'
}

function errorCode(err: unknown): string {
  const e = err as { Code?: unknown; name?: unknown; code?: unknown }
  if (typeof e.Code === 'string') return e.Code
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return e.code
  if (typeof e.name === 'string' && e.name !== 'Error') return e.name
  return typeof e.code === 'string' ? e.code : 'UnknownError'
}

function isS3Error(err: unknown): boolean {
  const e = err as { $metadata?: unknown; $fault?: unknown; code?: unknown; name?: unknown }
  return (
    e !== null &&
    typeof e === 'object' &&
    (e.$metadata !== undefined ||
      e.$fault !== undefined ||
      (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) ||
      e.name === 'TimeoutError')
  )
}

function sizeMismatch(key: string, expected: number, got: number): IntegrityError {
  return new IntegrityError(`${key}: expected ${expected} bytes, got ${got}; nothing was stored`)
}

/**
 * DeleteObjects must carry a checksum. Since SDK 3.729 the SDK sends CRC32 even with
 * requestChecksumCalculation WHEN_REQUIRED, which S3-compatibles that want Content-MD5 refuse
 * (MissingContentMD5). This runs after the flexible-checksums middleware (build step, low priority) and
 * before signing, and swaps CRC32 for Content-MD5, as the SDK's own MD5 fallback guide does.
 */
// biome-ignore lint/suspicious/noExplicitAny: the SDK's middleware types are generic over every command
const contentMd5ForDeleteObjects = (next: any, context: { commandName?: string }) => async (args: any) => {
  const request = args.request as { headers?: Record<string, string>; body?: unknown } | undefined
  const body = request?.body
  if (
    context.commandName === 'DeleteObjectsCommand' &&
    request?.headers &&
    (typeof body === 'string' || body instanceof Uint8Array)
  ) {
    for (const name of Object.keys(request.headers)) {
      const lower = name.toLowerCase()
      if (lower.startsWith('x-amz-checksum-') || lower === 'x-amz-sdk-checksum-algorithm')
        delete request.headers[name]
    }
    request.headers['content-md5'] = createHash('md5').update(body).digest('base64')
  }
  return next(args)
}

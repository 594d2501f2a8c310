/**
 * A local S3-compatible server for tests: s3rver 3.7 (a real HTTP S3 fake) on 127.0.0.1, a free port, a
 * temp directory, the given buckets, no logging. Credentials: s3rver's documented defaults, S3RVER/S3RVER.
 *
 * s3rver needs seven shims to behave like S3/Spaces for the operations the backup store uses (each is
 * explained where it is applied, all read from node_modules/s3rver/lib):
 *   1. SigV4 signatures are verified. s3rver only looks up the access key id ("Signature version 4
 *      calculation is unimplemented", middleware/authentication.js), so a wrong secret would pass.
 *   2. AbortMultipartUpload (DELETE ?uploadId) is implemented: s3rver answers MethodNotAllowed, and
 *      lib-storage's Upload then throws that instead of the error that made it abort.
 *   3. ListObjectsV2 pagination: s3rver makes continuation tokens with DES (controllers/bucket.js), which
 *      OpenSSL 3 (Node 17+) only has in its legacy provider, so every truncated V2 listing (over 1000 keys
 *      or MaxKeys) fails with InternalError "digital envelope routines::unsupported".
 *   4. Listings are in key order. s3rver walks its directory tree in readdir order (utils.js) and pages by
 *      "keys after the last one", which loses keys when that order is not S3's (UTF-8 byte order: e.g.
 *      `a-b/x` sorts before `a/x`, but the directory `a` before `a-b`, and ext4 readdir is hash order).
 *   5. Deletes are serialized. DeleteObjects deletes its keys concurrently, and each delete then removes
 *      the directories it emptied (readdirSync + rmdir), so two deletes racing for the same directory
 *      fail with ENOENT: InternalError for the whole batch.
 *   6. Bucket versioning and object lock settings are kept and answered (Get/PutBucketVersioning,
 *      Get/PutObjectLockConfiguration): s3rver answers NotImplemented. Only the settings: no object versions
 *      are kept, so what is tested is that make backups reads them, not what Spaces does with them.
 *   7. Conditional writes: PutObject and CompleteMultipartUpload with `If-None-Match: *` answer 412
 *      PreconditionFailed when the key exists (s3rver ignores the header and overwrites).
 * PutObject, the multipart calls, HeadObject and GetObject work unchanged. s3rver checks no checksums (so
 * it cannot catch the CRC32 trap; lib/store/store-s3.ts handles that) and, like the shim, not the payload
 * hash: signatures cover the headers, including x-amz-content-sha256, not the body.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { type Dirent, existsSync, readdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import type { IncomingMessage, Server } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, posix } from 'node:path'
import type { ParsedUrlQuery } from 'node:querystring'
import { PutBucketVersioningCommand, S3Client } from '@aws-sdk/client-s3'

export const S3RVER_ACCESS_KEY_ID = 'S3RVER'
export const S3RVER_SECRET_ACCESS_KEY = 'S3RVER'
/** The secrets a store needs to talk to this server. */
export const S3RVER_SECRETS = {
  SPACES_ACCESS_KEY_ID: S3RVER_ACCESS_KEY_ID,
  SPACES_SECRET_ACCESS_KEY: S3RVER_SECRET_ACCESS_KEY,
}

/** A second key pair of the same account, narrowed by writerKeyPolicy: it adds objects, nothing more. */
export const S3_WRITER_SECRETS = {
  SPACES_ACCESS_KEY_ID: 'S3WRITER',
  SPACES_SECRET_ACCESS_KEY: 'S3WRITER-secret',
}
/** The full key as the prune key (backup.prune_key). */
export const S3RVER_PRUNE_SECRETS = {
  SPACES_PRUNE_ACCESS_KEY_ID: S3RVER_ACCESS_KEY_ID,
  SPACES_PRUNE_SECRET_ACCESS_KEY: S3RVER_SECRET_ACCESS_KEY,
}

export interface S3Server {
  endpoint: string
  port: number
  /** s3rver's data directory: `<dir>/<bucket>/<key>._S3rver_object` (removed by close). */
  dir: string
  /** Every request received, in order (`PUT /bucket/key?partNumber=1&uploadId=...`). */
  requests: string[]
  close(): Promise<void>
}

// The parts of s3rver (CommonJS, untyped) and its Koa context that the shims touch.
interface Ctx {
  method: string
  path: string
  query: ParsedUrlQuery
  req: IncomingMessage
  status: number
  body: unknown
  get(header: string): string
}
type Middleware = (ctx: Ctx, next: () => Promise<void>) => Promise<void>
interface S3rverApp {
  middleware: Middleware[]
  store: { getResourcePath(bucket: string, key: string | undefined, resource: string): string }
  httpServer?: Server
  run(): Promise<AddressInfo>
  close(): Promise<void>
}
type Walk = (dir: string, recurseFilter?: (dirPath: string) => boolean) => Generator<string>
type DeleteObject = (this: { deleteChain?: Promise<unknown> }, bucket: string, key: string) => Promise<void>
type S3ErrorClass = new (code: string, message: string, detail?: Record<string, unknown>) => Error
interface ListResult {
  Contents: { Key: string; Owner?: unknown }[]
  CommonPrefixes: unknown[]
  IsTruncated: boolean
  NextMarker?: string
  [field: string]: unknown
}

const require = createRequire(import.meta.url)
// Shim 4 must be in place before s3rver's filesystem store loads (it copies `walk` when it does).
const utils = require('s3rver/lib/utils.js') as { walk: Walk; sortedWalkShim?: true }
sortWalk()
const FilesystemStore = require('s3rver/lib/stores/filesystem.js') as {
  prototype: { deleteObject: DeleteObject; serialDeleteShim?: true }
}
serializeDeletes()
const S3rver = require('s3rver') as new (options: Record<string, unknown>) => S3rverApp
const S3Error = require('s3rver/lib/models/error.js') as S3ErrorClass
const accounts = require('s3rver/lib/models/account.js') as {
  registry: Map<string, { accessKeys: Map<string, string> }>
  DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void }
}
const bucketController = require('s3rver/lib/controllers/bucket.js') as {
  getBucket: (ctx: Ctx) => Promise<void>
  listObjectsV2Shim?: true
}

/**
 * `address`: where it listens (default 127.0.0.1). A test whose droplets reach the store themselves (the
 * WAL shipper) passes its droplets' network gateway: this machine's address on a network the test made.
 */
export async function startS3Server(opts: { buckets?: string[]; address?: string } = {}): Promise<S3Server> {
  patchListObjectsV2()
  accounts.DUMMY_ACCOUNT.createKeyPair(
    S3_WRITER_SECRETS.SPACES_ACCESS_KEY_ID,
    S3_WRITER_SECRETS.SPACES_SECRET_ACCESS_KEY,
  )
  const dir = await mkdtemp(join(tmpdir(), 's3rver-'))
  const app = new S3rver({
    address: opts.address ?? '127.0.0.1',
    port: 0,
    silent: true,
    directory: dir,
    vhostBuckets: false,
    configureBuckets: (opts.buckets ?? []).map((name) => ({ name })),
  })
  // Koa composes app.middleware when the server starts (run), so these run first, before s3rver's
  // router; what they throw is rendered as an S3 XML error by s3rver's own ctx.onerror.
  const requests: string[] = []
  const record: Middleware = (ctx, next) => {
    requests.push(`${ctx.method} ${ctx.req.url}`)
    return next()
  }
  app.middleware.unshift(
    record,
    verifySigV4,
    writerKeyPolicy,
    abortMultipartUpload(app),
    bucketSettings(),
    ifNoneMatch(app),
  )
  const { port } = await app.run()
  return {
    endpoint: `http://${opts.address ?? '127.0.0.1'}:${port}`,
    port,
    dir,
    requests,
    async close() {
      const closed = app.close()
      app.httpServer?.closeAllConnections()
      await closed
      await rm(dir, { recursive: true, force: true })
    },
  }
}

// The writer key (S3WRITER): what a bucket policy can make of an everyday key on S3 (deny s3:DeleteObject,
// require s3:if-none-match on writes): it adds objects, never deletes or overwrites one. Spaces' own keys
// cannot be narrowed this far (docs/runbooks/backup.md#protection); the tests use it to show that the
// runbooks need nothing more of the everyday key, and that the prune key is what deletes.
/** A request that makes an object whole: PutObject, or CompleteMultipartUpload (not a part's upload). */
const objectWrite = (ctx: Ctx): boolean =>
  (ctx.method === 'PUT' && ctx.query.partNumber === undefined && ctx.query.uploadId === undefined) ||
  (ctx.method === 'POST' && typeof ctx.query.uploadId === 'string')

const writerKeyPolicy: Middleware = async (ctx, next) => {
  if (!new RegExp(`Credential=${S3_WRITER_SECRETS.SPACES_ACCESS_KEY_ID}/`).test(ctx.get('authorization')))
    return next()
  const deletes = ctx.method === 'DELETE' && ctx.query.uploadId === undefined
  const bulkDelete = ctx.method === 'POST' && 'delete' in ctx.query
  const settings = 'versioning' in ctx.query || 'object-lock' in ctx.query
  if (deletes || bulkDelete || (objectWrite(ctx) && ctx.get('if-none-match') !== '*' && !settings))
    throw Object.assign(new S3Error('AccessDenied', 'Access Denied'), { status: 403, expose: true })
  return next()
}

// Shim 1: verify AWS SigV4 header signatures (the SDK signs every request this way) with the secret of
// the access key from s3rver's own account registry, as S3 does. Anything else is left to s3rver.
const verifySigV4: Middleware = async (ctx, next) => {
  const auth =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8}\/[^/]+\/[^/]+\/aws4_request), ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
      ctx.get('authorization'),
    )
  if (!auth) return next()
  const [, accessKeyId = '', scope = '', signedHeaders = '', signature = ''] = auth
  const secret = accounts.registry.get(accessKeyId)?.accessKeys.get(accessKeyId)
  if (secret === undefined) {
    throw new S3Error(
      'InvalidAccessKeyId',
      'The AWS Access Key Id you provided does not exist in our records.',
      { AWSAccessKeyId: accessKeyId },
    )
  }
  const url = ctx.req.url ?? '/'
  const q = url.indexOf('?')
  const canonicalRequest = [
    ctx.method,
    q < 0 ? url : url.slice(0, q),
    canonicalQuery(q < 0 ? '' : url.slice(q + 1)),
    ...signedHeaders.split(';').map((h) => `${h}:${ctx.get(h).trim().replace(/\s+/g, ' ')}`),
    '',
    signedHeaders,
    ctx.get('x-amz-content-sha256'),
  ].join('\n')
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    ctx.get('x-amz-date'),
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n')
  let key: Buffer = Buffer.from(`AWS4${secret}`)
  for (const part of scope.split('/')) key = createHmac('sha256', key).update(part).digest()
  const expected = createHmac('sha256', key).update(stringToSign).digest()
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
    throw new S3Error(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      { AWSAccessKeyId: accessKeyId },
    )
  }
  return next()
}

const rfc3986 = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

function canonicalQuery(raw: string): string {
  return raw
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const eq = pair.indexOf('=')
      const [k, v] = eq < 0 ? [pair, ''] : [pair.slice(0, eq), pair.slice(eq + 1)]
      return [rfc3986(decodeURIComponent(k)), rfc3986(decodeURIComponent(v))] as const
    })
    .sort(([k1, v1], [k2, v2]) => (k1 < k2 ? -1 : k1 > k2 ? 1 : v1 < v2 ? -1 : v1 > v2 ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&')
}

// Shim 2: AbortMultipartUpload drops the upload's parts (s3rver keeps them in
// <bucket>/._S3rver_uploads/<uploadId>/ until CompleteMultipartUpload).
function abortMultipartUpload(app: S3rverApp): Middleware {
  return async (ctx, next) => {
    const uploadId = ctx.query.uploadId
    if (ctx.method !== 'DELETE' || typeof uploadId !== 'string') return next()
    const bucket = decodeURIComponent(ctx.path.split('/')[1] ?? '')
    const dir = join(app.store.getResourcePath(bucket, undefined, 'uploads'), uploadId)
    if (!/^[0-9a-f]+$/.test(uploadId) || !existsSync(dir)) {
      throw new S3Error('NoSuchUpload', 'The specified upload does not exist.', { UploadId: uploadId })
    }
    await rm(dir, { recursive: true, force: true })
    ctx.status = 204
  }
}

// Shim 7: conditional writes. PutObject and CompleteMultipartUpload with `If-None-Match: *` fail with
// 412 PreconditionFailed when the key already holds an object (S3's documented answer); s3rver ignores
// the header and overwrites.
function ifNoneMatch(app: S3rverApp): Middleware {
  return async (ctx, next) => {
    if (!objectWrite(ctx) || ctx.get('if-none-match') !== '*') return next()
    const [bucket, ...rest] = ctx.path.split('/').slice(1).map(decodeURIComponent)
    if (!bucket || rest.length === 0) return next()
    if (!existsSync(app.store.getResourcePath(bucket, rest.join('/'), 'object'))) return next()
    const err = new S3Error(
      'PreconditionFailed',
      'At least one of the pre-conditions you specified did not hold',
      {
        Condition: 'If-None-Match',
      },
    ) as Error & { status: number; expose: boolean }
    err.status = 412
    err.expose = true
    throw err
  }
}

// Shim 6: a bucket's versioning status and object lock configuration, kept in memory as sent.
function bucketSettings(): Middleware {
  const versioning = new Map<string, string>()
  const objectLock = new Map<string, string>()
  const xml = (ctx: Ctx, body: string) => {
    ctx.status = 200
    ;(ctx as unknown as { type: string }).type = 'application/xml'
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n${body}`
  }
  const readBody = async (ctx: Ctx) => {
    const chunks: Buffer[] = []
    for await (const c of ctx.req) chunks.push(c as Buffer)
    return Buffer.concat(chunks).toString()
  }
  const NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
  return async (ctx, next) => {
    const setting = 'versioning' in ctx.query ? 'versioning' : 'object-lock' in ctx.query ? 'object-lock' : ''
    const bucket = decodeURIComponent(ctx.path.split('/')[1] ?? '')
    if (!setting || !bucket || ctx.path.split('/').filter(Boolean).length !== 1) return next()
    const store = setting === 'versioning' ? versioning : objectLock
    if (ctx.method === 'PUT') {
      const body = await readBody(ctx)
      if (setting === 'versioning') {
        const status = /<Status>(Enabled|Suspended)<\/Status>/.exec(body)?.[1]
        if (!status) throw new S3Error('MalformedXML', 'The XML you provided was not well-formed.')
        store.set(bucket, status)
      } else store.set(bucket, body.replace(/^<\?xml[^>]*>\s*/, ''))
      ctx.status = 200
      ctx.body = ''
      return
    }
    if (ctx.method !== 'GET') return next()
    const kept = store.get(bucket)
    if (setting === 'versioning')
      return xml(
        ctx,
        `<VersioningConfiguration ${NS}>${kept ? `<Status>${kept}</Status>` : ''}</VersioningConfiguration>`,
      )
    if (kept) return xml(ctx, kept)
    // S3's answer for a bucket that never had object lock (404, so the SDK does not retry it).
    const err = new S3Error(
      'ObjectLockConfigurationNotFoundError',
      'Object Lock configuration does not exist for this bucket',
      { BucketName: bucket },
    ) as Error & { status: number; expose: boolean }
    err.status = 404
    err.expose = true
    throw err
  }
}

/** Turns versioning on for a bucket of this server, as its owner would (PutBucketVersioning). */
export async function enableVersioning(s3: S3Server, bucket: string): Promise<void> {
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3RVER_ACCESS_KEY_ID, secretAccessKey: S3RVER_SECRET_ACCESS_KEY },
  })
  try {
    await client.send(
      new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }),
    )
  } finally {
    client.destroy()
  }
}

// Shim 3: serve ListObjectsV2 (list-type=2) with s3rver's V1 listing, which pages by `marker` and needs
// no cipher, and reshape the answer as V2. The continuation token is the base64url of the last key.
function patchListObjectsV2(): void {
  if (bucketController.listObjectsV2Shim) return
  const getBucket = bucketController.getBucket
  bucketController.listObjectsV2Shim = true
  bucketController.getBucket = async (ctx) => {
    const {
      'list-type': listType,
      'continuation-token': token,
      'start-after': startAfter,
      ...rest
    } = ctx.query
    if (listType !== '2') return getBucket(ctx)
    const fetchOwner = rest['fetch-owner'] === 'true'
    delete rest['fetch-owner']
    const marker = typeof token === 'string' ? Buffer.from(token, 'base64url').toString() : startAfter
    ctx.query = marker ? { ...rest, marker } : rest
    await getBucket(ctx)
    const {
      Marker: _marker,
      NextMarker,
      ...v1
    } = (ctx.body as { ListBucketResult: ListResult }).ListBucketResult
    const last = NextMarker ?? v1.Contents.at(-1)?.Key
    ctx.body = {
      ListBucketResult: {
        ...v1,
        StartAfter: token ? undefined : startAfter,
        ContinuationToken: token,
        NextContinuationToken: v1.IsTruncated && last ? Buffer.from(last).toString('base64url') : undefined,
        KeyCount: v1.Contents.length + v1.CommonPrefixes.length,
        Contents: v1.Contents.map(({ Owner, ...c }) => (fetchOwner ? { ...c, Owner } : c)),
      },
    }
  }
}

// Shim 4: walk each directory in the order of the keys it holds: an object file `<name>._S3rver_object`
// stands for the key `<name>`, a directory `<name>` for the keys `<name>/...`.
function sortWalk(): void {
  if (utils.sortedWalkShim) return
  utils.sortedWalkShim = true
  const keyOf = (e: Dirent) => (e.isDirectory() ? `${e.name}/` : e.name.replace(/\._S3rver_.*$/, ''))
  const walk: Walk = function* (dir, recurseFilter) {
    const entries = readdirSync(dir, { withFileTypes: true })
      .map((e) => ({ e, key: keyOf(e) }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.e.name < b.e.name ? -1 : 1))
    for (const { e } of entries) {
      const path = posix.join(dir, e.name)
      if (!e.isDirectory()) yield path
      else if (!recurseFilter || recurseFilter(path)) yield* walk(path, recurseFilter)
    }
  }
  utils.walk = walk
}

// Shim 5: one object delete at a time per store, so the directory clean-up after each does not race.
function serializeDeletes(): void {
  const proto = FilesystemStore.prototype
  if (proto.serialDeleteShim) return
  proto.serialDeleteShim = true
  const deleteObject = proto.deleteObject
  proto.deleteObject = function (bucket, key) {
    const run = (this.deleteChain ?? Promise.resolve()).then(() => deleteObject.call(this, bucket, key))
    this.deleteChain = run.catch(() => {})
    return run
  }
}

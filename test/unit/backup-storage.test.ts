import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import * as assert from 'uvu/assert'
import {
  completeKey,
  listBackups,
  manifestKey,
  markComplete,
  partKey,
  resolveBackup,
} from '../../lib/backup/catalog.ts'
import { generateBackupKey, Keyring } from '../../lib/backup/keys.ts'
import { applyRetention, planRetention } from '../../lib/backup/retention.ts'
import { InputError, IntegrityError, PreconditionError, type RunbookError } from '../../lib/report/errors.ts'
import { type BackupStore, openStore } from '../../lib/store/storage.ts'
import { ObjectExistsError } from '../../lib/store/store.ts'
import { suite } from '../harness.ts'
import {
  S3_WRITER_SECRETS,
  S3RVER_PRUNE_SECRETS,
  S3RVER_SECRETS,
  type S3Server,
  startS3Server,
} from '../sandbox/s3.ts'

const MiB = 1024 * 1024
const BUCKET = 'backups'
const PREFIX = 'ce/prod-backups'
const BLOCK = randomBytes(MiB)

// ---------- helpers ----------

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** `total` bytes in 1 MiB chunks, each unique (its index stamped in), so a reordered part shows. */
function patterned(
  total: number,
  opts: { failAfter?: number; gate?: Promise<void>; gateAfter?: number } = {},
) {
  const hash = createHash('sha256')
  const result = { sha256: '', consumed: false, reachedGate: false }
  async function* gen() {
    for (let at = 0, i = 0; at < total; i++) {
      if (opts.failAfter !== undefined && at >= opts.failAfter) throw new Error('source broke midway')
      if (opts.gate && opts.gateAfter !== undefined && at >= opts.gateAfter && !result.reachedGate) {
        result.reachedGate = true
        await opts.gate
      }
      const chunk = Buffer.from(BLOCK.subarray(0, Math.min(MiB, total - at)))
      if (chunk.length >= 4) chunk.writeUInt32BE(i, 0)
      hash.update(chunk)
      at += chunk.length
      yield chunk
    }
    result.sha256 = hash.digest('hex')
    result.consumed = true
  }
  return { stream: Readable.from(gen(), { objectMode: false }), result }
}

async function rejects(work: Promise<unknown>): Promise<RunbookError> {
  try {
    await work
  } catch (err) {
    return err as RunbookError
  }
  throw new Error('expected a rejection')
}

/** Every file under dir, relative, `/`-separated (what is really on disk). */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (rel: string) => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(`${rel}${e.name}/`)
      else out.push(`${rel}${e.name}`)
    }
  }
  await walk('')
  return out.sort()
}

async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** The store with some methods replaced (to record or to fail). */
function wrap(store: BackupStore, over: Partial<BackupStore>): BackupStore {
  return {
    description: store.description,
    put: (k, b, o) => store.put(k, b, o),
    get: (k) => store.get(k),
    head: (k) => store.head(k),
    list: (p) => store.list(p),
    delete: (keys) => store.delete(keys),
    ...over,
  }
}

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++] as T)
    }),
  )
}

// ---------- the same behaviour, for both stores ----------

interface Fixture {
  store: BackupStore
  /** What is left on disk besides whole objects: temp files (local), multipart parts (S3). */
  leftovers(): Promise<string[]>
  /** S3 only: the requests the server saw. */
  requests?: string[]
  close(): Promise<void>
}

async function localFixture(): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'backup-store-'))
  const store = openStore({ type: 'local', dir: join(dir, 'store') })
  return {
    store,
    leftovers: async () => (await filesUnder(join(dir, 'store'))).filter((f) => f.includes('.tmp-')),
    close: () => rm(dir, { recursive: true, force: true }),
  }
}

async function s3Fixture(): Promise<Fixture> {
  const server = await startS3Server({ buckets: [BUCKET] })
  const store = openStore(
    { type: 's3', endpoint: server.endpoint, region: 'us-east-1', bucket: BUCKET, prefix: PREFIX },
    S3RVER_SECRETS,
    { maxAttempts: 1 },
  )
  return {
    store,
    requests: server.requests,
    leftovers: async () =>
      (await filesUnder(join(server.dir, BUCKET))).filter((f) => f.includes('_S3rver_uploads')),
    close: () => server.close(),
  }
}

for (const [kind, open] of [
  ['local', localFixture],
  ['s3', s3Fixture],
] as const) {
  const test = suite(`backup store (${kind})`, { timeoutS: 60 })
  let f: Fixture
  let store: BackupStore
  test.before(async () => {
    f = await open()
    store = f.store
  })
  test.after(() => f.close())

  test('put/get round trip of a small buffer; head gives its size, and nothing for a missing key', async () => {
    const body = Buffer.from('{"hello":"backup"}\n')
    assert.equal(await store.put('prod/20261126T123000Z/manifest.enc', body), { bytes: body.length })
    assert.equal(await readAll(await store.get('prod/20261126T123000Z/manifest.enc')), body)
    assert.equal(await store.head('prod/20261126T123000Z/manifest.enc'), { bytes: body.length })
    assert.is(await store.head('prod/20261126T123000Z/nope.enc'), undefined)
    assert.is(await store.head('prod/nowhere/at/all'), undefined)
  })

  test('a 40 MiB stream round trips byte for byte (multipart on S3)', async () => {
    const total = 40 * MiB + 12345
    const source = patterned(total)
    assert.equal(await store.put('big/db.enc', source.stream), { bytes: total })
    assert.ok(source.result.consumed)
    assert.equal(await store.head('big/db.enc'), { bytes: total })
    const back = await readAll(await store.get('big/db.enc'))
    assert.is(back.length, total)
    assert.is(sha256(back), source.result.sha256)
    if (f.requests) {
      // 8 MiB parts: 6 of them (the last one short), in one multipart upload.
      const parts = f.requests.filter(
        (r) => r.startsWith('PUT ') && r.includes('/big/db.enc?') && r.includes('partNumber='),
      )
      assert.is(parts.length, 6, parts.join('\n'))
      assert.ok(f.requests.some((r) => r.startsWith('POST ') && r.includes('/big/db.enc?uploads')))
    }
  })

  test('a missing object is an IntegrityError naming the object and the store', async () => {
    const err = await rejects(store.get('prod/20261126T123000Z/db.enc'))
    assert.instance(err, IntegrityError)
    assert.is(err.message, `missing object prod/20261126T123000Z/db.enc in ${store.description}`)
    assert.is(err.exitCode, 3)
    assert.match(err.next ?? '', 'make backups')
  })

  test('list returns all of 1005 keys (more than one page), sorted, with sizes, under the prefix only', async () => {
    const keys = Array.from({ length: 1005 }, (_, i) => `many/k${String(i).padStart(4, '0')}`)
    await mapLimit(keys, 16, (k) => store.put(k, Buffer.from(k.slice(-2))))
    await store.put('manyother/x', Buffer.from('not under many/'))
    await store.put('many-not/x', Buffer.from('nor this'))
    const listed = await store.list('many/')
    assert.is(listed.length, 1005)
    assert.equal(
      listed.map((e) => e.key),
      keys,
    )
    assert.ok(listed.every((e) => e.bytes === 2))
    assert.equal(
      (await store.list('many/k100')).map((e) => e.key),
      ['many/k1000', 'many/k1001', 'many/k1002', 'many/k1003', 'many/k1004'],
    )
    assert.equal((await store.list('many')).length, 1007)
    if (f.requests)
      assert.ok(f.requests.some((r) => r.includes('list-type=2') && r.includes('continuation-token=')))
    // And DeleteObjects in batches of at most 1000.
    await store.delete(keys)
    assert.equal(await store.list('many/'), [])
    assert.equal((await store.list('many')).length, 2)
  })

  test('delete removes the given keys, ignores missing ones, leaves the rest', async () => {
    for (const k of ['d/1', 'd/2', 'd/sub/3', 'd/keep']) await store.put(k, Buffer.from(k))
    await store.delete(['d/1', 'd/sub/3', 'd/never-was'])
    assert.equal(
      (await store.list('d/')).map((e) => e.key),
      ['d/2', 'd/keep'],
    )
    assert.is(await store.head('d/1'), undefined)
    assert.equal(await readAll(await store.get('d/keep')), Buffer.from('d/keep'))
    await store.delete([])
  })

  test('a body stream that fails midway leaves no object and no partial data', async () => {
    for (const [key, total, failAfter] of [
      ['fail/small.enc', 2 * MiB, MiB],
      ['fail/large.enc', 40 * MiB, 20 * MiB],
    ] as const) {
      const { stream } = patterned(total, { failAfter })
      const err = await rejects(store.put(key, stream))
      assert.is(err.message, 'source broke midway', 'the source error comes through unchanged')
      assert.is(await store.head(key), undefined)
      assert.equal(await store.list('fail/'), [])
      assert.equal(await f.leftovers(), [])
    }
    if (f.requests) {
      // The large one had started a multipart upload: it was aborted, not left behind.
      assert.ok(f.requests.some((r) => r.startsWith('DELETE ') && r.includes('/fail/large.enc?uploadId=')))
    }
  })

  test('an object is not visible while its upload is in progress', async () => {
    let release = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const total = 12 * MiB
    const source = patterned(total, { gate, gateAfter: 10 * MiB })
    const put = store.put('slow/db.enc', source.stream)
    for (let i = 0; i < 500 && !source.result.reachedGate; i++) await new Promise((r) => setTimeout(r, 10))
    assert.ok(source.result.reachedGate, 'the upload read up to the gate')
    assert.is(await store.head('slow/db.enc'), undefined)
    assert.equal(await store.list('slow/'), [])
    release()
    assert.equal(await put, { bytes: total })
    assert.equal(await store.head('slow/db.enc'), { bytes: total })
  })

  test('a size that does not match opts.size fails the put and stores nothing', async () => {
    const err = await rejects(store.put('size/a.enc', patterned(3 * MiB).stream, { size: 3 * MiB + 1 }))
    assert.instance(err, IntegrityError)
    assert.match(err.message, `expected ${3 * MiB + 1} bytes, got ${3 * MiB}`)
    assert.is(await store.head('size/a.enc'), undefined)
    const err2 = await rejects(store.put('size/b.enc', Buffer.from('abc'), { size: 4 }))
    assert.instance(err2, IntegrityError)
    assert.is(await store.head('size/b.enc'), undefined)
    assert.equal(await store.put('size/c.enc', Buffer.from('abc'), { size: 3 }), { bytes: 3 })
    assert.equal(await f.leftovers(), [])
  })

  test('a put never overwrites: the second put of a key is ObjectExistsError, the first object stays whole', async () => {
    await store.put('over/x', Buffer.alloc(5000, 1))
    const err = await rejects(store.put('over/x', Buffer.from('short')))
    assert.instance(err, ObjectExistsError)
    assert.match(err.message, 'over/x already exists in ')
    assert.equal(await readAll(await store.get('over/x')), Buffer.alloc(5000, 1))
    // A multipart upload (S3: If-None-Match on CompleteMultipartUpload) is refused the same way.
    const big = Buffer.alloc(9 * 1024 * 1024, 2)
    assert.instance(await rejects(store.put('over/x', Readable.from([big]))), ObjectExistsError)
    assert.equal(await store.head('over/x'), { bytes: 5000 })
    assert.equal(await f.leftovers(), [])
  })

  test('keys with .., a leading /, or empty segments are refused before anything is written', async () => {
    for (const key of ['../escape', 'a/../../b', '/abs/key', 'a//b', 'a/', '', './a']) {
      const err = await rejects(store.put(key, Buffer.from('x')))
      assert.instance(err, InputError, key)
      assert.match(err.message, JSON.stringify(key))
    }
    const err = await rejects(store.get('../etc/passwd'))
    assert.instance(err, InputError)
    const listErr = await rejects(store.list('../'))
    assert.instance(listErr, InputError)
    assert.equal(await store.list('escape'), [])
  })

  test.run()
}

// ---------- S3 specifics: errors, layout, paging ----------

{
  const test = suite('backup store (s3 errors and layout)', { timeoutS: 60 })
  let server: S3Server
  const config = (over: Partial<{ endpoint: string; bucket: string; prefix: string }> = {}) => ({
    type: 's3' as const,
    endpoint: server.endpoint,
    region: 'us-east-1',
    bucket: BUCKET,
    prefix: PREFIX,
    ...over,
  })
  test.before(async () => {
    server = await startS3Server({ buckets: [BUCKET] })
  })
  test.after(() => server.close())

  test('objects live at <prefix>/<key> in the bucket; the description names bucket, prefix and endpoint', async () => {
    const store = openStore(config({ prefix: '/ce/prod-backups/' }), S3RVER_SECRETS, { maxAttempts: 1 })
    assert.is(store.description, `s3://${BUCKET}/${PREFIX}/ at ${server.endpoint}`)
    assert.not.match(store.description, 'S3RVER')
    await store.put('prod/20261126T123000Z/COMPLETE', Buffer.from('{}'))
    const onDisk = await filesUnder(join(server.dir, BUCKET))
    assert.ok(onDisk.includes(`${PREFIX}/prod/20261126T123000Z/COMPLETE._S3rver_object`), onDisk.join('\n'))
    assert.equal(await store.list('prod/'), [{ key: 'prod/20261126T123000Z/COMPLETE', bytes: 2 }])
    const noPrefix = openStore(config({ prefix: '' }), S3RVER_SECRETS, { maxAttempts: 1 })
    assert.equal(
      (await noPrefix.list('')).map((e) => e.key),
      [`${PREFIX}/prod/20261126T123000Z/COMPLETE`],
    )
  })

  test('listing follows continuation tokens page by page (page size 7)', async () => {
    const store = openStore(config({ prefix: 'paged' }), S3RVER_SECRETS, { maxAttempts: 1, pageSize: 7 })
    const keys = Array.from({ length: 20 }, (_, i) => `p/${String(i).padStart(2, '0')}`)
    await mapLimit(keys, 8, (k) => store.put(k, Buffer.from('x')))
    const before = server.requests.length
    assert.equal(
      (await store.list('p/')).map((e) => e.key),
      keys,
    )
    const lists = server.requests.slice(before).filter((r) => r.includes('list-type=2'))
    assert.is(lists.length, 3)
    assert.is(lists.filter((r) => r.includes('continuation-token=')).length, 2)
  })

  test('a wrong secret key is refused: SignatureDoesNotMatch, endpoint and bucket named, secret not', async () => {
    const secret = 'wrong-secret-value-0123456789'
    const store = openStore(
      config(),
      { ...S3RVER_SECRETS, SPACES_SECRET_ACCESS_KEY: secret },
      { maxAttempts: 1 },
    )
    for (const work of [() => store.put('x', Buffer.from('1')), () => store.list(''), () => store.get('x')]) {
      const err = await rejects(work())
      assert.instance(err, PreconditionError)
      assert.not.instance(err, IntegrityError)
      assert.match(err.message, 'SignatureDoesNotMatch')
      assert.match(err.message, server.endpoint)
      assert.match(err.message, `bucket ${BUCKET}`)
      assert.not.match(err.message, secret)
      assert.match(err.next ?? '', 'SPACES_SECRET_ACCESS_KEY')
    }
  })

  test('an unknown access key is refused with InvalidAccessKeyId', async () => {
    const store = openStore(
      config(),
      { ...S3RVER_SECRETS, SPACES_ACCESS_KEY_ID: 'DO00NOTAKEY' },
      { maxAttempts: 1 },
    )
    const err = await rejects(store.list(''))
    assert.instance(err, PreconditionError)
    assert.match(err.message, 'InvalidAccessKeyId')
    assert.match(err.next ?? '', 'SPACES_ACCESS_KEY_ID')
  })

  test('a bucket that does not exist: NoSuchBucket, naming the bucket, for put, list and get', async () => {
    const store = openStore(config({ bucket: 'no-such-bucket' }), S3RVER_SECRETS, { maxAttempts: 1 })
    for (const work of [() => store.put('x', Buffer.from('1')), () => store.list(''), () => store.get('x')]) {
      const err = await rejects(work())
      assert.instance(err, PreconditionError)
      assert.not.instance(err, IntegrityError)
      assert.match(err.message, 'NoSuchBucket')
      assert.match(err.message, 'bucket no-such-bucket')
      assert.match(err.next ?? '', 'bucket name')
    }
  })

  test('an unreachable endpoint is a PreconditionError naming it', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`
    const store = openStore(config({ endpoint }), S3RVER_SECRETS, { maxAttempts: 1 })
    const err = await rejects(store.list(''))
    assert.instance(err, PreconditionError)
    assert.match(err.message, endpoint)
    assert.match(err.message, 'ECONNREFUSED')
    assert.match(err.next ?? '', 'endpoint')
  })

  test('missing secrets are an InputError naming them', () => {
    assert.throws(
      () => openStore(config(), { SPACES_ACCESS_KEY_ID: 'x' }),
      (err: Error) => err instanceof InputError && /SPACES_SECRET_ACCESS_KEY/.test(err.message),
    )
    assert.throws(
      () => openStore(config(), {}),
      (err: Error) => /SPACES_ACCESS_KEY_ID, SPACES_SECRET_ACCESS_KEY/.test(err.message),
    )
    // The prune key is asked for by its own names, and said to be held by people.
    assert.throws(
      () => openStore(config(), S3RVER_SECRETS, {}, 'prune'),
      (err: Error) =>
        err instanceof InputError &&
        /SPACES_PRUNE_ACCESS_KEY_ID, SPACES_PRUNE_SECRET_ACCESS_KEY/.test(err.message) &&
        /held by people/.test((err as InputError).next ?? ''),
    )
  })

  test('a writer key (adds, never deletes) is enough to write; only the prune key deletes', async () => {
    const writer = openStore(config({ prefix: 'writer' }), S3_WRITER_SECRETS, { maxAttempts: 1 })
    const pruner = openStore(config({ prefix: 'writer' }), S3RVER_PRUNE_SECRETS, { maxAttempts: 1 }, 'prune')
    await writer.put('prod/a/COMPLETE', Buffer.from('{}'))
    await writer.put('prod/a/big.enc', Readable.from([Buffer.alloc(9 * 1024 * 1024, 3)]))
    assert.instance(await rejects(writer.put('prod/a/COMPLETE', Buffer.from('{"x":1}'))), ObjectExistsError)
    const denied = await rejects(writer.delete(['prod/a/COMPLETE']))
    assert.match(denied.message, 'AccessDenied')
    assert.not.match(denied.message, S3_WRITER_SECRETS.SPACES_SECRET_ACCESS_KEY)
    assert.equal((await writer.list('prod/')).length, 2)
    await pruner.delete(['prod/a/COMPLETE', 'prod/a/big.enc'])
    assert.equal(await writer.list('prod/'), [])
  })

  test.run()
}

// ---------- local specifics: modes, temp files, pruning ----------

{
  const test = suite('backup store (local files)')
  let dir: string
  let store: BackupStore
  test.before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'backup-local-'))
    store = openStore({ type: 'local', dir: join(dir, 'root') })
  })
  test.after(() => rm(dir, { recursive: true, force: true }))

  test('files are 0600, directories 0700, no temp files remain; description is the directory', async () => {
    await store.put('prod/20261126T123000Z/db.enc', patterned(3 * MiB).stream)
    await store.put('prod/20261126T123000Z/COMPLETE', Buffer.from('{}'))
    assert.is(store.description, `dir ${join(dir, 'root')}`)
    const mode = async (p: string) => (await stat(join(dir, 'root', p))).mode & 0o777
    assert.is(await mode('prod/20261126T123000Z/db.enc'), 0o600)
    assert.is(await mode('prod/20261126T123000Z/COMPLETE'), 0o600)
    assert.is(await mode('prod'), 0o700)
    assert.is(await mode('prod/20261126T123000Z'), 0o700)
    assert.equal(await filesUnder(join(dir, 'root')), [
      'prod/20261126T123000Z/COMPLETE',
      'prod/20261126T123000Z/db.enc',
    ])
  })

  test('while a put is in progress only a hidden temp file exists, and list does not show it', async () => {
    let release = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const source = patterned(2 * MiB, { gate, gateAfter: MiB })
    const put = store.put('tmp/x.enc', source.stream)
    for (let i = 0; i < 500 && !source.result.reachedGate; i++) await new Promise((r) => setTimeout(r, 10))
    const during = await filesUnder(join(dir, 'root', 'tmp'))
    assert.is(during.length, 1)
    assert.match(during[0] ?? '', /^\.x\.enc\.tmp-\d+-[0-9a-f]{12}$/)
    assert.equal(await store.list('tmp/'), [])
    release()
    await put
    assert.equal(await filesUnder(join(dir, 'root', 'tmp')), ['x.enc'])
  })

  test('delete prunes the directories it emptied, never the root', async () => {
    await store.put('gone/a/b/c', Buffer.from('1'))
    await store.delete(['gone/a/b/c'])
    assert.equal(await readdir(join(dir, 'root', 'gone')).catch(() => 'absent'), 'absent')
    await store.delete(await store.list('').then((l) => l.map((e) => e.key)))
    assert.equal(await readdir(join(dir, 'root')), [])
  })

  test.run()
}

// ---------- the catalog and retention, against the local store ----------

{
  const test = suite('backup catalog (local store)')
  const ENV = 'prod'
  const RING = Keyring.fromSecrets({ BACKUP_KEY: generateBackupKey() })
  let dir: string
  let store: BackupStore

  async function makeBackup(env: string, id: string, parts: Record<string, number>, complete = true) {
    for (const [name, bytes] of Object.entries(parts))
      await store.put(partKey(env, id, name), Buffer.alloc(bytes, 7))
    await store.put(manifestKey(env, id), Buffer.from('manifest'))
    if (complete)
      await markComplete(store, env, id, { parts, manifest_bytes: 8 }, RING, new Date('2026-11-26T13:00:00Z'))
  }

  test.before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'backup-catalog-'))
    store = openStore({ type: 'local', dir })
    await makeBackup(ENV, '20261124T020000Z', { db: 100, uploads: 50 })
    await makeBackup(ENV, '20261125T020000Z', { db: 120, uploads: 50 })
    await makeBackup(ENV, '20261126T020000Z', { db: 10 }, false) // interrupted: no COMPLETE
    await makeBackup(ENV, '20261123T020000Z', { db: 90 })
    await store.delete([partKey(ENV, '20261123T020000Z', 'db')]) // damaged after completion
    await makeBackup('staging', '20261126T030000Z', { db: 1 })
    await store.put(`${ENV}/notes.txt`, Buffer.from('not a backup'))
    await store.put(`${ENV}/not-an-id/db.enc`, Buffer.from('nor this'))
  })
  test.after(() => rm(dir, { recursive: true, force: true }))

  test('listBackups: newest first, completeness checked against the marker, parts and bytes', async () => {
    const entries = await listBackups(store, ENV)
    assert.equal(
      entries.map((e) => [e.id, e.complete]),
      [
        ['20261126T020000Z', false],
        ['20261125T020000Z', true],
        ['20261124T020000Z', true],
        ['20261123T020000Z', false],
      ],
    )
    const [interrupted, latest, , damaged] = entries
    assert.equal(latest?.parts, ['db', 'uploads'])
    assert.equal(latest?.createdAt, new Date('2026-11-25T02:00:00Z'))
    const marker = await readAll(await store.get(completeKey(ENV, '20261125T020000Z')))
    assert.is(latest?.bytes, 120 + 50 + 8 + marker.length)
    const { mac, ...fields } = JSON.parse(marker.toString())
    assert.equal(fields, {
      id: '20261125T020000Z',
      completed_at: '2026-11-26T13:00:00.000Z',
      parts: { db: 120, uploads: 50 },
      manifest_bytes: 8,
      key_id: RING.current.id,
    })
    assert.match(mac, /^[0-9a-f]{64}$/)
    assert.is(interrupted?.problem, undefined)
    assert.equal(interrupted?.parts, ['db'])
    assert.is(damaged?.problem, 'part db (db.enc) is missing')
    assert.equal(
      (await listBackups(store, 'staging')).map((e) => e.id),
      ['20261126T030000Z'],
    )
    assert.equal(await listBackups(store, 'nobody'), [])
  })

  test('resolveBackup: the latest complete one (never an incomplete one), or the one asked for', async () => {
    const entries = await listBackups(store, ENV)
    assert.is(resolveBackup(entries).id, '20261125T020000Z')
    assert.is(resolveBackup(entries, '20261124T020000Z').id, '20261124T020000Z')
    assert.is(resolveBackup(entries, '').id, '20261125T020000Z')
  })

  test('resolveBackup refuses an incomplete, unknown or malformed id, listing the latest ids', async () => {
    const entries = await listBackups(store, ENV)
    const refuse = (id: string) => {
      try {
        resolveBackup(entries, id, { env: ENV, store: store.description })
      } catch (err) {
        assert.instance(err, InputError)
        return (err as Error).message
      }
      throw new Error(`${id} was accepted`)
    }
    const incomplete = refuse('20261126T020000Z')
    assert.match(incomplete, 'BACKUP=20261126T020000Z is incomplete (no COMPLETE marker')
    assert.match(incomplete, '  - 20261125T020000Z\n')
    const damaged = refuse('20261123T020000Z')
    assert.match(damaged, 'is incomplete (part db (db.enc) is missing)')
    const unknown = refuse('20250101T000000Z')
    assert.match(unknown, 'BACKUP=20250101T000000Z does not exist for prod. The latest backups:')
    assert.match(unknown, '  - 20261126T020000Z (incomplete)\n  - 20261125T020000Z\n  - 20261124T020000Z')
    assert.match(refuse('latest'), 'BACKUP="latest" is not a backup id')
  })

  test('resolveBackup with no complete backup is a PreconditionError naming env and store', async () => {
    const entries = (await listBackups(store, ENV)).filter((e) => !e.complete)
    try {
      resolveBackup(entries, undefined, { env: ENV, store: store.description })
      assert.unreachable('resolved')
    } catch (err) {
      assert.instance(err, PreconditionError)
      assert.match((err as Error).message, `no complete backup for prod in ${store.description}`)
      assert.match((err as Error).message, 'only incomplete ones: 20261126T020000Z')
    }
    assert.throws(
      () => resolveBackup([], undefined, { env: 'qa', store: 'dir /x' }),
      /no complete backup for qa in dir \/x$/,
    )
  })

  test('markComplete refuses when a part is missing or its size differs, and writes no marker', async () => {
    const id = '20261120T020000Z'
    await makeBackup(ENV, id, { db: 30 }, false)
    const wrongSize = await rejects(
      markComplete(store, ENV, id, { parts: { db: 31 }, manifest_bytes: 8 }, RING),
    )
    assert.instance(wrongSize, IntegrityError)
    assert.match(wrongSize.message, 'part db (db.enc) has 30 bytes, the marker says 31')
    const missing = await rejects(
      markComplete(store, ENV, id, { parts: { db: 30, wal: 5 }, manifest_bytes: 8 }, RING),
    )
    assert.match(missing.message, 'part wal (wal.enc) is missing')
    assert.is(await store.head(completeKey(ENV, id)), undefined)
    await store.delete((await store.list(`${ENV}/${id}/`)).map((e) => e.key))
  })

  test('applyRetention deletes the COMPLETE marker first, then every object of the backup', async () => {
    const calls: string[][] = []
    const recording = wrap(store, {
      delete: async (keys) => {
        calls.push(keys)
        await store.delete(keys)
      },
    })
    const now = new Date('2026-11-26T12:00:00Z')
    const plan = planRetention(
      await listBackups(store, ENV),
      { keepDaily: 1, keepWeekly: 0, keepMonthly: 0 },
      now,
    )
    assert.equal(
      plan.delete.map((d) => d.id),
      ['20261124T020000Z', '20261123T020000Z'],
    )
    const done = await applyRetention(recording, ENV, plan)
    assert.equal(done.deleted, ['20261124T020000Z', '20261123T020000Z'])
    assert.equal(calls[0], [completeKey(ENV, '20261124T020000Z')])
    assert.ok(!calls[1]?.includes(completeKey(ENV, '20261124T020000Z')))
    assert.is(calls[1]?.length, 3)
    assert.equal(calls[2], [completeKey(ENV, '20261123T020000Z')])
    assert.equal(
      (await listBackups(store, ENV)).map((e) => e.id),
      ['20261126T020000Z', '20261125T020000Z'],
    )
    assert.equal(await store.list(`${ENV}/20261124T020000Z/`), [])
  })

  test('a retention run that dies after the marker went leaves a backup that no longer counts as complete', async () => {
    await makeBackup(ENV, '20261101T020000Z', { db: 10 })
    let deletes = 0
    const dying = wrap(store, {
      delete: async (keys) => {
        if (++deletes > 1) throw new Error('connection lost')
        await store.delete(keys)
      },
    })
    const plan = {
      keep: [],
      delete: [{ id: '20261101T020000Z', reason: 'test' }],
    }
    const err = await rejects(applyRetention(dying, ENV, plan))
    assert.is(err.message, 'connection lost')
    const entry = (await listBackups(store, ENV)).find((e) => e.id === '20261101T020000Z')
    assert.is(entry?.complete, false)
    assert.equal(entry?.parts, ['db'])
  })

  test('applyRetention refuses a plan that keeps and deletes the same id', async () => {
    const err = await rejects(
      applyRetention(store, ENV, {
        keep: [{ id: '20261125T020000Z', reasons: ['x'] }],
        delete: [{ id: '20261125T020000Z', reason: 'y' }],
      }),
    )
    assert.instance(err, InputError)
    assert.ok(await store.head(completeKey(ENV, '20261125T020000Z')))
  })

  test.run()
}

// ---------- signed COMPLETE markers: planted, modified, moved, future-dated, legacy ----------

{
  const test = suite('backup markers (signed)')
  const RING_KEY = generateBackupKey()
  const OTHER_KEY = generateBackupKey()
  const RING = Keyring.fromSecrets({ BACKUP_KEY: RING_KEY })
  const OTHER = Keyring.fromSecrets({ BACKUP_KEY: OTHER_KEY })
  const NOW = new Date('2026-11-30T12:00:00Z')
  let dir: string
  let store: BackupStore

  async function objects(env: string, id: string, parts: Record<string, number>) {
    for (const [name, bytes] of Object.entries(parts))
      await store.put(partKey(env, id, name), Buffer.alloc(bytes, 7))
    await store.put(manifestKey(env, id), Buffer.from('manifest'))
  }
  const markerOf = async (env: string, id: string) =>
    JSON.parse((await readAll(await store.get(completeKey(env, id)))).toString()) as Record<string, unknown>
  /** What someone with a writing key does to an object (a put never overwrites: delete, then put). */
  const replace = async (key: string, body: Buffer) => {
    await store.delete([key])
    await store.put(key, body)
  }
  const putMarker = (env: string, id: string, m: unknown) =>
    replace(completeKey(env, id), Buffer.from(JSON.stringify(m)))
  /** keyring null: listed without one. */
  const list = (env = 'prod', keyring: Keyring | null = RING) =>
    listBackups(store, env, { keyring: keyring ?? undefined, now: NOW })
  const entry = async (id: string, env = 'prod', keyring: Keyring | null = RING) =>
    (await list(env, keyring)).find((e) => e.id === id)

  test.before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'backup-markers-'))
    store = openStore({ type: 'local', dir })
    await objects('prod', '20261128T020000Z', { db: 10 })
    await markComplete(store, 'prod', '20261128T020000Z', { parts: { db: 10 }, manifest_bytes: 8 }, RING, NOW)
  })
  test.after(() => rm(dir, { recursive: true, force: true }))

  test('a signed marker verifies with the keyring and is the latest', async () => {
    const e = await entry('20261128T020000Z')
    assert.is(e?.complete, true)
    assert.is(e?.marker, 'signed')
    assert.is(resolveBackup(await list()).id, '20261128T020000Z')
    // Without the keyring (health's age check) it still counts, as unverified.
    assert.is((await entry('20261128T020000Z', 'prod', null))?.marker, 'unverified')
  })

  test('a planted marker (no key) never makes a backup complete, nor the latest', async () => {
    // Planted objects and a marker that copies a real one's shape, with a made-up mac.
    await objects('prod', '20261129T020000Z', { db: 10 })
    const real = await markerOf('prod', '20261128T020000Z')
    await putMarker('prod', '20261129T020000Z', { ...real, id: '20261129T020000Z', mac: 'ab'.repeat(32) })
    const planted = await entry('20261129T020000Z')
    assert.is(planted?.complete, false)
    assert.match(
      planted?.problem ?? '',
      'its COMPLETE marker failed authentication: it was planted or modified',
    )
    assert.is(resolveBackup(await list()).id, '20261128T020000Z')
  })

  test('a modified signed marker fails: sizes changed with the objects, or another completed_at', async () => {
    await objects('prod', '20261127T020000Z', { db: 10 })
    await markComplete(store, 'prod', '20261127T020000Z', { parts: { db: 10 }, manifest_bytes: 8 }, RING, NOW)
    const good = await markerOf('prod', '20261127T020000Z')
    await replace(partKey('prod', '20261127T020000Z', 'db'), Buffer.alloc(11, 7))
    await putMarker('prod', '20261127T020000Z', { ...good, parts: { db: 11 } })
    assert.match((await entry('20261127T020000Z'))?.problem ?? '', 'failed authentication')
    await replace(partKey('prod', '20261127T020000Z', 'db'), Buffer.alloc(10, 7))
    await putMarker('prod', '20261127T020000Z', { ...good, completed_at: '2026-11-29T00:00:00.000Z' })
    assert.match((await entry('20261127T020000Z'))?.problem ?? '', 'failed authentication')
    await putMarker('prod', '20261127T020000Z', good)
    assert.is((await entry('20261127T020000Z'))?.complete, true, 'the untouched marker verifies again')
  })

  test("a marker copied to another env's backup of the same id fails (the env is signed too)", async () => {
    await objects('staging', '20261128T020000Z', { db: 10 })
    await putMarker('staging', '20261128T020000Z', await markerOf('prod', '20261128T020000Z'))
    const moved = await entry('20261128T020000Z', 'staging')
    assert.is(moved?.complete, false)
    assert.match(moved?.problem ?? '', 'failed authentication')
  })

  test('a marker signed with a key the keyring lacks: incomplete, says which key, and retention keeps it', async () => {
    await objects('prod', '20261126T020000Z', { db: 10 })
    await markComplete(
      store,
      'prod',
      '20261126T020000Z',
      { parts: { db: 10 }, manifest_bytes: 8 },
      OTHER,
      NOW,
    )
    const e = await entry('20261126T020000Z')
    assert.is(e?.complete, false)
    assert.is(e?.unknownKey, OTHER.current.id)
    assert.match(e?.problem ?? '', `signed with key id ${OTHER.current.id}, which is not in the keyring`)
    assert.match(e?.problem ?? '', 'BACKUP_KEY_PREVIOUS')
    const plan = planRetention(await list(), { keepDaily: 1, keepWeekly: 0, keepMonthly: 0 }, NOW)
    assert.equal(plan.keep.find((k) => k.id === '20261126T020000Z')?.reasons, [
      `signed with key ${OTHER.current.id}, not in the keyring`,
    ])
    // Asked for, or the only kind there is: "wrong key", naming the key id it needs (exit 3).
    const wrong = (fn: () => unknown) => {
      try {
        fn()
      } catch (err) {
        assert.instance(err, PreconditionError)
        return (err as RunbookError).message
      }
      throw new Error('accepted')
    }
    const entries = await list()
    assert.match(
      wrong(() => resolveBackup(entries, '20261126T020000Z')),
      `wrong key: backup 20261126T020000Z needs key id ${OTHER.current.id}`,
    )
    await objects('rotated', '20261126T020000Z', { db: 10 })
    await markComplete(
      store,
      'rotated',
      '20261126T020000Z',
      { parts: { db: 10 }, manifest_bytes: 8 },
      OTHER,
      NOW,
    )
    const onlyOther = await list('rotated')
    assert.match(
      wrong(() => resolveBackup(onlyOther, undefined, { env: 'rotated' })),
      `wrong key: the newest backup of rotated (20261126T020000Z) needs key id ${OTHER.current.id}`,
    )
    // With that key back as a previous key, it verifies.
    const both = Keyring.fromSecrets({ BACKUP_KEY: RING_KEY, BACKUP_KEY_PREVIOUS: OTHER_KEY })
    assert.is((await entry('20261126T020000Z', 'prod', both))?.complete, true)
  })

  test('an id in the future (beyond 10 min of clock skew) never counts, even correctly signed', async () => {
    for (const [id, counts] of [
      ['20261130T120900Z', true], // 9 min ahead: clocks differ
      ['20261130T121100Z', false], // 11 min ahead
      ['20301231T235959Z', false], // a planted "newest" one, years ahead
    ] as const) {
      await objects('future', id, { db: 1 })
      await markComplete(store, 'future', id, { parts: { db: 1 }, manifest_bytes: 8 }, RING, NOW)
      const e = await entry(id, 'future')
      assert.is(e?.complete, counts, id)
      if (!counts)
        assert.match(e?.problem ?? '', /min in the future: a planted backup or a machine with a wrong clock/)
    }
    assert.is(resolveBackup(await list('future')).id, '20261130T120900Z')
  })

  test('legacy markers (made before signing) still count, but a signed backup is preferred as latest', async () => {
    await objects('legacy', '20261120T020000Z', { db: 5 })
    await objects('legacy', '20261125T020000Z', { db: 5 })
    const legacy = (id: string) => ({
      id,
      completed_at: '2026-11-25T03:00:00.000Z',
      parts: { db: 5 },
      manifest_bytes: 8,
    })
    await putMarker('legacy', '20261120T020000Z', legacy('20261120T020000Z'))
    await putMarker('legacy', '20261125T020000Z', legacy('20261125T020000Z'))
    const only = await list('legacy')
    assert.equal(
      only.map((e) => [e.id, e.complete, e.marker]),
      [
        ['20261125T020000Z', true, 'legacy'],
        ['20261120T020000Z', true, 'legacy'],
      ],
    )
    assert.is(resolveBackup(only).id, '20261125T020000Z', 'no signed one: the newest legacy one')
    await objects('legacy', '20261122T020000Z', { db: 5 })
    await markComplete(
      store,
      'legacy',
      '20261122T020000Z',
      { parts: { db: 5 }, manifest_bytes: 8 },
      RING,
      NOW,
    )
    assert.is(resolveBackup(await list('legacy')).id, '20261122T020000Z', 'a newer legacy one does not win')
    assert.is(
      resolveBackup(await list('legacy'), '20261125T020000Z').id,
      '20261125T020000Z',
      'asked for by id',
    )
  })

  test('a marker with a mac but no key id, or a mac that is not hex, is malformed', async () => {
    await objects('bad', '20261120T020000Z', { db: 5 })
    const base = { id: '20261120T020000Z', completed_at: 'x', parts: { db: 5 }, manifest_bytes: 8 }
    for (const m of [
      { ...base, mac: 'ab'.repeat(32) },
      { ...base, key_id: RING.current.id, mac: 'zz' },
    ]) {
      await putMarker('bad', '20261120T020000Z', m)
      assert.match((await entry('20261120T020000Z', 'bad'))?.problem ?? '', 'is malformed')
    }
  })

  test.run()
}

import { randomBytes } from 'node:crypto'
import type { Transform } from 'node:stream'
import * as assert from 'uvu/assert'
import {
  DEFAULT_CHUNK_SIZE,
  decryptBuffer,
  decryptStream,
  encryptBuffer,
  encryptStream,
  HEADER_LENGTH,
  hashingStream,
  headerLength,
  inspectHeader,
  sealBuffer,
  sealStream,
  sha256,
} from '../../lib/backup/format.ts'
import { formatRecipient, generateBackupKey, Keyring, keyId, parseRecipient } from '../../lib/backup/keys.ts'
import { InputError, IntegrityError } from '../../lib/report/errors.ts'
import { suite } from '../harness.ts'

const test = suite('backup-format')
const KEY = generateBackupKey()
const ring = Keyring.fromSecrets({ BACKUP_KEY: KEY })
/** An object's name in the store: the context its tags are bound to. */
const CTX = 'prod/20261126T123000Z/db.enc'
const OPEN = { context: CTX }
const SMALL = { chunkSize: 100, context: CTX }

/** Writes `input` in fragments cycling through `sizes`, collects the output pieces and any error. */
function run(stream: Transform, input: Buffer, sizes = [input.length || 1]) {
  return new Promise<{ out: Buffer; pieces: number; err?: Error }>((resolve) => {
    const pieces: Buffer[] = []
    const done = (err?: Error) => resolve({ out: Buffer.concat(pieces), pieces: pieces.length, err })
    stream.on('data', (b: Buffer) => pieces.push(b))
    stream.on('end', () => done())
    stream.on('error', (err) => done(err))
    for (let at = 0, i = 0; at < input.length; i++) {
      const size = sizes[i % sizes.length] as number
      stream.write(input.subarray(at, at + size))
      at += size
    }
    stream.end()
  })
}

/** [start, end) of each chunk record (length | ciphertext | tag) of an object. */
function chunks(obj: Buffer): Array<[number, number]> {
  const out: Array<[number, number]> = []
  for (let at = HEADER_LENGTH; at < obj.length; ) {
    const end = at + 4 + obj.readUInt32BE(at) + 16
    out.push([at, end])
    at = end
  }
  return out
}

function flip(obj: Buffer, at: number): Buffer {
  const copy = Buffer.from(obj)
  copy[at] = (copy[at] as number) ^ 0x01
  return copy
}

/** Runs fn and returns what it threw, asserting it is an E. */
function thrown<E extends Error>(fn: () => unknown, kind: new (...args: never[]) => E): E {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  assert.instance(caught, kind, `expected a ${kind.name}`)
  return caught as E
}
const integrityError = (fn: () => unknown) => thrown(fn, IntegrityError)
const inputError = (fn: () => unknown) => thrown(fn, InputError)

// Four chunks of 100 bytes, the last one final: `0`*100 `1`*100 `2`*100 `3`*100.
const STRIPES = Buffer.from('0123'.replace(/./g, (c) => c.repeat(100)))
const striped = () => encryptBuffer(ring, STRIPES, SMALL)

test('round trip: empty, 1 byte, exactly one chunk, and a chunk-size multiple', () => {
  for (const size of [0, 1, 100, 99, 101, 400]) {
    const data = randomBytes(size)
    const obj = encryptBuffer(ring, data, SMALL)
    assert.equal(decryptBuffer(ring, obj, OPEN), data, `size ${size}`)
    assert.is(chunks(obj).length, Math.max(1, Math.ceil(size / 100)), `chunk count for ${size}`)
  }
  // Empty input still has one (empty, final) chunk.
  assert.is(encryptBuffer(ring, Buffer.alloc(0), OPEN).length, HEADER_LENGTH + 4 + 16)
})

test('round trip through the streams: many chunks, odd fragmentation of input and output', async () => {
  const data = randomBytes(10_007)
  const enc = await run(encryptStream(ring, SMALL), data, [1, 7, 333, 64, 1000, 3])
  assert.is(enc.err, undefined)
  assert.is(chunks(enc.out).length, 101)
  assert.equal(decryptBuffer(ring, enc.out, OPEN), data)
  for (const sizes of [[1], [5, 121, 17], [HEADER_LENGTH + 3, 119], [enc.out.length]]) {
    const dec = await run(decryptStream(ring, OPEN), enc.out, sizes)
    assert.is(dec.err, undefined, `sizes ${sizes}`)
    assert.equal(dec.out, data, `sizes ${sizes}`)
  }
})

test('default chunk size is 1 MiB and a multi-MiB stream round trips', async () => {
  const data = randomBytes(2 * DEFAULT_CHUNK_SIZE + 12_345)
  const enc = await run(encryptStream(ring, OPEN), data, [65_536])
  assert.equal(inspectHeader(enc.out), { version: 2, keyId: ring.current.id, chunkSize: DEFAULT_CHUNK_SIZE })
  assert.is(chunks(enc.out).length, 3)
  const dec = await run(decryptStream(ring, OPEN), enc.out, [65_536, 1_000_003])
  assert.is(dec.err, undefined)
  assert.ok(dec.out.equals(data))
})

test('a golden object from an earlier build still decrypts (the format is stable)', () => {
  const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i)).toString('base64')
  assert.is(keyId(key), 'ea56c1194d4efb06') // = openssl kdf HKDF, info key-id, salt conciliaextrato-backup-v1
  const obj = Buffer.from(
    'Q0VCSwHqVsEZTU77BgAAAAhDqMtwigrfi82AOgDypp8tEDhg5FxGJniF7YiPIOFDjhYi9nya4uuAifaDrm6MKxtizGFgacE9yBahzWhj' +
      'yHNACDI2AAAACKs9dxLzo+e477tmx+TSfgZ7qgSJz3HOkgAAAAYlE40t74FEiY1OE84UInsURv+8eqi9',
    'base64',
  )
  assert.is(decryptBuffer(Keyring.fromSecrets({ BACKUP_KEY: key }), obj, OPEN).toString(), 'golden backup!')
  assert.equal(inspectHeader(obj), { version: 1, keyId: 'ea56c1194d4efb06', chunkSize: 8 })
})

test('every flipped header byte is detected, with a message that says which part is wrong', () => {
  const obj = striped()
  for (let at = 0; at < HEADER_LENGTH; at++) {
    const err = integrityError(() => decryptBuffer(ring, flip(obj, at), OPEN))
    const expected =
      at < 4
        ? /not a backup: it does not start with the CEBK magic/
        : at === 4
          ? // 2 -> 3: read as sealed to a recipient, whose header then fails authentication.
            /header failed authentication .*modified or damaged/
          : at < 13
            ? /wrong key: backup needs key id [0-9a-f]{16}/
            : /header failed authentication .*modified or damaged/
    assert.match(err.message, expected, `byte ${at}: ${err.message}`)
  }
})

test('a flipped byte in a chunk, in a tag or in a length field is detected', () => {
  const obj = striped()
  const [start, end] = chunks(obj)[2] as [number, number]
  for (const at of [start + 4, start + 50, end - 17]) {
    const err = integrityError(() => decryptBuffer(ring, flip(obj, at), OPEN))
    assert.match(err.message, `chunk 3 (at byte ${start}) failed authentication`)
  }
  for (const at of [end - 16, end - 1]) {
    assert.match(integrityError(() => decryptBuffer(ring, flip(obj, at), OPEN)).message, 'chunk 3 (at byte')
  }
  // A length field claiming more than the chunk size is refused before it is buffered.
  assert.match(
    integrityError(() => decryptBuffer(ring, flip(obj, start), OPEN)).message,
    /chunk 3 .* claims \d+ bytes, more than the chunk size 100/,
  )
  integrityError(() => decryptBuffer(ring, flip(obj, start + 3), OPEN))
})

test('truncation is detected: inside the header, at a chunk boundary, mid-chunk, missing last chunk', () => {
  const obj = striped()
  const cs = chunks(obj)
  const cut = (n: number) => integrityError(() => decryptBuffer(ring, obj.subarray(0, n), OPEN)).message
  assert.match(cut(0), 'backup is empty')
  assert.match(cut(40), `ended inside the header (40 of ${HEADER_LENGTH} bytes)`)
  assert.match(cut(HEADER_LENGTH), 'ended after the header, before any chunk')
  assert.match(
    cut((cs[1] as [number, number])[1]),
    'backup is truncated: it ended after chunk 2 without the final chunk',
  )
  assert.match(cut((cs[2] as [number, number])[1]), 'ended after chunk 3 without the final chunk')
  assert.match(cut((cs[2] as [number, number])[0] + 2), 'ended inside chunk 3')
  assert.match(cut((cs[2] as [number, number])[0] + 60), 'ended inside chunk 3')
  assert.match(cut(obj.length - 1), 'ended inside chunk 4')
})

test('reordering is detected: two chunks swapped, a chunk duplicated, a chunk dropped', () => {
  const obj = striped()
  const parts = chunks(obj).map(([s, e]) => obj.subarray(s, e))
  const header = obj.subarray(0, HEADER_LENGTH)
  const [c1, c2, c3, c4] = parts as [Buffer, Buffer, Buffer, Buffer]
  const check = (list: Buffer[], expected: string) => {
    const err = integrityError(() => decryptBuffer(ring, Buffer.concat([header, ...list]), OPEN))
    assert.match(err.message, expected)
  }
  check([c1, c3, c2, c4], 'chunk 2 (at byte')
  check([c1, c2, c2, c3, c4], 'chunk 3 (at byte')
  check([c1, c3, c4], 'chunk 2 (at byte')
  check([c2, c1, c3, c4], 'chunk 1 (at byte')
  // The final chunk moved before the others is found (it no longer verifies at its new counter).
  check([c4, c1, c2, c3], 'chunk 1 (at byte')
})

test('data after the final chunk is detected, even a whole second object', () => {
  const obj = striped()
  const err = integrityError(() => decryptBuffer(ring, Buffer.concat([obj, Buffer.from('x')]), OPEN))
  assert.match(err.message, '1 byte(s) of data after the final chunk 4')
  const twice = integrityError(() => decryptBuffer(ring, Buffer.concat([obj, striped()]), OPEN))
  assert.match(twice.message, `${obj.length} byte(s) of data after the final chunk`)
})

test('no plaintext is emitted before its tag verified: a bad chunk 2 yields chunk 1 only', async () => {
  const obj = striped()
  const [, c2, , c4] = chunks(obj) as Array<[number, number]>
  // Ciphertext, tag only (GCM would have decrypted the bytes fine), and the final chunk's tag.
  const cases: Array<[number, string]> = [
    [(c2 as [number, number])[0] + 10, '0'.repeat(100)],
    [(c2 as [number, number])[1] - 1, '0'.repeat(100)],
    [(c4 as [number, number])[1] - 1, STRIPES.subarray(0, 300).toString()],
  ]
  for (const [at, expected] of cases) {
    for (const sizes of [[obj.length], [1], [HEADER_LENGTH + 104 + 16 + 7]]) {
      const dec = await run(decryptStream(ring, OPEN), flip(obj, at), sizes)
      assert.instance(dec.err, IntegrityError)
      assert.is(dec.out.toString(), expected, `flip at ${at}, fragments ${sizes}`)
    }
  }
})

test('a huge length field fails at once, without waiting for (or buffering) that much data', async () => {
  const obj = striped()
  const forged = Buffer.concat([obj.subarray(0, HEADER_LENGTH), Buffer.from([0xff, 0xff, 0xff, 0xf0])])
  const stream = decryptStream(ring, OPEN)
  const err = await new Promise<Error>((resolve) => {
    stream.on('error', resolve)
    stream.resume()
    stream.write(forged) // no end(): the error must come from the write itself
  })
  assert.instance(err, IntegrityError)
  assert.match(err.message, 'chunk 1 (at byte 84) claims 4294967280 bytes')
})

test('wrong key: the message names the key id the backup needs and the ids the keyring has', async () => {
  const other = Keyring.fromSecrets({ BACKUP_KEY: generateBackupKey() })
  const err = integrityError(() =>
    decryptBuffer(other, striped(), { label: 'db/part-0001.enc', env: 'qa', context: CTX }),
  )
  assert.match(err.message, `db/part-0001.enc: wrong key: backup needs key id ${keyId(KEY)}`)
  assert.match(err.message, `keyring has ${other.current.id} (BACKUP_KEY)`)
  assert.match(err.next ?? '', 'BACKUP_KEY_PREVIOUS')
  const streamed = await run(decryptStream(other, OPEN), striped())
  assert.instance(streamed.err, IntegrityError)
  assert.match(streamed.err?.message ?? '', `needs key id ${keyId(KEY)}`)
  assert.is(streamed.out.length, 0)
})

test('integrity errors carry a next step; label and env are used', () => {
  const obj = striped()
  const err = integrityError(() =>
    decryptBuffer(ring, obj.subarray(0, 200), { label: 'x.enc', env: 'production', context: CTX }),
  )
  assert.ok(err.message.startsWith('x.enc: backup is truncated'), err.message)
  assert.match(err.next ?? '', 'make backups ENV=production')
  assert.is(err.exitCode, 3)
})

test('rotation: an object made with an old key decrypts when BACKUP_KEY_PREVIOUS holds it', () => {
  const oldKey = generateBackupKey()
  const newKey = generateBackupKey()
  const obj = encryptBuffer(Keyring.fromSecrets({ BACKUP_KEY: oldKey }), STRIPES, SMALL)
  assert.is(inspectHeader(obj).keyId, keyId(oldKey))
  const rotated = Keyring.fromSecrets({
    BACKUP_KEY: newKey,
    BACKUP_KEY_PREVIOUS: ` ${generateBackupKey()} ,${oldKey},`,
  })
  assert.equal(rotated.ids, [keyId(newKey), rotated.ids[1] as string, keyId(oldKey)])
  assert.equal(decryptBuffer(rotated, obj, OPEN), STRIPES)
  // New backups use the current key.
  assert.is(inspectHeader(encryptBuffer(rotated, STRIPES, OPEN)).keyId, keyId(newKey))
  assert.is(rotated.byId(keyId(oldKey))?.source, 'BACKUP_KEY_PREVIOUS (entry 2)')
  // Without the old key the same object names what it needs.
  const err = integrityError(() => decryptBuffer(Keyring.fromSecrets({ BACKUP_KEY: newKey }), obj, OPEN))
  assert.match(err.message, `needs key id ${keyId(oldKey)}`)
})

test('bad BACKUP_KEY: InputError naming the secret, never its value, saying how to make one', () => {
  const cases: Array<[Record<string, string>, string, RegExp]> = [
    [{ BACKUP_KEY: 'not base64!! s3cr3t-value' }, 'not base64!! s3cr3t-value', /is not base64/],
    [{ BACKUP_KEY: randomBytes(16).toString('base64') }, '', /decodes to 16 bytes/],
    [{ BACKUP_KEY: randomBytes(33).toString('base64') }, '', /decodes to 33 bytes/],
    [{ BACKUP_KEY: randomBytes(32).toString('hex') }, '', /looks like hex/],
    [{ BACKUP_KEY: `${randomBytes(32).toString('base64')}=` }, '', /padding/],
    [{ BACKUP_KEY: '' }, '', /BACKUP_KEY is not set/],
    [{}, '', /BACKUP_KEY is not set/],
  ]
  for (const [secrets, shown, problem] of cases) {
    const value = secrets.BACKUP_KEY || shown
    const err = inputError(() => Keyring.fromSecrets(secrets))
    assert.match(err.message, 'BACKUP_KEY')
    assert.match(err.message, problem)
    assert.match(err.next ?? '', 'openssl rand -base64 32')
    if (value) {
      assert.not.match(err.message, value)
      assert.not.match(err.next ?? '', value)
    }
    assert.is(err.exitCode, 2)
  }
  const prev = inputError(() => Keyring.fromSecrets({ BACKUP_KEY: KEY, BACKUP_KEY_PREVIOUS: `${KEY},short` }))
  assert.match(prev.message, 'BACKUP_KEY_PREVIOUS (entry 2) decodes to')
})

test('keys: url-safe and unpadded base64 are the same key; ids are 16 hex chars', () => {
  let key = generateBackupKey()
  while (!/[+/]/.test(key)) key = generateBackupKey()
  const urlSafe = key.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
  assert.is(keyId(urlSafe), keyId(key))
  assert.match(keyId(key), /^[0-9a-f]{16}$/)
  assert.is.not(keyId(generateBackupKey()), keyId(key))
  const obj = encryptBuffer(Keyring.fromSecrets({ BACKUP_KEY: key }), STRIPES, OPEN)
  assert.equal(decryptBuffer(Keyring.fromSecrets({ BACKUP_KEY: ` ${urlSafe}\n` }), obj, OPEN), STRIPES)
  assert.is(Buffer.from(generateBackupKey(), 'base64').length, 32)
})

test('two encryptions of the same data differ (fresh data key and nonce prefix)', () => {
  const a = encryptBuffer(ring, STRIPES, SMALL)
  const b = encryptBuffer(ring, STRIPES, SMALL)
  assert.is(a.length, b.length)
  assert.equal(a.subarray(0, 17), b.subarray(0, 17)) // magic, version, key id, chunk size
  assert.not.equal(a.subarray(17, 24), b.subarray(17, 24)) // nonce prefix
  assert.not.equal(a.subarray(24, HEADER_LENGTH), b.subarray(24, HEADER_LENGTH)) // wrapped key
  const [s, e] = chunks(a)[0] as [number, number]
  assert.not.equal(a.subarray(s + 4, e), b.subarray(s + 4, e))
  assert.equal(decryptBuffer(ring, a, OPEN), decryptBuffer(ring, b, OPEN))
})

test('inspectHeader reads version, key id and chunk size; refuses what is not a backup', () => {
  assert.equal(inspectHeader(striped()), { version: 2, keyId: keyId(KEY), chunkSize: 100 })
  assert.match(integrityError(() => inspectHeader(Buffer.from('PK\x03\x04 a zip'))).message, 'not a backup')
  assert.match(integrityError(() => inspectHeader(Buffer.from('CEBK'))).message, 'only 4 bytes')
  const v4 = Buffer.from(striped())
  v4[4] = 4
  assert.match(
    integrityError(() => inspectHeader(v4)).message,
    'version 4 is newer than this runbook reads (1, 2, 3)',
  )
  v4[4] = 0
  assert.match(integrityError(() => decryptBuffer(ring, v4, OPEN)).message, 'unknown backup format version 0')
})

test('sha256 and hashingStream: bytes and digest of what passed through, unchanged', async () => {
  assert.is(sha256('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  const data = randomBytes(50_001)
  const h = hashingStream()
  assert.throws(() => h.digest(), /before the stream ended/)
  const res = await run(h, data, [1, 4096, 77])
  assert.ok(res.out.equals(data))
  assert.equal(h.digest(), { sha256: sha256(data), bytes: 50_001 })
})

test('chunk size must be sane', () => {
  for (const chunkSize of [0, -1, 1.5, 2 ** 32])
    assert.throws(() => encryptBuffer(ring, STRIPES, { chunkSize, context: CTX }))
  assert.equal(
    decryptBuffer(ring, encryptBuffer(ring, STRIPES, { chunkSize: 1, context: CTX }), OPEN),
    STRIPES,
  )
})

test('version 2 binds each object to its name in the store: another backup, part or env fails', () => {
  const obj = striped()
  for (const elsewhere of [
    'prod/20261127T123000Z/db.enc', // another backup of the same env
    'prod/20261126T123000Z/redis.enc', // another part of the same backup
    'staging/20261126T123000Z/db.enc', // the same backup id in another env
    'prod/20261126T123000Z/manifest.enc',
  ]) {
    const err = integrityError(() => decryptBuffer(ring, obj, { context: elsewhere }))
    assert.match(
      err.message,
      `as ${elsewhere}: the backup was modified or damaged, or the object was copied here`,
    )
  }
  // The same through the stream, as a restore reads a part.
  return run(decryptStream(ring, { context: 'prod/20261126T123000Z/redis.enc' }), obj).then((res) => {
    assert.instance(res.err, IntegrityError)
    assert.is(res.out.length, 0, 'no plaintext before the header verified')
  })
})

test('a version 2 object relabelled version 1 (to drop the binding) fails authentication', () => {
  const downgraded = Buffer.from(striped())
  downgraded[4] = 1
  for (const context of [CTX, 'prod/20261127T123000Z/db.enc'])
    assert.match(
      integrityError(() => decryptBuffer(ring, downgraded, { context })).message,
      /header failed authentication with key id [0-9a-f]{16} \(BACKUP_KEY\): the backup was modified or damaged/,
    )
})

test('encrypting or decrypting without a context is a programming error, not a silent v1', () => {
  assert.throws(() => encryptBuffer(ring, STRIPES, { context: '' }), /context .* is required/)
  assert.throws(() => decryptBuffer(ring, striped(), { context: '' }), /context .* is required/)
})

test('sealed to a recipient (version 3): a machine with the public key only seals; BACKUP_KEY opens', async () => {
  // What a host holds: a printable recipient, no secret.
  const text = formatRecipient(ring.current.x25519.recipient)
  assert.match(text, new RegExp(`^cebk-recipient:${keyId(KEY)}:[A-Za-z0-9_-]{43}$`))
  assert.not.match(text, KEY)
  const recipient = parseRecipient(text)
  const data = randomBytes(25_000)
  const sealed = sealBuffer(recipient, data, SMALL)
  assert.equal(inspectHeader(sealed), { version: 3, keyId: keyId(KEY), chunkSize: 100 })
  assert.is(headerLength(3), HEADER_LENGTH + 32)
  assert.ok(decryptBuffer(ring, sealed, OPEN).equals(data))
  // Streamed, in odd fragments, both ways.
  const streamed = await run(sealStream(recipient, SMALL), data, [7, 333, 1])
  const opened = await run(decryptStream(ring, OPEN), streamed.out, [13, 4096])
  assert.ok(opened.out.equals(data))
  // Each object has its own ephemeral key: the same input never seals to the same bytes.
  assert.not.ok(sealBuffer(recipient, data, SMALL).subarray(24, 56).equals(sealed.subarray(24, 56)))
  // Another BACKUP_KEY cannot open it; a copy under another name fails; every header byte is covered.
  const other = Keyring.fromSecrets({ BACKUP_KEY: generateBackupKey() })
  assert.match(
    integrityError(() => decryptBuffer(other, sealed, OPEN)).message,
    `backup needs key id ${keyId(KEY)}`,
  )
  assert.match(
    integrityError(() => decryptBuffer(ring, sealed, { context: 'prod/x/db.enc' })).message,
    'header failed authentication',
  )
  for (let at = 5; at < headerLength(3); at++) {
    const err = integrityError(() => decryptBuffer(ring, flip(sealed, at), OPEN))
    assert.match(
      err.message,
      at < 13 ? /wrong key/ : /header failed authentication|not an X25519 public key/,
      `byte ${at}`,
    )
  }
  // Rotation: a key kept in BACKUP_KEY_PREVIOUS still opens what was sealed to its recipient.
  const rotated = Keyring.fromSecrets({ BACKUP_KEY: generateBackupKey(), BACKUP_KEY_PREVIOUS: KEY })
  assert.ok(decryptBuffer(rotated, sealed, OPEN).equals(data))
})

test('a recipient that is not one is refused by name, with the way to print the right one', () => {
  for (const bad of ['', 'cebk-recipient:zz:abc', `cebk-recipient:${keyId(KEY)}:${'A'.repeat(42)}`]) {
    const err = (() => {
      try {
        parseRecipient(bad, 'walship.recipient in /etc/ce/walship.json')
      } catch (e) {
        return e as InputError
      }
      return undefined
    })()
    assert.instance(err, InputError)
    assert.match(err?.message ?? '', 'walship.recipient in /etc/ce/walship.json is not a backup recipient')
  }
})

test.run()

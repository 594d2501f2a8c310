/**
 * The backup encryption format: one encrypted object per backup part, AES-256-GCM in chunks, streamed.
 *
 *   header  = 'CEBK' | version u8 (2) | key id (8) | chunk size u32 BE | nonce prefix (7)     (24 bytes)
 *             | wrapped data key: nonce (12) | ciphertext (32) | tag (16)                        (60 bytes)
 *   chunk   = ciphertext length u32 BE | ciphertext | tag (16)
 *
 * The data key (DEK) is 32 random bytes per object, wrapped with AES-256-GCM under the keyring's KEK
 * (AAD = the first 24 header bytes, then the context). Chunk nonce = prefix (7) | counter u32 BE | final
 * flag u8; chunk AAD = the whole 84-byte header, then the context. Only the last chunk has the final flag,
 * and there is always one (empty if the input was), so truncation, reordering, duplication and trailing
 * data are all detected. Decryption passes on a chunk's plaintext only after its tag verified.
 *
 * The context (version 2) is the object's name in the store, `<env>/<backup id>/<part>.enc`: an object
 * copied to another backup, part or env fails authentication there. Version 1 objects (no context) are
 * still read, so backups taken before version 2 stay restorable.
 *
 * Version 3 is sealed to a recipient, for a machine that must encrypt without being able to decrypt (a
 * host shipping its WAL holds only the public key): the header carries an ephemeral X25519 public key
 * (32 bytes) after the first 24; the DEK is wrapped with AES-256-GCM under
 * HKDF-SHA256(X25519(ephemeral, recipient), salt = ephemeral public | recipient public, 'cebk-v3-wrap')
 * (AAD = the first 24 bytes, the ephemeral key, the context). The recipient is derived from BACKUP_KEY
 * (keys.ts), so opening one needs that secret, like any backup. Chunks are as in version 2.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
} from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { IntegrityError } from '../report/errors.ts'
import { type BackupKey, type Keyring, type Recipient, x25519Public, x25519Raw } from './keys.ts'

export const MAGIC = Buffer.from('CEBK', 'latin1')
export const VERSION = 2
/** Objects sealed to a recipient (X25519): see above. */
export const RECIPIENT_VERSION = 3
/** Versions this code reads: 1 (no context in the AAD), 2 and 3. */
const READABLE = [1, 2, 3]
const EPHEMERAL_BYTES = 32
export const DEFAULT_CHUNK_SIZE = 1024 * 1024
export const MAX_CHUNK_SIZE = 64 * 1024 * 1024
const PREFIX_BYTES = 7
const TAG_BYTES = 16
const WRAP_NONCE_BYTES = 12
const DEK_BYTES = 32
/** Bytes before the wrapped key (and its AAD). */
const FIELDS_LENGTH = MAGIC.length + 1 + 8 + 4 + PREFIX_BYTES
export const HEADER_LENGTH = FIELDS_LENGTH + WRAP_NONCE_BYTES + DEK_BYTES + TAG_BYTES
/** The header's length by version: version 3 adds the ephemeral public key. */
export const headerLength = (version: number) =>
  version === RECIPIENT_VERSION ? HEADER_LENGTH + EPHEMERAL_BYTES : HEADER_LENGTH
const MAX_CHUNKS = 2 ** 32

export interface EncryptOptions {
  /** The object's name in the store (`<env>/<id>/<part>.enc`): bound into every tag. */
  context: string
  /** Plaintext bytes per chunk (default 1 MiB). */
  chunkSize?: number
}

export interface DecryptOptions {
  /** The object's name in the store: what a version 2 object was bound to when it was made. */
  context: string
  /** Prefixes every error message, e.g. the object name. */
  label?: string
  /** The env, for the `next` hint (`make backups ENV=<env>`). */
  env?: string
  /** Overrides the `next` hint of integrity errors. */
  next?: string
}

export interface HeaderInfo {
  version: number
  keyId: string
  chunkSize: number
}

/** Reads the public header fields (no key needed, nothing verified): for `make backups` listings. */
export function inspectHeader(buf: Buffer): HeaderInfo {
  checkPrefix(buf, (m) => new IntegrityError(m))
  if (buf.length < FIELDS_LENGTH) throw new IntegrityError(`not a backup: only ${buf.length} bytes`)
  return { version: buf[4] as number, keyId: buf.toString('hex', 5, 13), chunkSize: buf.readUInt32BE(13) }
}

/** Encrypts a stream of plaintext into one backup object. */
export function encryptStream(keyring: Keyring, opts: EncryptOptions): Transform {
  return sealingStream(new Sealer({ key: keyring.current }, opts))
}

/** Decrypts one backup object; emits each chunk's plaintext only after its tag verified. */
export function decryptStream(keyring: Keyring, opts: DecryptOptions): Transform {
  const opener = new Opener(keyring, opts)
  return transform(
    (data, emit) => opener.write(data, emit),
    () => opener.end(),
  )
}

/** Seals a stream to a recipient (version 3): no secret needed; opening it needs BACKUP_KEY. */
export function sealStream(recipient: Recipient, opts: EncryptOptions): Transform {
  return sealingStream(new Sealer({ recipient }, opts))
}

export function sealBuffer(recipient: Recipient, plaintext: Buffer, opts: EncryptOptions): Buffer {
  return sealAll(new Sealer({ recipient }, opts), plaintext)
}

export function encryptBuffer(keyring: Keyring, plaintext: Buffer, opts: EncryptOptions): Buffer {
  return sealAll(new Sealer({ key: keyring.current }, opts), plaintext)
}

function sealingStream(sealer: Sealer): Transform {
  return transform(
    (data, emit) => sealer.write(data, emit),
    (emit) => sealer.end(emit),
  )
}

function sealAll(sealer: Sealer, plaintext: Buffer): Buffer {
  const out: Buffer[] = []
  sealer.write(plaintext, (b) => out.push(b))
  sealer.end((b) => out.push(b))
  return Buffer.concat(out)
}

export function decryptBuffer(keyring: Keyring, object: Buffer, opts: DecryptOptions): Buffer {
  const out: Buffer[] = []
  const opener = new Opener(keyring, opts)
  opener.write(object, (b) => out.push(b))
  opener.end()
  return Buffer.concat(out)
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

export type HashingStream = Transform & { digest(): { sha256: string; bytes: number } }

/** A pass-through that counts bytes and hashes them; `digest()` once the stream has ended. */
export function hashingStream(): HashingStream {
  const hash = createHash('sha256')
  let bytes = 0
  let result: { sha256: string; bytes: number } | undefined
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk)
      bytes += chunk.length
      cb(null, chunk)
    },
    flush(cb) {
      result = { sha256: hash.digest('hex'), bytes }
      cb()
    },
  }) as HashingStream
  stream.digest = () => {
    if (!result) throw new Error('hashingStream: digest() called before the stream ended')
    return result
  }
  return stream
}

export type CountingStream = Transform & { bytes(): number }

/** A pass-through that only counts bytes (where a size is all that is checked: no hash to pay for). */
export function countingStream(): CountingStream {
  let bytes = 0
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length
      cb(null, chunk)
    },
  }) as CountingStream
  stream.bytes = () => bytes
  return stream
}

type Emit = (b: Buffer) => void

function transform(write: (data: Buffer, emit: Emit) => void, end: (emit: Emit) => void): Transform {
  return new Transform({
    transform(data: Buffer, _enc, cb: TransformCallback) {
      try {
        write(data, (b) => this.push(b))
        cb()
      } catch (err) {
        cb(err as Error)
      }
    },
    flush(cb: TransformCallback) {
      try {
        end((b) => this.push(b))
        cb()
      } catch (err) {
        cb(err as Error)
      }
    },
  })
}

/** Buffered input as a list of buffers: taking bytes slices, it never re-concatenates the backlog. */
class Pending {
  private bufs: Buffer[] = []
  private first = 0
  length = 0

  push(b: Buffer): void {
    if (b.length === 0) return
    this.bufs.push(b)
    this.length += b.length
  }

  /** Removes and returns the first n bytes, as slices of the buffered input. */
  take(n: number): Buffer[] {
    const total = n
    const parts: Buffer[] = []
    while (n > 0) {
      const b = this.bufs[this.first] as Buffer
      if (b.length <= n) {
        parts.push(b)
        this.first++
        n -= b.length
        this.length -= b.length
      } else {
        parts.push(b.subarray(0, n))
        this.bufs[this.first] = b.subarray(n)
        this.length -= n
        n = 0
      }
    }
    if (this.first > 64 && this.first * 2 > this.bufs.length) {
      this.bufs = this.bufs.slice(this.first)
      this.first = 0
    }
    // Many tiny writes: one copy beats a cipher call per fragment.
    return parts.length > 16 && total / parts.length < 4096 ? [Buffer.concat(parts)] : parts
  }

  /** The first n bytes (n small), without removing them. */
  peek(n: number): Buffer {
    const b = this.bufs[this.first]
    if (!b || n === 0) return Buffer.alloc(0)
    if (b.length >= n) return b.subarray(0, n)
    const parts: Buffer[] = []
    let got = 0
    for (let i = this.first; got < n && i < this.bufs.length; i++) {
      const p = this.bufs[i] as Buffer
      parts.push(p)
      got += p.length
    }
    return Buffer.concat(parts).subarray(0, n)
  }
}

function chunkNonce(prefix: Buffer, counter: number, final: boolean): Buffer {
  const nonce = Buffer.alloc(12)
  prefix.copy(nonce, 0)
  nonce.writeUInt32BE(counter, PREFIX_BYTES)
  nonce[11] = final ? 1 : 0
  return nonce
}

class Sealer {
  private readonly pending = new Pending()
  private readonly dek = randomBytes(DEK_BYTES)
  private readonly prefix = randomBytes(PREFIX_BYTES)
  private header: Buffer | undefined
  private aad: Buffer | undefined
  private counter = 0
  private readonly context: Buffer
  private readonly chunkSize: number

  constructor(
    private readonly to: { key: BackupKey } | { recipient: Recipient },
    opts: EncryptOptions,
  ) {
    const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE
    this.chunkSize = chunkSize
    this.context = contextBytes(opts.context)
    if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE)
      throw new RangeError(
        `backup chunk size must be an integer from 1 to ${MAX_CHUNK_SIZE}, got ${chunkSize}`,
      )
  }

  write(data: Buffer, emit: Emit): void {
    this.start(emit)
    this.pending.push(data)
    // Hold back a full chunk until more input shows it is not the last one.
    while (this.pending.length > this.chunkSize) this.seal(this.pending.take(this.chunkSize), false, emit)
  }

  end(emit: Emit): void {
    this.start(emit)
    this.seal(this.pending.take(this.pending.length), true, emit)
  }

  private start(emit: Emit): void {
    if (this.header) return
    const fields = Buffer.alloc(FIELDS_LENGTH)
    MAGIC.copy(fields, 0)
    const { version, id, kek, ephemeral } = this.wrapping()
    fields[4] = version
    Buffer.from(id, 'hex').copy(fields, 5)
    fields.writeUInt32BE(this.chunkSize, 13)
    this.prefix.copy(fields, 17)
    const wrapNonce = randomBytes(WRAP_NONCE_BYTES)
    const wrap = createCipheriv('aes-256-gcm', kek, wrapNonce, { authTagLength: TAG_BYTES })
    wrap.setAAD(Buffer.concat([fields, ephemeral, this.context]))
    const wrapped = Buffer.concat([wrap.update(this.dek), wrap.final()])
    this.header = Buffer.concat([fields, ephemeral, wrapNonce, wrapped, wrap.getAuthTag()])
    this.aad = Buffer.concat([this.header, this.context])
    emit(this.header)
  }

  /** Version 2: the keyring's KEK. Version 3: a KEK agreed with the recipient through a fresh ephemeral key. */
  private wrapping(): { version: number; id: string; kek: Buffer; ephemeral: Buffer } {
    if ('key' in this.to)
      return { version: VERSION, id: this.to.key.id, kek: this.to.key.kek, ephemeral: Buffer.alloc(0) }
    const { id, publicKey } = this.to.recipient
    const pair = generateKeyPairSync('x25519')
    const ephemeral = x25519Raw(pair.publicKey)
    const shared = diffieHellman({ privateKey: pair.privateKey, publicKey: x25519Public(publicKey) })
    return { version: RECIPIENT_VERSION, id, kek: wrapKeyV3(shared, ephemeral, publicKey), ephemeral }
  }

  private seal(parts: Buffer[], final: boolean, emit: Emit): void {
    if (this.counter >= MAX_CHUNKS)
      throw new RangeError('backup object has too many chunks for one nonce prefix')
    const nonce = chunkNonce(this.prefix, this.counter++, final)
    const cipher = createCipheriv('aes-256-gcm', this.dek, nonce, { authTagLength: TAG_BYTES })
    cipher.setAAD(this.aad as Buffer)
    const out = parts.map((p) => cipher.update(p))
    out.push(cipher.final())
    const length = Buffer.alloc(4)
    length.writeUInt32BE(out.reduce((n, b) => n + b.length, 0))
    emit(length)
    for (const b of out) if (b.length) emit(b)
    emit(cipher.getAuthTag())
  }
}

class Opener {
  private readonly pending = new Pending()
  private header: Buffer | undefined
  /** The chunks' AAD: the header, then (version 2) the context. */
  private aad: Buffer | undefined
  private dek: Buffer | undefined
  private prefix: Buffer | undefined
  private chunkSize = 0
  private counter = 0
  /** Bytes consumed so far: the offset of the next chunk, for messages. */
  private offset = 0
  private done = false

  constructor(
    private readonly keyring: Keyring,
    private readonly opts: DecryptOptions,
  ) {}

  write(data: Buffer, emit: Emit): void {
    this.pending.push(data)
    for (;;) {
      if (this.done) {
        if (this.pending.length)
          throw this.fail(`${this.pending.length} byte(s) of data after the final chunk ${this.counter}`)
        return
      }
      if (!this.header) {
        checkPrefix(this.pending.peek(Math.min(this.pending.length, 5)), (m) => this.fail(m))
        if (this.pending.length < 5) return
        const length = headerLength(this.pending.peek(5)[4] as number)
        if (this.pending.length < length) return
        this.openHeader(Buffer.concat(this.pending.take(length)))
        continue
      }
      if (this.pending.length < 4) return
      const length = this.pending.peek(4).readUInt32BE(0)
      if (length > this.chunkSize)
        throw this.fail(
          `chunk ${this.counter + 1} (at byte ${this.offset}) claims ${length} bytes, more than the chunk size ${this.chunkSize}: the backup was modified or damaged`,
        )
      if (this.pending.length < 4 + length + TAG_BYTES) return
      this.pending.take(4)
      const ciphertext = this.pending.take(length)
      const tag = Buffer.concat(this.pending.take(TAG_BYTES))
      this.openChunk(ciphertext, tag, length, emit)
    }
  }

  end(): void {
    if (this.done) return
    const got = this.pending.length
    if (!this.header) {
      throw this.fail(
        got === 0 && this.offset === 0
          ? 'backup is empty (0 bytes)'
          : `backup is truncated: it ended inside the header (${got} of ${got >= 5 ? headerLength(this.pending.peek(5)[4] as number) : HEADER_LENGTH} bytes)`,
      )
    }
    if (got > 0)
      throw this.fail(
        `backup is truncated: it ended inside chunk ${this.counter + 1} (${got} bytes at byte ${this.offset})`,
      )
    throw this.fail(
      this.counter === 0
        ? 'backup is truncated: it ended after the header, before any chunk'
        : `backup is truncated: it ended after chunk ${this.counter} without the final chunk`,
    )
  }

  private openHeader(header: Buffer): void {
    const { version, keyId, chunkSize } = inspectHeader(header)
    const context = version === 1 ? Buffer.alloc(0) : contextBytes(this.opts.context)
    const key = this.keyring.byId(keyId)
    if (!key) {
      throw this.fail(
        `wrong key: backup needs key id ${keyId}; keyring has ${this.keyring.describe()}`,
        `Put the key whose id is ${keyId} in BACKUP_KEY_PREVIOUS (comma-separated older keys) and run again. If no key ever had that id, the backup header is damaged: restore an older backup (make backups ENV=${this.opts.env ?? '<env>'}). Nothing was restored.`,
      )
    }
    const ephemeral =
      version === RECIPIENT_VERSION
        ? header.subarray(FIELDS_LENGTH, FIELDS_LENGTH + EPHEMERAL_BYTES)
        : Buffer.alloc(0)
    let kek = key.kek
    if (version === RECIPIENT_VERSION) {
      try {
        kek = wrapKeyV3(
          diffieHellman({ privateKey: key.x25519.privateKey, publicKey: x25519Public(ephemeral) }),
          ephemeral,
          key.x25519.recipient.publicKey,
        )
      } catch {
        throw this.fail(
          `header's ephemeral key is not an X25519 public key: the backup was modified or damaged`,
        )
      }
    }
    const nonceAt = FIELDS_LENGTH + ephemeral.length
    const tagAt = nonceAt + WRAP_NONCE_BYTES + DEK_BYTES
    const unwrap = createDecipheriv(
      'aes-256-gcm',
      kek,
      header.subarray(nonceAt, nonceAt + WRAP_NONCE_BYTES),
      {
        authTagLength: TAG_BYTES,
      },
    )
    unwrap.setAAD(Buffer.concat([header.subarray(0, FIELDS_LENGTH), ephemeral, context]))
    unwrap.setAuthTag(header.subarray(tagAt))
    try {
      this.dek = Buffer.concat([
        unwrap.update(header.subarray(nonceAt + WRAP_NONCE_BYTES, tagAt)),
        unwrap.final(),
      ])
    } catch {
      throw this.fail(
        version === 1
          ? `header failed authentication with key id ${keyId} (${key.source}): the backup was modified or damaged`
          : `header failed authentication with key id ${keyId} (${key.source}) as ${this.opts.context}: the backup was modified or damaged, or the object was copied here from another backup, part or env`,
      )
    }
    if (chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE)
      throw this.fail(`header has an invalid chunk size ${chunkSize}`)
    this.header = header
    this.aad = Buffer.concat([header, context])
    this.chunkSize = chunkSize
    this.prefix = header.subarray(17, 17 + PREFIX_BYTES)
    this.offset = header.length
  }

  private openChunk(ciphertext: Buffer[], tag: Buffer, length: number, emit: Emit): void {
    const n = this.counter + 1
    if (this.counter >= MAX_CHUNKS) throw this.fail(`chunk ${n}: too many chunks`)
    // Only the last chunk may be short, so a short one can only verify as final.
    const plaintext =
      (length === this.chunkSize ? this.tryOpen(ciphertext, tag, false) : undefined) ??
      this.tryOpen(ciphertext, tag, true)
    if (!plaintext)
      throw this.fail(
        `chunk ${n} (at byte ${this.offset}) failed authentication: the backup was modified, damaged or reordered`,
      )
    this.counter++
    this.offset += 4 + length + TAG_BYTES
    for (const b of plaintext.parts) if (b.length) emit(b)
    if (plaintext.final) this.done = true
  }

  private tryOpen(ciphertext: Buffer[], tag: Buffer, final: boolean) {
    const nonce = chunkNonce(this.prefix as Buffer, this.counter, final)
    const decipher = createDecipheriv('aes-256-gcm', this.dek as Buffer, nonce, { authTagLength: TAG_BYTES })
    decipher.setAAD(this.aad as Buffer)
    decipher.setAuthTag(tag)
    const parts = ciphertext.map((c) => decipher.update(c))
    try {
      parts.push(decipher.final())
    } catch {
      return undefined
    }
    return { parts, final }
  }

  private fail(message: string, next?: string): IntegrityError {
    const env = this.opts.env ?? '<env>'
    return new IntegrityError(
      this.opts.label ? `${this.opts.label}: ${message}` : message,
      next ??
        this.opts.next ??
        `Restore an older backup (list them: make backups ENV=${env}). Nothing was restored.`,
    )
  }
}

/** The version 3 wrapping key: HKDF over the X25519 secret, bound to both public keys. */
function wrapKeyV3(shared: Buffer, ephemeral: Buffer, recipient: Buffer): Buffer {
  return Buffer.from(
    hkdfSync('sha256', shared, Buffer.concat([ephemeral, recipient]), 'cebk-v3-wrap', DEK_BYTES),
  )
}

/** Checks the magic and version in however many of the first 5 bytes are there. */
function checkPrefix(buf: Buffer, fail: (message: string) => Error): void {
  const n = Math.min(buf.length, MAGIC.length)
  if (!buf.subarray(0, n).equals(MAGIC.subarray(0, n)))
    throw fail(
      'not a backup: it does not start with the CEBK magic (wrong file, or not encrypted by the runbooks)',
    )
  const version = buf[4]
  if (version !== undefined && !READABLE.includes(version))
    throw fail(
      version > VERSION
        ? `backup format version ${version} is newer than this runbook reads (${READABLE.join(', ')}): update the runbooks`
        : `unknown backup format version ${version} (this runbook reads ${READABLE.join(', ')})`,
    )
}

/** The context as AAD bytes; an empty one is refused (every object has a name in the store). */
function contextBytes(context: string): Buffer {
  if (typeof context !== 'string' || context === '')
    throw new TypeError('backup format: the object context (its name in the store) is required')
  return Buffer.from(context, 'utf8')
}

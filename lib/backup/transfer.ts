/**
 * Moving parts between a host and the store without plaintext ever touching this machine's disk:
 * host stdout -> SHA-256 -> AES-256-GCM -> store, and back: store -> local ciphertext -> verified
 * -> decrypted -> host stdin.
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { PassThrough, pipeline, type Readable, Writable } from 'node:stream'
import { pipeline as pipelineAsync } from 'node:stream/promises'
import type { HostSession } from '../host/session.ts'
import { IntegrityError } from '../report/errors.ts'
import type { BackupStore } from '../store/storage.ts'
import { countingStream, decryptStream, encryptStream, hashingStream } from './format.ts'
import type { Keyring } from './keys.ts'
import type { PartInfo } from './manifest.ts'

export interface StreamedPart {
  info: PartInfo
  stderr: string
}

/** Runs `command` on the host and stores its stdout, encrypted, under `key`. */
export async function captureToStore(
  host: HostSession,
  command: string,
  store: BackupStore,
  key: string,
  keyring: Keyring,
  timeoutS: number,
): Promise<StreamedPart> {
  const plain = hashingStream()
  const cipher = countingStream()
  let firstError: { at: number; err: Error } | undefined
  const note = (err: Error) => {
    firstError ??= { at: Date.now(), err }
  }
  pipeline(plain, encryptStream(keyring, { context: key }), cipher, (err) => err && note(err))
  const upload = store.put(key, cipher).catch((err: Error) => {
    note(err)
    throw err
  })
  const run = host.exec(command, { stdoutTo: plain, timeoutS, echo: false }).catch((err: Error) => {
    note(err)
    throw err
  })
  const [ran, uploaded] = await Promise.allSettled([run, upload])
  // The first failure is the cause; the other side only stopped because of it.
  if (ran.status === 'rejected' || uploaded.status === 'rejected')
    throw firstError?.err ?? new Error('capture failed')
  const p = plain.digest()
  return {
    info: { bytes: p.bytes, sha256: p.sha256, stored_bytes: cipher.bytes() },
    stderr: ran.value.stderr,
  }
}

/** Downloads an object to a local file (ciphertext only) and checks it decrypts to the manifest's bytes. */
export async function downloadVerified(
  store: BackupStore,
  key: string,
  file: string,
  keyring: Keyring,
  expected: PartInfo | undefined,
  label: string,
): Promise<void> {
  const stored = countingStream()
  await pipelineAsync(await store.get(key), stored, createWriteStream(file, { mode: 0o600 }))
  if (expected && stored.bytes() !== expected.stored_bytes)
    throw new IntegrityError(
      `${label}: the stored object has ${stored.bytes()} bytes, the manifest says ${expected.stored_bytes}`,
    )
  await verifyFile(file, key, keyring, expected, label)
}

/**
 * Decrypts a local ciphertext file to nowhere, checking every tag and the plaintext's SHA-256.
 * `key`: the object's name in the store, which its tags are bound to.
 */
export async function verifyFile(
  file: string,
  key: string,
  keyring: Keyring,
  expected: PartInfo | undefined,
  label: string,
): Promise<{ bytes: number; sha256: string }> {
  const plain = hashingStream()
  await pipelineAsync(createReadStream(file), decryptStream(keyring, { label, context: key }), plain, sink())
  const got = plain.digest()
  if (expected && (got.sha256 !== expected.sha256 || got.bytes !== expected.bytes))
    throw new IntegrityError(
      `${label}: decrypts to ${got.bytes} bytes with SHA-256 ${got.sha256.slice(0, 16)}…, the manifest says ${expected.bytes} bytes, ${expected.sha256.slice(0, 16)}…`,
    )
  return got
}

/** A verified local ciphertext (of store object `key`), decrypted on the fly into a command's stdin on the host. */
export async function restoreFromFile(
  host: HostSession,
  command: string,
  file: string,
  key: string,
  keyring: Keyring,
  label: string,
  timeoutS: number,
): Promise<string> {
  const plain = new PassThrough({ highWaterMark: 4 * 1024 * 1024 })
  // If decryption fails midway the command must not wait for the rest of its stdin: stop it.
  const stop = new AbortController()
  const decrypting = pipelineAsync(
    createReadStream(file),
    decryptStream(keyring, { label, context: key }),
    plain,
  ).catch((err: Error) => {
    stop.abort()
    throw err
  })
  const [ran, decrypted] = await Promise.allSettled([
    host.exec(command, { stdin: plain as Readable, timeoutS, echo: false, signal: stop.signal }),
    decrypting,
  ])
  if (decrypted.status === 'rejected') throw decrypted.reason
  if (ran.status === 'rejected') throw ran.reason
  return ran.value.stdout
}

function sink(): Writable {
  return new Writable({
    write(_chunk, _enc, done) {
      done()
    },
  })
}

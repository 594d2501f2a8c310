/**
 * The WAL archive in the backup store: one object per finished segment (or timeline history file),
 * `wal/<env>/<system>/<name>.<first 16 hex of the plaintext's SHA-256>.gz.enc`: gzipped (a new segment
 * switched early by archive_timeout is mostly zeros), then sealed to the env's recipient
 * in the backup format (AES-256-GCM chunks bound to the object's key, the data key wrapped to X25519): the
 * host that ships it holds the public key only. `<system>` is the Postgres cluster's system identifier
 * (in every segment's first page): a new cluster (an emergency droplet, a new data host) starts its WAL
 * names again from the beginning, and its chain must not meet the old one's. The hash in the key tells a
 * re-shipped identical segment (after a crash: already there) from a different one under the same name
 * (two servers writing one timeline: refused, kept in the spool, alerted).
 * Used on the host by the shipper (wal-shipper.ts) and here by make backups (the chain) and restore.
 */
import { gunzipSync, gzipSync } from 'node:zlib'
import { IntegrityError } from '../report/errors.ts'
import { type BackupStore, ObjectExistsError, readObject } from '../store/store.ts'
import { decryptBuffer, sealBuffer, sha256 } from './format.ts'
import type { Keyring, Recipient } from './keys.ts'
import { type ChainReport, checkChain, describeGaps } from './wal-chain.ts'

/** A segment (24 hex) or a timeline history file (`<8 hex>.history`), as Postgres names them. */
export const WAL_FILE = /^(?:[0-9A-F]{24}|[0-9A-F]{8}\.history)$/
const OBJECT = /^([0-9]{1,20})\/([0-9A-F]{24}|[0-9A-F]{8}\.history)\.([0-9a-f]{16})\.gz\.enc$/
export const isSegmentName = (name: string) => /^[0-9A-F]{24}$/.test(name)

export const walPrefix = (env: string) => `wal/${env}/`

/** XLP_LONG_HEADER: the flag of a segment's first page, whose header carries the system identifier. */
const XLP_LONG_HEADER = 0x0002

/**
 * The system identifier a WAL segment was written by, from its first page's long header
 * (XLogLongPageHeaderData: xlp_sysid at byte 24, xlp_seg_size at 32, little-endian). A file without that
 * header, or whose header names another size than its own, is not a segment: IntegrityError.
 */
export function segmentSystem(name: string, bytes: Buffer): string {
  if (bytes.length < 40 || !(bytes.readUInt16LE(2) & XLP_LONG_HEADER))
    throw new IntegrityError(`${name} does not start with a WAL segment's long page header`)
  const size = bytes.readUInt32LE(32)
  if (size !== bytes.length)
    throw new IntegrityError(`${name}: its header says ${size} bytes, the file has ${bytes.length}`)
  return bytes.readBigUInt64LE(24).toString()
}

export function walKey(env: string, system: string, name: string, plaintext: Buffer): string {
  if (!WAL_FILE.test(name)) throw new IntegrityError(`not a WAL file name: ${JSON.stringify(name)}`)
  if (!/^[0-9]{1,20}$/.test(system))
    throw new IntegrityError(`not a Postgres system identifier: ${JSON.stringify(system)}`)
  return `${walPrefix(env)}${system}/${name}.${sha256(plaintext).slice(0, 16)}.gz.enc`
}

export interface ArchivedWal {
  key: string
  /** The Postgres cluster's system identifier (decimal). */
  system: string
  /** The segment or history file name. */
  name: string
  /** First 16 hex of the plaintext's SHA-256. */
  hash: string
  bytes: number
}

/** Parses a key listed under walPrefix(env); anything else (a stray object) is undefined. */
export function parseWalKey(env: string, key: string): Omit<ArchivedWal, 'bytes'> | undefined {
  if (!key.startsWith(walPrefix(env))) return undefined
  const m = OBJECT.exec(key.slice(walPrefix(env).length))
  return m ? { key, system: m[1] as string, name: m[2] as string, hash: m[3] as string } : undefined
}

/** Every archived WAL object of the env, by system then name. */
export async function archivedWal(store: BackupStore, env: string): Promise<ArchivedWal[]> {
  const out: ArchivedWal[] = []
  for (const o of await store.list(walPrefix(env))) {
    const p = parseWalKey(env, o.key)
    if (p) out.push({ ...p, bytes: o.bytes })
  }
  const order = (w: ArchivedWal) => `${w.system.padStart(20, '0')}/${w.name}`
  return out.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0))
}

/** One cluster's chain in the archive: its segments' continuity (wal-chain.ts) and its size. */
export interface SystemChain {
  system: string
  chain: ChainReport
  /** describeGaps(chain): '' when the chain is unbroken. */
  gaps: string
  bytes: number
}

/** The gaps of every broken chain, `cluster <id>: <gaps>`, joined; '' when every chain is unbroken. */
export function describeBrokenChains(chains: SystemChain[]): string {
  return chains
    .filter((c) => c.gaps)
    .map((c) => `cluster ${c.system}: ${c.gaps}`)
    .join('; ')
}

/** The archive's chains, one per cluster (system identifier), in the archive's order. */
export function walChains(archived: ArchivedWal[]): SystemChain[] {
  const by = new Map<string, ArchivedWal[]>()
  for (const w of archived) by.set(w.system, [...(by.get(w.system) ?? []), w])
  return [...by].map(([system, ws]) => {
    const chain = checkChain(ws.map((w) => w.name))
    return { system, chain, gaps: describeGaps(chain), bytes: ws.reduce((sum, w) => sum + w.bytes, 0) }
  })
}

export type ShipOutcome = { status: 'shipped' | 'already there'; key: string; bytes: number }

/**
 * Seals one WAL file to the recipient, uploads it, reads it back and compares. Throws IntegrityError
 * when the archive holds different bytes under the same name, or the read-back differs.
 */
export async function shipWalFile(
  store: BackupStore,
  recipient: Recipient,
  env: string,
  system: string,
  name: string,
  plaintext: Buffer,
): Promise<ShipOutcome> {
  const key = walKey(env, system, name, plaintext)
  const same = (await store.list(`${walPrefix(env)}${system}/${name}.`)).filter((o) => o.key.endsWith('.enc'))
  const mine = same.find((o) => o.key === key)
  if (mine) return { status: 'already there', key, bytes: mine.bytes }
  if (same.length)
    throw new IntegrityError(
      `${name} is already archived with different content (${same.map((o) => o.key).join(', ')}): two servers writing the same timeline?`,
      'Kept in the spool. Find which server wrote the other one (a restored or emergency droplet still archiving) and stop it; docs/runbooks/backup.md#wal-archiving.',
    )
  const sealed = sealBuffer(recipient, gzipSync(plaintext), { context: key })
  try {
    await store.put(key, sealed, { size: sealed.length })
  } catch (err) {
    // Landed since the listing (a retried upload): the key names this content's hash, so it is this WAL.
    if (err instanceof ObjectExistsError) return { status: 'already there', key, bytes: sealed.length }
    throw err
  }
  const back = await readObject(store, key)
  if (sha256(back) !== sha256(sealed))
    throw new IntegrityError(`${key}: the store gave back different bytes than were uploaded`)
  return { status: 'shipped', key, bytes: sealed.length }
}

/**
 * Downloads and opens one archived WAL file (needs BACKUP_KEY); checks its plaintext hash. Returns the
 * plaintext and the stored gzip (restore hands the gzip on to the host as it is).
 */
export async function openWalFile(
  store: BackupStore,
  keyring: Keyring,
  w: ArchivedWal,
): Promise<{ plain: Buffer; gz: Buffer }> {
  const gz = decryptBuffer(keyring, await readObject(store, w.key), { context: w.key, label: w.key })
  const plain = gunzipSync(gz)
  if (sha256(plain).slice(0, 16) !== w.hash)
    throw new IntegrityError(`${w.key}: its content does not match the hash in its name`)
  return { plain, gz }
}

/** Downloads and opens one archived WAL file (needs BACKUP_KEY); checks its plaintext hash. */
export async function fetchWalFile(store: BackupStore, keyring: Keyring, w: ArchivedWal): Promise<Buffer> {
  return (await openWalFile(store, keyring, w)).plain
}

/**
 * Backup keys: the `BACKUP_KEY` secret (base64 of 32 random bytes) and, for rotation, the older keys in
 * `BACKUP_KEY_PREVIOUS` (comma-separated). Each secret yields a key-encryption key (KEK) that wraps the
 * per-backup data keys, and a short public key id that a backup header records so a restore can say
 * which key it needs. Secret values are never put in messages.
 */
import { createPrivateKey, createPublicKey, hkdfSync, type KeyObject, randomBytes } from 'node:crypto'
import { InputError } from '../report/errors.ts'

export const KEY_BYTES = 32
export const KEY_ID_BYTES = 8
const SALT = 'conciliaextrato-backup-v1'
const MAKE_ONE = 'Make one with: openssl rand -base64 32'

export interface BackupKey {
  /** 16 hex chars, derived from the secret; safe to print. */
  readonly id: string
  /** AES-256 key that wraps data keys. */
  readonly kek: Buffer
  /** HMAC-SHA256 key that signs COMPLETE markers (catalog.ts). */
  readonly markerKey: Buffer
  /** Where it came from, for messages: `BACKUP_KEY` or `BACKUP_KEY_PREVIOUS (entry 2)`. */
  readonly source: string
  /**
   * The X25519 key pair derived from the same secret: a machine that only seals (a host shipping its
   * WAL) holds the public half (`recipient`), so it cannot read any backup; opening needs the secret.
   */
  readonly x25519: { readonly privateKey: KeyObject; readonly recipient: Recipient }
}

/** What a sealing machine holds: the key id and the X25519 public key (32 bytes). Not a secret. */
export interface Recipient {
  readonly id: string
  readonly publicKey: Buffer
}

const RECIPIENT = /^cebk-recipient:([0-9a-f]{16}):([A-Za-z0-9_-]{43})$/

/** `cebk-recipient:<key id>:<base64url public key>`: what a host's config holds. */
export function formatRecipient(r: Recipient): string {
  return `cebk-recipient:${r.id}:${r.publicKey.toString('base64url')}`
}

export function parseRecipient(text: string, where = 'the backup recipient'): Recipient {
  const m = RECIPIENT.exec(text.trim())
  const publicKey = m ? Buffer.from(m[2] ?? '', 'base64url') : Buffer.alloc(0)
  if (!m || publicKey.length !== KEY_BYTES)
    throw new InputError(
      `${where} is not a backup recipient`,
      ['expected cebk-recipient:<16 hex key id>:<43 base64url characters>'],
      'Print the right one with: make backup-recipient ENV=<env> (it needs BACKUP_KEY).',
    )
  return { id: m[1] ?? '', publicKey }
}

export class Keyring {
  private constructor(readonly keys: readonly BackupKey[]) {}

  /** From `BACKUP_KEY` (required) and `BACKUP_KEY_PREVIOUS` (optional, comma-separated older keys). */
  static fromSecrets(secrets: Readonly<Record<string, string | undefined>>): Keyring {
    const current = secrets.BACKUP_KEY
    if (current === undefined || current.trim() === '') {
      throw new InputError('the secret BACKUP_KEY is not set', [], `${MAKE_ONE}, and set it as BACKUP_KEY.`)
    }
    const keys = [deriveKey(decodeKey(current, 'BACKUP_KEY'), 'BACKUP_KEY')]
    const previous = (secrets.BACKUP_KEY_PREVIOUS ?? '').split(',').map((s) => s.trim())
    for (const [i, value] of previous.entries()) {
      if (value === '') continue
      const source = `BACKUP_KEY_PREVIOUS (entry ${i + 1})`
      const key = deriveKey(decodeKey(value, source), source)
      if (!keys.some((k) => k.id === key.id)) keys.push(key)
    }
    return new Keyring(keys)
  }

  /** The key new backups are made with (`BACKUP_KEY`). */
  get current(): BackupKey {
    return this.keys[0] as BackupKey
  }

  byId(id: string): BackupKey | undefined {
    return this.keys.find((k) => k.id === id)
  }

  get ids(): string[] {
    return this.keys.map((k) => k.id)
  }

  /** `0123456789abcdef (BACKUP_KEY), fedcba9876543210 (BACKUP_KEY_PREVIOUS (entry 1))` */
  describe(): string {
    return this.keys.map((k) => `${k.id} (${k.source})`).join(', ')
  }
}

/** The key id of a base64 backup key, for display (`make backups`, rotation notes). */
export function keyId(secretValue: string, name = 'BACKUP_KEY'): string {
  return deriveKey(decodeKey(secretValue, name), name).id
}

/** A fresh backup key, base64 (same as `openssl rand -base64 32`). */
export function generateBackupKey(): string {
  return randomBytes(KEY_BYTES).toString('base64')
}

function deriveKey(ikm: Buffer, source: string): BackupKey {
  const kek = Buffer.from(hkdfSync('sha256', ikm, SALT, 'kek', KEY_BYTES))
  const id = Buffer.from(hkdfSync('sha256', ikm, SALT, 'key-id', KEY_ID_BYTES)).toString('hex')
  const markerKey = Buffer.from(hkdfSync('sha256', ikm, SALT, 'complete-marker', KEY_BYTES))
  const privateKey = x25519Private(Buffer.from(hkdfSync('sha256', ikm, SALT, 'x25519-recipient', KEY_BYTES)))
  const recipient = { id, publicKey: x25519Raw(createPublicKey(privateKey)) }
  return { id, kek, markerKey, source, x25519: { privateKey, recipient } }
}

// PKCS#8 of an X25519 private key is this fixed prefix and the 32 raw bytes (RFC 8410); SPKI likewise.
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex')
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex')

export function x25519Private(raw: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([X25519_PKCS8, raw]), format: 'der', type: 'pkcs8' })
}

export function x25519Public(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([X25519_SPKI, raw]), format: 'der', type: 'spki' })
}

export function x25519Raw(key: KeyObject): Buffer {
  return (key.export({ format: 'der', type: 'spki' }) as Buffer).subarray(X25519_SPKI.length)
}

/** Strict base64 (standard or url-safe, padding optional) of exactly 32 bytes. */
function decodeKey(value: string, name: string): Buffer {
  const text = value.trim()
  const bad = (problem: string) =>
    new InputError(
      `the secret ${name} is not a valid backup key`,
      [problem],
      `${MAKE_ONE}, and set it as ${name}. A backup key is base64 of exactly ${KEY_BYTES} random bytes.`,
    )
  if (/^[0-9a-fA-F]{64}$/.test(text))
    throw bad(`${name} looks like hex (64 hex digits); it must be base64, not hex`)
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text))
    throw bad(`${name} is not base64: it has characters other than A-Z a-z 0-9 + / - _ and = padding`)
  const body = text.replace(/=+$/, '')
  if (body.length !== text.length && text.length % 4 !== 0) throw bad(`${name} has wrong base64 padding`)
  const bytes = Buffer.from(body.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
  if (bytes.length !== KEY_BYTES)
    throw bad(`${name} decodes to ${bytes.length} bytes; a backup key is exactly ${KEY_BYTES} bytes`)
  if (bytes.toString('base64').replace(/=+$/, '') !== body.replace(/-/g, '+').replace(/_/g, '/'))
    throw bad(`${name} is not canonical base64 (stray trailing bits)`)
  return bytes
}

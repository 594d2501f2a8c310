import { createHash } from 'node:crypto'

/** SHA256 fingerprint of an SSH public key blob, exactly as `ssh-keygen -lf` prints it. */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`
}

/** Fingerprint of a public key line (`ssh-ed25519 AAAA... comment`), for keys read from files. */
export function fingerprintOfPublicKeyLine(line: string): string {
  const blob = line.trim().split(/\s+/)[1]
  if (!blob) throw new Error('not an SSH public key line')
  return sshFingerprint(Buffer.from(blob, 'base64'))
}

/** An SSH key fingerprint as `ssh-keygen -lf` prints it: SHA256:<43 base64 characters>. */
export const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/

/**
 * The new droplet's SSH host key, known before it boots: generated here and handed to cloud-init
 * (`ssh_keys:`), so the very first connection is already pinned. Nothing is trusted on first use.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fingerprintOfPublicKeyLine } from '../env/fingerprint.ts'
import { runLocalSync } from '../host/local-run.ts'

export interface HostKeyPair {
  privateKey: string
  publicKey: string
  fingerprint: string
}

export function generateHostKey(comment: string): HostKeyPair {
  const dir = mkdtempSync(join(tmpdir(), 'ce-hostkey-'))
  try {
    const file = join(dir, 'ssh_host_ed25519_key')
    const keygen = runLocalSync(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file])
    if (keygen.code !== 0) throw new Error(`ssh-keygen failed (exit ${keygen.code}): ${keygen.stderr.trim()}`)
    const publicKey = readFileSync(`${file}.pub`, 'utf8').trim()
    return {
      privateKey: readFileSync(file, 'utf8'),
      publicKey,
      fingerprint: fingerprintOfPublicKeyLine(publicKey),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * cloud-config that installs the given ed25519 host key and generates no other (so sshd offers only
 * the key we pinned). It holds a private key: never print it.
 */
export function cloudInitUserData(key: { privateKey: string; publicKey: string }): string {
  const indent = (text: string) =>
    text
      .trim()
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n')
  return [
    '#cloud-config',
    '# written by make emergency: the host key its first SSH connection pins',
    'ssh_deletekeys: true',
    'ssh_genkeytypes: []',
    'ssh_keys:',
    '  ed25519_private: |',
    indent(key.privateKey),
    `  ed25519_public: ${key.publicKey.trim()}`,
    '',
  ].join('\n')
}

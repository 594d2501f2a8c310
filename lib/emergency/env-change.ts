/**
 * The env-file change that makes the new host the primary: printed for a person to commit, or written
 * in place (WRITE_ENV=1) keeping every comment and every other line of the file as it was.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { parseDocument } from 'yaml'
import type { Host } from '../env/load.ts'
import type { NewHost } from './state.ts'

export function hostEntry(h: NewHost, roles: string[]): Record<string, unknown> {
  return { name: h.name, address: h.address, ssh_port: h.sshPort, host_key: h.hostKey, roles }
}

/** Pure: the env file's text with `hosts:` naming only the new host (comments kept). */
export function withNewHost(text: string, entry: Record<string, unknown>): string {
  const doc = parseDocument(text)
  doc.set('hosts', doc.createNode([entry]))
  return doc.toString()
}

/** The lines a person reads: what goes, what comes. */
export function describeChange(file: string, old: Host[], entry: Record<string, unknown>): string[] {
  return [
    `${file}: hosts: becomes`,
    '  hosts:',
    `    - name: ${entry.name}`,
    `      address: ${entry.address}`,
    `      ssh_port: ${entry.ssh_port}`,
    `      host_key: ${entry.host_key}`,
    `      roles: [${(entry.roles as string[]).join(', ')}]`,
    ...old.map((h) => `  (replacing ${h.name} at ${h.address}, key ${h.hostKey})`),
  ]
}

export function writeNewHost(file: string, entry: Record<string, unknown>): void {
  writeFileSync(file, withNewHost(readFileSync(file, 'utf8'), entry))
}

import { mkdirSync, realpathSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

// Small helpers for the programs bundled onto hosts (the watchdog, the WAL shipper): no heavy imports,
// as each bundle carries what it imports.

/** True when the module at `metaUrl` (its import.meta.url) is the program node was started with. */
export function isEntryModule(metaUrl: string): boolean {
  const entry = process.argv[1]
  try {
    return !!entry && realpathSync(entry) === realpathSync(fileURLToPath(metaUrl))
  } catch {
    return false
  }
}

/** Written whole or not at all (a temporary file, then a rename): a run killed halfway leaves the previous one. */
export function writeJsonAtomic(path: string, value: unknown, indent?: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, `${JSON.stringify(value, null, indent)}\n`, { mode: 0o600 })
  renameSync(tmp, path)
}

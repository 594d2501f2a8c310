import { createHash } from 'node:crypto'
import { quote } from '../commands/shell.ts'
import type { HostSession } from './session.ts'

// Check first, change only what differs: every setup step is built from these two, so a second run
// changes nothing and --dry-run (checks run, changes printed) shows exactly what would change.

export interface FileSpec {
  path: string
  content: string
  mode: string
  owner?: string
}

/** Makes a file hold exactly `content` with `mode` (and owner). True when it had to change it. */
export async function ensureFile(host: HostSession, file: FileSpec): Promise<boolean> {
  const probe = await host.exec(fileStateProbe(file.path), { probe: true, echo: false })
  if (fileMatches(probe.stdout, file)) return false
  await host.upload(file.path, file.content, file.mode, file.owner)
  return true
}

export function fileStateProbe(path: string): string {
  return `if [ -f ${quote(path)} ]; then stat -c '%a %U:%G' ${quote(path)}; sha256sum ${quote(path)} | cut -d' ' -f1; else echo absent; fi`
}

export function fileMatches(probeOutput: string, file: FileSpec): boolean {
  const [stat = '', hash = ''] = probeOutput.trim().split('\n')
  const [mode, owner] = stat.split(' ')
  const wantHash = createHash('sha256').update(file.content).digest('hex')
  const wantMode = file.mode.replace(/^0+(?=\d)/, '')
  return hash === wantHash && mode === wantMode && (!file.owner || owner === file.owner)
}

/** Runs `apply` only when `check` fails. True when it ran. */
export async function ensure(host: HostSession, check: string, apply: string): Promise<boolean> {
  const probe = await host.exec(check, { probe: true, allowFail: true, echo: false })
  if (probe.code === 0) return false
  await host.exec(apply)
  return true
}

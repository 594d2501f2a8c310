/**
 * The emergency run's state file: which phases finished, the droplet it made, the backup and release
 * it chose. Written after every change, so a run that failed, was interrupted or killed continues
 * from the phase that did not finish. Holds no secret.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

export const PHASES = ['create', 'setup', 'deploy', 'restore', 'health', 'dns', 'verify'] as const
export type Phase = (typeof PHASES)[number]

export interface NewHost {
  name: string
  address: string
  sshPort: number
  hostKey: string
  /** Set when this run created the droplet. */
  dropletId?: number
  /** True once the host key cloud-init installed (readable from the metadata service) was replaced. */
  hostKeyRotated?: boolean
}

export interface EmergencyState {
  env: string
  /** Tags the droplet, so an interrupted create is found again instead of made twice. */
  runId: string
  startedAt: string
  host?: NewHost
  /** The image the droplet was created from: a golden image's name (make image), or droplet.image. */
  image?: string
  backup?: { id: string; release: string | null; rows: number }
  /** The backup has a base backup: its archived WAL is replayed to the newest segment (not with NO_WAL=1). */
  toWal?: boolean
  /** Filled by the restore when it replayed WAL: what the recovered database held, table by table. */
  recovered?: { replayedTo: string; rows: number; tables: Record<string, number> }
  release?: string
  phases: Partial<Record<Phase, { status: 'running' | 'done' | 'failed'; s: number; at: string }>>
  finishedAt?: string
  /** Filled by verify: what the new host holds against the backup. */
  result?: { rowsVerified: number; dataLost: number }
}

/** .state/ of this repository (git-ignored), or CE_STATE_DIR. */
export function stateDir(): string {
  return resolve(process.env.CE_STATE_DIR ?? resolve(import.meta.dirname, '..', '..', '.state'))
}

export function stateFile(env: string): string {
  return join(stateDir(), `emergency-${env}.json`)
}

export function readState(env: string): EmergencyState | undefined {
  const file = stateFile(env)
  if (!existsSync(file)) return undefined
  return JSON.parse(readFileSync(file, 'utf8')) as EmergencyState
}

/** Atomic: a kill mid-write never leaves half a file. */
export function writeState(s: EmergencyState): void {
  const file = stateFile(s.env)
  mkdirSync(stateDir(), { recursive: true, mode: 0o700 })
  writeFileSync(`${file}.tmp`, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 })
  renameSync(`${file}.tmp`, file)
}

export function newState(env: string, now = new Date()): EmergencyState {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-').toLowerCase()
  return { env, runId: `ce-emergency-${env}-${stamp}`, startedAt: now.toISOString(), phases: {} }
}

/** The phase a run continues from: the first one that did not finish. */
export function resumePoint(s: EmergencyState): Phase | null {
  return PHASES.find((p) => s.phases[p]?.status !== 'done') ?? null
}

/** Seconds spent in finished phases plus the one running, for the 15-minute budget. */
export function spentS(s: EmergencyState): number {
  return Object.values(s.phases).reduce((a, p) => a + (p?.s ?? 0), 0)
}

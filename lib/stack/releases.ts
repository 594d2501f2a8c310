import type { Colour } from '../commands/compose.ts'
import { quote } from '../commands/shell.ts'

// The release history on the host: one JSON line per deploy or rollback, newest last.
export interface ReleaseRecord {
  id: string
  colour: Colour | 'swarm'
  images: Record<string, string>
  /** Image ids (sha256:...) as the host has them: what really ran. */
  digests: Record<string, string>
  /** Registry digests (repo@sha256:...) when the images came from a registry: what can be pulled again. */
  repo_digests?: Record<string, string>
  who: string
  at: string
  duration_s: number
  outcome: 'live' | 'failed' | 'rolled-back'
  action: 'deploy' | 'rollback'
  previous: string | null
  note?: string
  /** The commit the release was built from (COMMITTED_AT=, TREE=): stale-run refusal, promotion by tree. */
  source?: { committed_at?: string; tree?: string }
}

export function appendRelease(file: string): string {
  return `cat >> ${quote(file)}`
}

export function parseReleases(text: string): ReleaseRecord[] {
  return text
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as ReleaseRecord)
}

/** The release live now: the newest record that went live. */
export function liveRelease(history: ReleaseRecord[]): ReleaseRecord | undefined {
  return [...history].reverse().find((r) => r.outcome === 'live')
}

/** Where `rollback` goes by default: the newest live release other than the current one. */
export function previousGood(
  history: ReleaseRecord[],
  current: string | undefined,
): ReleaseRecord | undefined {
  return [...history].reverse().find((r) => r.outcome === 'live' && r.id !== current)
}

/**
 * The release that last ran on `colour` and went live: what its stopped containers held before a
 * deploy reused the colour. A failed deploy puts it back there, so rollback finds it as it was.
 */
export function lastLiveOn(history: ReleaseRecord[], colour: Colour): ReleaseRecord | undefined {
  return [...history].reverse().find((r) => r.colour === colour && r.outcome === 'live')
}

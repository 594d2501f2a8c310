import { parseImageDigests } from '../commands/registry.ts'
import { remotePaths } from '../env/host-paths.ts'
import type { Env } from '../env/load.ts'
import type { HostSession } from '../host/session.ts'
import { whoAmI } from '../run/audit.ts'
import { appendRelease, type ReleaseRecord } from '../stack/releases.ts'

// One release record (a line of the host's release history), for blue/green and swarm runs alike.

export interface RunFacts {
  id: string
  colour: ReleaseRecord['colour']
  images: Record<string, string>
  /** What imageDigests printed on the host ('' in a dry run). */
  digestsOutput: string
  started: number
  outcome: ReleaseRecord['outcome']
  action: ReleaseRecord['action']
  previous: string | null
  note?: string
}

export function releaseRecord(run: RunFacts): ReleaseRecord {
  const { ids: digests, repoDigests } = parseImageDigests(run.digestsOutput)
  return {
    id: run.id,
    colour: run.colour,
    images: run.images,
    digests,
    ...(Object.keys(repoDigests).length ? { repo_digests: repoDigests } : {}),
    who: whoAmI(),
    at: new Date().toISOString(),
    duration_s: Math.round((Date.now() - run.started) / 100) / 10,
    outcome: run.outcome,
    action: run.action,
    previous: run.previous,
    ...(run.note ? { note: run.note } : {}),
  }
}

/** Appends the record to the host's history; a live release also becomes its current-release. */
export async function appendReleaseOn(host: HostSession, env: Env, record: ReleaseRecord): Promise<void> {
  const paths = remotePaths(env)
  await host.exec(appendRelease(paths.releases), { stdin: `${JSON.stringify(record)}\n`, echo: false })
  if (record.outcome === 'live') await host.upload(paths.currentRelease, `${record.id}\n`, '0644')
}

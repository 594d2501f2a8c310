import { writeFlag } from '../commands/flag-file.ts'
import { parseImageDigests } from '../commands/registry.ts'
import { remotePaths } from '../env/host-paths.ts'
import type { Env } from '../env/load.ts'
import { commandFailure, type HostSession } from '../host/session.ts'
import type { CommandError } from '../report/errors.ts'
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
  source?: ReleaseRecord['source']
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
    ...(run.source ? { source: run.source } : {}),
  }
}

/**
 * Appends the record to the host's history; a live release also becomes its current-release. In one
 * command, with `andThen` after it once the record is written: the record's failure is thrown,
 * `andThen`'s returned (the record stands).
 */
export async function appendReleaseOn(
  host: HostSession,
  env: Env,
  record: ReleaseRecord,
  andThen?: string,
): Promise<CommandError | undefined> {
  const paths = remotePaths(env)
  const current = record.outcome === 'live' ? ` && ${writeFlag(paths.currentRelease, `${record.id}\n`)}` : ''
  const write = `${appendRelease(paths.releases)}${current}`
  if (!andThen) {
    await host.exec(write, { stdin: `${JSON.stringify(record)}\n`, echo: false })
    return undefined
  }
  const command = `{ ${write}; } && echo ${RECORDED} && { ${andThen}; }`
  const out = await host.exec(command, { stdin: `${JSON.stringify(record)}\n`, echo: false, allowFail: true })
  if (out.code === 0) return undefined
  const error = commandFailure(
    host.name,
    out.stdout.includes(RECORDED) ? andThen : write,
    out.code,
    out,
    `${record.id} is recorded as ${record.outcome} on ${host.name}; what failed after that is above. Look at the host (make status ENV=${env.name}).`,
  )
  if (!out.stdout.includes(RECORDED)) throw error
  return error
}

const RECORDED = 'release-recorded'

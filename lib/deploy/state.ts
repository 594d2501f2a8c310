import type { Colour, ComposeFlavour } from '../commands/compose.ts'
import type { Env, Service } from '../env/load.ts'
import type { HostSession } from '../host/session.ts'
import { perRun } from '../run/per-run.ts'
import type { ReleaseRecord } from '../stack/releases.ts'

// What one deploy or rollback run learns and decides, shared by its steps.
export interface DeployState {
  release: string
  images: Record<Service, string>
  flavour: Map<HostSession, ComposeFlavour>
  history: ReleaseRecord[]
  live: Colour | null
  target: Colour
  started: number
  /** Set once nginx points at the target colour; the cleanup switches back if the run did not finish. */
  switched: boolean
  finished: boolean
  action: 'deploy' | 'rollback'
  /**
   * The Postgres role the apps log in as (default: the env's user). make rotate-secret moves them to
   * a twin role for one switch, then back.
   */
  dbLogin?: string
  /** The colour switched away from is stopped and removed (make rotate-secret: it holds the old password). */
  removeOld?: boolean
  /** A rollback inside the instant-rollback window: the target colour already runs the release. */
  alreadyRunning?: boolean
  /** ... and every one of its containers was running and healthy when that was checked. */
  alreadyHealthy?: boolean
  /** ... and every service answered its health on its own port then. */
  alreadyAnswering?: boolean
  /** imageDigests' output per host, read while the gates ran (the record's digests). */
  digests?: Map<HostSession, string>
}

const states = perRun<DeployState>('deploy state')
export const setState = states.set
export const maybeState = states.maybe
export const state = states.get

export function imageRefs(env: Env, release: string): Record<Service, string> {
  return {
    site: `${env.images.site}:${release}`,
    saas: `${env.images.saas}:${release}`,
    api: `${env.images.api}:${release}`,
  }
}

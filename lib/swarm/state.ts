import type { Service } from '../env/load.ts'
import { perRun } from '../run/per-run.ts'
import type { ReleaseRecord } from '../stack/releases.ts'

// What one swarm deploy or rollback run learns and decides, shared by its steps.
export interface SwarmRun {
  release: string
  images: Record<Service, string>
  history: ReleaseRecord[]
  /** The release live before this run (undefined: a first deploy). */
  live: ReleaseRecord | undefined
  action: 'deploy' | 'rollback'
  started: number
  /** The stack was told to run this release: from here a failure must put the live release back. */
  deployed: boolean
  /** Swarm rolled the update back by itself: the live release already serves again. */
  swarmRolledBack: boolean
  finished: boolean
  /** Postgres already ran on the data host before this run (else its database is new and empty). */
  dataWasRunning: boolean
  /** The Docker secrets this release's api reads. */
  secretNames: Record<string, string>
  /** The Postgres login in the connection strings (rotate-secret's twin role); the env's user when unset. */
  login?: string
}

const runs = perRun<SwarmRun>('swarm run state')
export const setSwarmRun = runs.set
export const maybeSwarmRun = runs.maybe
export const swarmRun = runs.get

import type { Colour, ComposeFlavour } from '../commands/compose.ts'
import type { Env, Service } from '../env/load.ts'
import type { HostSession } from '../host/session.ts'
import type { Context } from '../run/runbook.ts'
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
}

const states = new WeakMap<Context, DeployState>()

export function setState(ctx: Context, state: DeployState): void {
  states.set(ctx, state)
}

export function maybeState(ctx: Context): DeployState | undefined {
  return states.get(ctx)
}

export function state(ctx: Context): DeployState {
  const s = states.get(ctx)
  if (!s) throw new Error('deploy state missing: the preconditions step did not run')
  return s
}

export function imageRefs(env: Env, release: string): Record<Service, string> {
  return {
    site: `${env.images.site}:${release}`,
    saas: `${env.images.saas}:${release}`,
    api: `${env.images.api}:${release}`,
  }
}

import type { ReleaseStrategy } from '../deploy/strategy.ts'
import { colourRelease } from '../deploy/strategy.ts'
import type { Context } from '../run/runbook.ts'
import { swarmRelease } from '../swarm/strategy.ts'

/** Blue/green on one host, or a rolling update on a swarm env (an env file with a swarm: section). */
export function releaseStrategy(ctx: Context): ReleaseStrategy {
  return ctx.env.swarm ? swarmRelease : colourRelease
}

/** A step's advice when it differs between one host and a swarm. */
export function bySetup(singleHost: string, swarm: string): (ctx: Context) => string {
  return (ctx) => (ctx.env.swarm ? swarm : singleHost)
}

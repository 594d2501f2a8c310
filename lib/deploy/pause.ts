import { startContainers, stopProject } from '../commands/backup.ts'
import { type Colour, colourPorts, projectName } from '../commands/compose.ts'
import { waitForHealth } from '../commands/health.ts'
import { liveColourProbe } from '../commands/nginx.ts'
import { type Env, SERVICES, type Service } from '../env/load.ts'
import type { HostSession } from '../host/session.ts'
import { print } from '../report/output.ts'
import { perRun } from '../run/per-run.ts'
import type { Context } from '../run/runbook.ts'

/**
 * Stopping the app while its data is replaced (restore), and starting it again: a strategy, so the
 * runbook has one step list. Single host: the live colour's containers of the services that use the
 * data (this file); the others keep serving. Swarm: the whole stack (lib/swarm/restore.ts). Either
 * way, once stop() ran, the app is started again however the run ends.
 */
export interface AppPause {
  /** The services stopped (they show the maintenance page meanwhile). */
  services(ctx: Context): Service[]
  /** What can be learnt before the pause (so the pause itself asks nothing). */
  prepare?(ctx: Context, host: HostSession): Promise<void>
  stop(ctx: Context, host: HostSession): Promise<void>
  start(ctx: Context, host: HostSession): Promise<void>
  /** The hosts whose nginx serves the domains. */
  webHosts(ctx: Context, host: HostSession): HostSession[]
}

/** The services that connect to Postgres or Redis (services.<name>.uses): a restore pauses only these. */
export function dataUsers(env: Env): Service[] {
  return SERVICES.filter((s) => env.services[s].length > 0)
}

const stopped = perRun<{ colour: Colour; ids: string[] }>('stopped containers')
const liveColour = perRun<Colour>('live colour')

export const colourPause: AppPause = {
  services: (ctx) => dataUsers(ctx.env),
  async prepare(ctx, host) {
    const live = (await host.exec(liveColourProbe(ctx.env.name), { probe: true, echo: false })).stdout.trim()
    liveColour.set(ctx, live === 'green' ? 'green' : 'blue')
  },
  async stop(ctx, host) {
    if (!liveColour.maybe(ctx)) await this.prepare?.(ctx, host)
    const colour = liveColour.get(ctx)
    const project = projectName(ctx.env.name, colour)
    const services = dataUsers(ctx.env)
    const out = await host.exec(stopProject(project, services), { echo: false })
    const ids = out.stdout.trim().split(/\s+/).filter(Boolean)
    stopped.set(ctx, { colour, ids })
    // However the run ends from here, the app is started again.
    ctx.onCleanup(async () => {
      if (ids.length && !ctx.dryRun) await host.exec(startContainers(ids), { allowFail: true, echo: false })
    })
    const others = SERVICES.filter((s) => !services.includes(s))
    print(
      `      stopped ${ids.length} container(s) of ${project} (${services.join(', ') || 'none'})${others.length ? `; ${others.join(', ')} keep serving` : ''}`,
    )
  },
  async start(ctx, host) {
    const s = stopped.maybe(ctx)
    if (!s || ctx.dryRun) return
    await host.exec(startContainers(s.ids), { echo: false })
    // Straight on their ports: nginx still shows the maintenance page for them.
    const ports = colourPorts(s.colour)
    for (const service of dataUsers(ctx.env))
      await host.exec(waitForHealth(ports[service], ctx.env.health.path, ctx.env.health.timeoutS), {
        echo: false,
        timeoutS: ctx.env.health.timeoutS + 15,
      })
  },
  webHosts: (_ctx, host) => [host],
}

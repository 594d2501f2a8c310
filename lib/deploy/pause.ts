import { startContainers, stopProject } from '../commands/backup.ts'
import { projectName } from '../commands/compose.ts'
import { liveColourProbe } from '../commands/nginx.ts'
import { SERVICES } from '../env/load.ts'
import type { HostSession } from '../host/session.ts'
import { EXIT, RunbookError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import { perRun } from '../run/per-run.ts'
import type { Context } from '../run/runbook.ts'
import { waitHealthy } from './prepare.ts'
import { throughNginx } from './switch.ts'

/**
 * Stopping the app while its data is replaced (restore), and starting it again: a strategy, so the
 * runbook has one step list. Single host: the live colour's containers (this file). Swarm: the stack
 * (lib/swarm/restore.ts). Either way, once stop() ran, the app is started again however the run ends.
 */
export interface AppPause {
  stop(ctx: Context, host: HostSession): Promise<void>
  start(ctx: Context, host: HostSession): Promise<void>
  /** The hosts whose nginx serves the domains. */
  webHosts(ctx: Context, host: HostSession): HostSession[]
}

const stopped = perRun<{ project: string; ids: string[] }>('stopped containers')

export const colourPause: AppPause = {
  async stop(ctx, host) {
    const colour = (
      await host.exec(liveColourProbe(ctx.env.name), { probe: true, echo: false })
    ).stdout.trim()
    const project = projectName(ctx.env.name, colour === 'green' ? 'green' : 'blue')
    const out = await host.exec(stopProject(project), { echo: false })
    const ids = out.stdout.trim().split(/\s+/).filter(Boolean)
    stopped.set(ctx, { project, ids })
    // However the run ends from here, the app is started again.
    ctx.onCleanup(async () => {
      if (ids.length && !ctx.dryRun) await host.exec(startContainers(ids), { allowFail: true, echo: false })
    })
    print(`      stopped ${ids.length} container(s) of ${project}`)
  },
  async start(ctx, host) {
    const s = stopped.maybe(ctx)
    if (!s || ctx.dryRun) return
    await host.exec(startContainers(s.ids), { echo: false })
    await waitHealthy(host, s.project, ctx.env.health.timeoutS)
  },
  webHosts: (_ctx, host) => [host],
}

/** Every domain answers 200 through nginx on each of `hosts`, or the step fails naming the ones that did not. */
export async function checkDomainsThroughNginx(ctx: Context, hosts: HostSession[]): Promise<void> {
  const bad: string[] = []
  for (const host of hosts)
    for (const service of SERVICES) {
      const out = await host.exec(throughNginx(ctx.env.domains[service], ctx.env.health.path, 1), {
        probe: true,
        echo: false,
      })
      const code = out.stdout.trim().split(' ')[0]
      if (code !== '200') bad.push(`${host.name}: ${ctx.env.domains[service]} answered ${code}`)
    }
  if (bad.length) throw new RunbookError(`after the restore: ${bad.join(', ')}`, EXIT.gateFailed)
  print('      every domain answers through nginx')
}

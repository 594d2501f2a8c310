import { gunzipSync } from 'node:zlib'
import { readOn } from '../commands/checker.ts'
import { print } from '../report/output.ts'
import type { Context, Step } from '../run/runbook.ts'
import { parseReleases, type ReleaseRecord } from '../stack/releases.ts'
import { DEFAULT_MAX_ERROR_LINES_PER_MIN, type HostErrorCounts, parseErrorCounts } from './errors.ts'
import { type History, parseHistory } from './history.ts'
import { readOutsideView, watcherOf } from './outside-view.ts'
import { buildReport, historySinceDay, type OutsideInput, type UptimeReport } from './report.ts'

// What make uptime and make status-page read on the env's hosts (each through the checker's helper), and
// the report they build from it with the env's thresholds.

export interface HostReads {
  now: number
  days: number
  histories: { host: string; history: History }[]
  errors: HostErrorCounts[]
  /** The deploys and rollbacks of the release record (when asked for: the pages show them). */
  releases: ReleaseRecord[]
  outside?: OutsideInput
}

const READ = { probe: true, echo: false } as const

/** Every connected host's health history and error counts; the release record from the first. */
export async function readHosts(
  ctx: Context,
  now: number,
  days: number,
  opts: { releases: boolean },
): Promise<HostReads> {
  const r: HostReads = { now, days, histories: [], errors: [], releases: [] }
  const since = historySinceDay(now, days)
  const windowMin = ctx.env.watchdog.restartWindowMin
  for (const host of ctx.hosts) {
    const chunks: Buffer[] = []
    await host.exec(readOn(host, ctx.env, 'history', since), { ...READ, onStdout: (c) => chunks.push(c) })
    const gz = Buffer.concat(chunks)
    const history = parseHistory(gz.length ? gunzipSync(gz).toString('utf8') : '', { host: host.name })
    r.histories.push({ host: host.name, history })
    const out = await host.exec(readOn(host, ctx.env, 'errors', String(Math.round(windowMin))), READ)
    const counts = parseErrorCounts(out.stdout, host.name)
    r.errors.push(counts)
    if (opts.releases && r.releases.length === 0)
      r.releases = parseReleases((await host.exec(readOn(host, ctx.env, 'releases'), READ)).stdout)
    print(
      `      ${host.name}: ${history.lines} history line(s) since ${since} (${Math.ceil(gz.length / 1024)} KB gzipped), ${history.malformed} malformed; nginx log ${counts.log ?? 'none'}`,
    )
  }
  return r
}

/** The report of what was read, with the env's services, thresholds and unreachable hosts. */
export function reportOf(ctx: Context, r: HostReads): UptimeReport {
  const { env } = ctx
  return buildReport({
    env: env.name,
    now: r.now,
    days: r.days,
    services: Object.entries(env.domains).map(([service, domain]) => ({ service, domain })),
    histories: r.histories,
    errors: r.errors,
    unreachable: ctx.unreachable ?? [],
    ...(r.outside ? { outside: r.outside } : {}),
    p95DegradeFactor: env.alerts.p95DegradeFactor,
    errorThresholds: {
      windowMin: env.watchdog.restartWindowMin,
      max5xxPerMin: env.alerts.max5xxPerMin,
      maxRestarts: env.watchdog.maxRestarts,
      maxErrorLinesPerMin: DEFAULT_MAX_ERROR_LINES_PER_MIN,
    },
  })
}

/** The step that reads the outside view (outside_view) into the run's reads. */
export function outsideViewStep(reads: (ctx: Context) => HostReads): Step {
  return {
    title: "Read the outside view: the watching env's probes of these domains (outside_view)",
    next: 'Nothing was changed. Without the outside view the report below is the host view only.',
    skip: (ctx) => (ctx.env.outsideView ? false : 'no outside_view in the env file: the host view only'),
    async run(ctx) {
      const watcher = watcherOf(ctx.env)
      if (!watcher) return 'ok'
      const r = reads(ctx)
      r.outside = await readOutsideView(ctx.env, watcher, ctx.secrets, historySinceDay(r.now, r.days))
      return 'ok'
    },
  }
}

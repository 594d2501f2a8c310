/**
 * uptime — availability against the 99.9% budget, p50/p95 latency and their trend, and error tracking
 * (nginx 5xx, container restarts, app error lines), from the health history every host keeps
 * (/var/log/conciliaextrato/health/<env>.jsonl, written by the watchdog and `make health`).
 * Read-only. `make uptime ENV=<env> [DAYS=30] [JSON=1]`; exit 4 when the budget is exhausted, a p95
 * degraded or an error threshold is exceeded (each named), with one notification to the env's
 * `alert` targets. Rules: lib/uptime/*.ts.
 */

import { gunzipSync } from 'node:zlib'
import { readOn } from '../lib/commands/checker.ts'
import { readOnlyLogin } from '../lib/env/needs.ts'
import { notify, reportNotifyResults } from '../lib/notify/send.ts'
import { EXIT, InputError, RunbookError } from '../lib/report/errors.ts'
import { print, setSinks, table } from '../lib/report/output.ts'
import { redact } from '../lib/report/redact.ts'
import { ciRunUrl, whoAmI } from '../lib/run/audit.ts'
import type { OptionSpec } from '../lib/run/cli.ts'
import { stringArg } from '../lib/run/cli.ts'
import { perRun } from '../lib/run/per-run.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { errorRows, outageLines, serviceRows } from '../lib/uptime/format.ts'
import {
  buildReport,
  DEFAULT_MAX_ERROR_LINES_PER_MIN,
  type History,
  type HostErrorCounts,
  historySinceDay,
  type OutsideInput,
  parseErrorCounts,
  parseHistory,
  type UptimeReport,
} from '../lib/uptime/index.ts'
import { readOutsideView, watcherOf } from '../lib/uptime/outside-view.ts'

const OPTIONS: OptionSpec[] = [
  { name: 'days', makeVar: 'DAYS', value: true, help: 'the window, in days (default 30, at most 365)' },
  {
    name: 'json',
    makeVar: 'JSON=1',
    help: 'print the report as one JSON document on stdout (progress on stderr)',
  },
]

interface UptimeRun {
  now: number
  days: number
  histories: { host: string; history: History }[]
  errors: HostErrorCounts[]
  outside?: OutsideInput
  report?: UptimeReport
}

const runs = perRun<UptimeRun>('uptime history')
const run = runs.get

export function parseDays(value: string | undefined): number {
  if (value === undefined) return 30
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 365)
    throw new InputError(
      `DAYS=${value}: expected a whole number of days from 1 to 365`,
      [],
      'Nothing was changed. Run it again with DAYS=<1..365>, e.g. DAYS=30.',
    )
  return Number(value)
}

export const uptime: RunbookSpec = {
  name: 'uptime',
  mutates: false,
  // It alerts when the error budget burns too fast.
  checker: true,
  // A dead droplet is what it must report: the others (and the outside view) still count.
  unreachableOk: true,
  needs: (env) => [
    readOnlyLogin(env),
    'notify:alert',
    ...(env.outsideView ? (['outside-view'] as const) : []),
  ],
  options: OPTIONS,
  steps: [
    {
      title: 'Read the health history and the error counts of every host',
      next: 'Nothing was changed. Check that the host answers and the files are readable, then run it again.',
      async run(ctx) {
        const r: UptimeRun = {
          now: Date.now(),
          days: parseDays(stringArg(ctx.args, 'days')),
          histories: [],
          errors: [],
        }
        runs.set(ctx, r)
        const since = historySinceDay(r.now, r.days)
        const windowMin = ctx.env.watchdog.restartWindowMin
        for (const host of ctx.hosts) {
          const chunks: Buffer[] = []
          await host.exec(readOn(host, ctx.env, 'history', since), {
            probe: true,
            echo: false,
            onStdout: (chunk) => chunks.push(chunk),
          })
          const gz = Buffer.concat(chunks)
          const text = gz.length ? gunzipSync(gz).toString('utf8') : ''
          const history = parseHistory(text, { host: host.name })
          r.histories.push({ host: host.name, history })
          const out = await host.exec(readOn(host, ctx.env, 'errors', String(Math.round(windowMin))), {
            probe: true,
            echo: false,
          })
          const counts = parseErrorCounts(out.stdout, host.name)
          r.errors.push(counts)
          print(
            `      ${host.name}: ${history.lines} history line(s) since ${since} (${Math.ceil(gz.length / 1024)} KB gzipped), ${history.malformed} malformed; nginx log ${counts.log ?? 'none'}`,
          )
        }
        return 'ok'
      },
    },
    {
      title: "Read the outside view: the watching env's probes of these domains (outside_view)",
      next: 'Nothing was changed. Without the outside view the report below is the host view only.',
      skip: (ctx) => (ctx.env.outsideView ? false : 'no outside_view in the env file: the host view only'),
      async run(ctx) {
        const watcher = watcherOf(ctx.env)
        if (!watcher) return 'ok'
        const r = run(ctx)
        r.outside = await readOutsideView(ctx.env, watcher, ctx.secrets, historySinceDay(r.now, r.days))
        return 'ok'
      },
    },
    {
      title: 'Availability, latency and errors',
      async run(ctx) {
        const r = run(ctx)
        const report = buildReport({
          env: ctx.env.name,
          now: r.now,
          days: r.days,
          services: Object.entries(ctx.env.domains).map(([service, domain]) => ({ service, domain })),
          histories: r.histories,
          errors: r.errors,
          unreachable: ctx.unreachable ?? [],
          ...(r.outside ? { outside: r.outside } : {}),
          p95DegradeFactor: ctx.env.alerts.p95DegradeFactor,
          errorThresholds: {
            windowMin: ctx.env.watchdog.restartWindowMin,
            max5xxPerMin: ctx.env.alerts.max5xxPerMin,
            maxRestarts: ctx.env.watchdog.maxRestarts,
            maxErrorLinesPerMin: DEFAULT_MAX_ERROR_LINES_PER_MIN,
          },
        })
        r.report = report
        if (ctx.args.json === true) {
          process.stdout.write(`${redact(JSON.stringify(report, null, 2))}\n`)
          return 'ok'
        }
        print(
          `\n${ctx.env.name}: the last ${report.days} days (${report.window.from} -> ${report.window.to}), trend against the ${report.days} before`,
        )
        print(table(serviceRows(report)))
        const outages = outageLines(report)
        if (outages.length) print(`\nOutages\n${outages.map((l) => `  ${l}`).join('\n')}`)
        print(`\nErrors in the last ${report.errorWindow.minutes} min`)
        print(table(errorRows(report)))
        if (report.warnings.length) print(`\nWarnings\n${report.warnings.map((w) => `  ! ${w}`).join('\n')}`)
        return 'ok'
      },
    },
    {
      title: 'Alert on degradations (budget, p95, error thresholds)',
      next: 'Look at the alerts above: docs/runbooks/ has the page for each service problem.',
      async run(ctx) {
        const report = run(ctx).report
        if (!report || report.alerts.length === 0) {
          print('      no degradation')
          return 'ok'
        }
        const subscribed = ctx.env.notify.some((t) => t.events.includes('alert'))
        if (subscribed && ctx.dryRun) print('      (dry run: the alert targets are not notified)')
        else if (subscribed)
          reportNotifyResults(
            await notify(ctx.env.notify, ctx.secrets, {
              event: 'alert',
              env: ctx.env.name,
              outcome: 'failed',
              title: `${ctx.env.name}: ${report.alerts.length} degradation(s) over the last ${report.days} days`,
              who: whoAmI(),
              link: ciRunUrl(),
              details: report.alerts,
              runbook: 'make uptime',
            }),
          )
        throw new RunbookError(
          `${report.alerts.length} degradation(s):\n${report.alerts.map((a) => `- ${a}`).join('\n')}`,
          EXIT.gateFailed,
          'Nothing was changed. Budget or p95: find the cause in the outages and deploys of the window (make releases); 5xx, restarts, error lines: the app logs on the host (docker logs).',
        )
      },
    },
  ],
}

if (isMain(import.meta.url)) {
  // JSON=1: stdout carries the report only, so `make uptime JSON=1 > report.json` is a JSON file.
  if (process.argv.includes('--json')) setSinks((text) => process.stderr.write(text))
  await main(uptime)
}

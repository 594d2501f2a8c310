/**
 * uptime — availability against the 99.9% budget, p50/p95 latency and their trend, and error tracking
 * (nginx 5xx, container restarts, app error lines), from the health history every host keeps
 * (/var/log/conciliaextrato/health/<env>.jsonl, written by the watchdog and `make health`).
 * The outside view (outside_view): the watching env's probes of these domains, where a dead droplet is
 * down. Read-only. `make uptime ENV=<env> [DAYS=30] [JSON=1] [HTML=1]`; exit 4 when the budget is exhausted, a p95
 * degraded or an error threshold is exceeded (each named), with one notification to the env's
 * `alert` targets. Rules: lib/uptime/*.ts.
 */

import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { readOnlyLogin } from '../lib/env/needs.ts'
import { notify, reportNotifyResults } from '../lib/notify/send.ts'
import { EXIT, InputError, RunbookError } from '../lib/report/errors.ts'
import { print, table } from '../lib/report/output.ts'
import { redact } from '../lib/report/redact.ts'
import { ciRunUrl, whoAmI } from '../lib/run/audit.ts'
import type { OptionSpec } from '../lib/run/cli.ts'
import { stringArg } from '../lib/run/cli.ts'
import { perRun } from '../lib/run/per-run.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { errorRows, outageLines, serviceRows } from '../lib/uptime/format.ts'
import { deployMarks, renderPage } from '../lib/uptime/html.ts'
import type { UptimeReport } from '../lib/uptime/index.ts'
import { type HostReads, outsideViewStep, readHosts, reportOf } from '../lib/uptime/read.ts'

const OPTIONS: OptionSpec[] = [
  { name: 'days', makeVar: 'DAYS', value: true, help: 'the window, in days (default 30, at most 365)' },
  {
    name: 'html',
    makeVar: 'HTML',
    value: true,
    help: 'also write the report as an HTML page with the charts: HTML=1 (reports/uptime-<env>-<day>.html) or HTML=<file>',
  },
  {
    name: 'json',
    makeVar: 'JSON=1',
    help: 'print the report as one JSON document on stdout (progress on stderr)',
  },
]

type UptimeRun = HostReads & { report?: UptimeReport }

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
        const days = parseDays(stringArg(ctx.args, 'days'))
        runs.set(ctx, await readHosts(ctx, Date.now(), days, { releases: ctx.args.html !== undefined }))
        return 'ok'
      },
    },
    outsideViewStep(run),
    {
      title: 'Availability, latency and errors',
      async run(ctx) {
        const r = run(ctx)
        const report = reportOf(ctx, r)
        r.report = report
        const html = stringArg(ctx.args, 'html')
        if (html !== undefined) {
          const day = report.generatedAt.slice(0, 10)
          const file = resolve(html === '1' ? join('reports', `uptime-${ctx.env.name}-${day}.html`) : html)
          mkdirSync(dirname(file), { recursive: true })
          writeFileSync(file, renderPage(report, deployMarks(r.releases), { title: 'Uptime report' }))
          print(`      the report with its charts: ${file}`)
        }
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
  await main(uptime)
}

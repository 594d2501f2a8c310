/**
 * report — the month's delivery figures for an env: deploys and their success rate, lead time (commit to
 * live), change failure rate, time to restore, rollbacks and emergencies, the time spent in runbooks;
 * and the month's uptime and error budget per service, from the hosts and from outside. Computed from the
 * runs' audit records in the env's backup store (records/<env>/: each run's own, and the copies
 * make ship-records makes), so it works while the droplet is gone; the uptime from the hosts' health
 * history (a host that does not answer is named, the rest goes on). Read-only.
 * `make report ENV=<env> [MONTH=2026-11] [JSON=1]`: Markdown on the console, and both
 * reports/report-<env>-<month>.md and .html (charts; self-contained). JSON=1: one JSON line on stdout.
 * How each figure is counted: docs/runbooks/report.md
 */

import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { reportMarkdown } from '../lib/delivery/format.ts'
import { renderReport } from '../lib/delivery/html.ts'
import { incidentFigures } from '../lib/delivery/incidents.ts'
import { deliveryMetrics, monthWindow, previousMonth } from '../lib/delivery/metrics.ts'
import { readRecords } from '../lib/delivery/records.ts'
import { type MonthUptime, monthUptime } from '../lib/delivery/uptime.ts'
import { readOnlyLogin } from '../lib/env/needs.ts'
import type { Incident } from '../lib/incident/model.ts'
import { readIncidents } from '../lib/incident/store.ts'
import { InputError } from '../lib/report/errors.ts'
import { print } from '../lib/report/output.ts'
import { redact } from '../lib/report/redact.ts'
import type { AuditRecord } from '../lib/run/audit.ts'
import { stringArg } from '../lib/run/cli.ts'
import { perRun } from '../lib/run/per-run.ts'
import { type Context, isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { openStore } from '../lib/store/storage.ts'
import { type HostReads, outsideViewStep, readHosts, reportOf } from '../lib/uptime/read.ts'

interface ReportRun {
  records?: AuditRecord[]
  incidents?: Incident[]
  reads?: HostReads
  uptime?: MonthUptime
}
const runs = perRun<ReportRun>('report')

const DAY_MS = 86_400_000

/** MONTH=YYYY-MM (default: this month, UTC); one that has not begun is refused. */
export function parseMonth(value: string | undefined, now = new Date()): string {
  const month = value ?? now.toISOString().slice(0, 7)
  if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(month))
    throw new InputError(
      `MONTH=${month}: expected YYYY-MM, e.g. MONTH=2026-11`,
      [],
      'Nothing was read. Run it again with MONTH=YYYY-MM.',
    )
  if (monthWindow(month).from > now.getTime())
    throw new InputError(
      `MONTH=${month} has not begun`,
      [],
      'Nothing was read. Give this month or an earlier one.',
    )
  return month
}

const monthOf = (ctx: Context) => parseMonth(stringArg(ctx.args, 'month'))

export const report: RunbookSpec = {
  name: 'report',
  mutates: false,
  checker: true,
  // The records are off the host: a dead droplet costs the uptime's host view only.
  unreachableOk: true,
  needs: (env) => [readOnlyLogin(env), 'store', ...(env.outsideView ? (['outside-view'] as const) : [])],
  validate: (args) => void parseMonth(stringArg(args, 'month')),
  options: [
    { name: 'month', makeVar: 'MONTH', value: true, help: 'the month, YYYY-MM (default: this month, UTC)' },
    {
      name: 'json',
      makeVar: 'JSON=1',
      help: 'print the figures as one JSON line on stdout (the report on stderr)',
    },
  ],
  steps: [
    {
      title: "Read the runs' audit records from the backup store (the month and the one before)",
      next: "Nothing was changed. Check the store's credentials and endpoint (make backups ENV=<env> reads the same store), then run it again.",
      async run(ctx) {
        if (!ctx.env.backup)
          throw new InputError(`${ctx.env.file} has no backup: section: the records are kept in its store`)
        const month = monthOf(ctx)
        const store = openStore(ctx.env.backup.store, ctx.secrets)
        const read = await readRecords(store, ctx.env.name, [previousMonth(month), month])
        const { incidents } = await readIncidents(store, ctx.env.name)
        runs.set(ctx, { records: read.records, incidents })
        print(`      ${incidents.length} incident(s) in the register`)
        print(
          `      ${read.records.length} run(s) in ${read.objects} object(s) of ${store.description}${read.malformed ? `; ${read.malformed} line(s) not a record` : ''}`,
        )
        return 'ok'
      },
    },
    {
      title: "Read the month's health history of every host (uptime and error budget)",
      next: 'Nothing was changed. The report below has no uptime: check that the host answers (make status), then run it again.',
      skip: (ctx) => (ctx.hosts.length === 0 ? 'no host answered: the uptime is not read' : false),
      async run(ctx) {
        const { from, to } = monthWindow(monthOf(ctx))
        const now = Math.min(Date.now(), to)
        runs.get(ctx).reads = await readHosts(ctx, now, (now - from) / DAY_MS, { releases: false })
        return 'ok'
      },
    },
    {
      ...outsideViewStep((ctx) => runs.get(ctx).reads as HostReads),
      skip: (ctx) =>
        !runs.get(ctx).reads
          ? 'no host view read'
          : ctx.env.outsideView
            ? false
            : 'no outside_view in the env file',
    },
    {
      title: 'The figures: Markdown, HTML, JSON',
      async run(ctx) {
        const r = runs.get(ctx)
        const month = monthOf(ctx)
        const m = deliveryMetrics(r.records ?? [], ctx.env.name, month)
        const uptime = r.reads ? monthUptime(reportOf(ctx, r.reads)) : undefined
        const inc = incidentFigures(r.incidents ?? [], month)
        const md = reportMarkdown(m, uptime, inc)
        const base = resolve(join('reports', `report-${ctx.env.name}-${month}`))
        mkdirSync(resolve('reports'), { recursive: true })
        writeFileSync(`${base}.md`, md)
        writeFileSync(`${base}.html`, renderReport(m, uptime, inc))
        print(`\n${md}`)
        print(`      written: ${base}.md and ${base}.html`)
        const summary = {
          deploys: m.deploys,
          success_rate: m.success_rate,
          lead_time_p50_s: m.lead_time_p50_s,
          change_failure_rate: m.change_failure_rate,
          mttr_s: m.mttr_s,
          rollbacks: m.rollbacks,
          emergencies: m.emergencies,
          incidents: inc.incidents,
          incident_resolve_p50_s: inc.resolve_p50_s,
          month,
          uptime_pct: uptime
            ? Object.fromEntries(uptime.rows.map((u) => [u.service, (u.outside ?? u.host).availability_pct]))
            : null,
        }
        if (ctx.args.json === true) process.stdout.write(`${redact(JSON.stringify(summary))}\n`)
        return 'ok'
      },
    },
  ],
}

if (isMain(import.meta.url)) {
  await main(report)
}

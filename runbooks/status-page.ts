/**
 * status-page — the public status page: per service the state now, a 90-day bar of daily availability
 * seen from outside (the watching env's probes: outside_view) and from the host, p95 per day, the
 * incidents and the recent deploys (never who made them). One self-contained HTML page (no script, no
 * font, nothing fetched) and its data (status.json), published to the env's status_page store, each
 * replaced whole and read back. Reads the hosts as the checker; goes on when a host does not answer
 * (a dead droplet is what the page must show). Run by CI with the health job, and by anyone after an
 * incident. `make status-page ENV=<env>`; DRY_RUN=1 renders and says where it would publish.
 * On-call page: docs/runbooks/uptime.md#the-status-page
 */

import type { Env } from '../lib/env/load.ts'
import { readOnlyLogin } from '../lib/env/needs.ts'
import { InputError } from '../lib/report/errors.ts'
import { print } from '../lib/report/output.ts'
import { perRun } from '../lib/run/per-run.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { deployMarks, renderPage, stateNow } from '../lib/uptime/html.ts'
import { type PageFile, pageLocation, publishPage } from '../lib/uptime/publish.ts'
import { type HostReads, outsideViewStep, readHosts, reportOf } from '../lib/uptime/read.ts'

type PageRun = HostReads & { files?: PageFile[] }
const runs = perRun<PageRun>('status page')

function pageConfig(env: Env) {
  if (!env.statusPage)
    throw new InputError(
      `${env.file} has no status_page: section, so there is nowhere to publish the page`,
      [],
      'Add status_page: (store, url; see env/production.yaml and docs/runbooks/uptime.md#the-status-page). make uptime HTML=1 writes the same page to a file.',
    )
  return env.statusPage
}

export const statusPage: RunbookSpec = {
  name: 'status-page',
  mutates: false,
  checker: true,
  unreachableOk: true,
  needs: (env) => {
    pageConfig(env)
    return [readOnlyLogin(env), 'status-page', ...(env.outsideView ? (['outside-view'] as const) : [])]
  },
  steps: [
    {
      title: 'Read the health history, the error counts and the release record of every host',
      next: 'Nothing was changed: the published page stays as it was. Check that the host answers, then run it again.',
      async run(ctx) {
        runs.set(ctx, await readHosts(ctx, Date.now(), pageConfig(ctx.env).days, { releases: true }))
        return 'ok'
      },
    },
    outsideViewStep(runs.get),
    {
      title: 'Render the page (index.html) and its data (status.json)',
      async run(ctx) {
        const r = runs.get(ctx)
        const report = reportOf(ctx, r)
        const html = renderPage(report, deployMarks(r.releases), { title: 'ConciliaExtrato status' })
        const status = {
          env: report.env,
          generatedAt: report.generatedAt,
          days: report.days,
          services: report.services.map((s) => ({
            service: s.service,
            domain: s.domain,
            state: stateNow(s),
            availabilityPct: (s.outside ?? s).availability.availabilityPct,
            seenFrom: s.outside ? 'outside' : 'host',
          })),
        }
        r.files = [
          { name: 'index.html', body: html, contentType: 'text/html; charset=utf-8' },
          {
            name: 'status.json',
            body: `${JSON.stringify(status, null, 2)}\n`,
            contentType: 'application/json',
          },
        ]
        for (const s of status.services)
          print(
            `      ${s.service} (${s.domain}): ${s.state}, ${s.availabilityPct ?? 'no data'}% over ${report.days} days (${s.seenFrom})`,
          )
        print(
          `      index.html ${Math.ceil(html.length / 1024)} KB; ${report.warnings.length} warning(s) in the report`,
        )
        for (const w of report.warnings) print(`      ! ${w}`)
        return 'ok'
      },
    },
    {
      title: 'Publish the page to the status_page store, and read it back',
      next: 'The previous page stays published. See the error above (the bucket, the Spaces key, the endpoint), then run make status-page again.',
      async run(ctx) {
        const config = pageConfig(ctx.env)
        const files = runs.get(ctx).files ?? []
        const where = pageLocation(config.store)
        if (ctx.dryRun) {
          print(`      dry run: would write ${files.map((f) => f.name).join(' and ')} to ${where}`)
          return 'dry-run'
        }
        await publishPage(config.store, ctx.secrets, files)
        print(`      published: ${where}${config.url ? `\n      read it at ${config.url}` : ''}`)
        ctx.auditEvent(`status page published to ${where}`)
        return 'changed'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(statusPage)

/**
 * health — is everything up? Every domain, the API's latency, TLS and certificates, security headers,
 * DNS, containers, nginx/Postgres/Redis, disk and memory, the newest backup, the last deploy.
 *
 * When: any time (read-only); CI every 5 minutes; after an alert; deploy's gates run the HTTP checks.
 * Output: a table for people, JSON=1 for machines. Exits 4 when a check fails, naming it.
 * On-call page: docs/runbooks/health.md (every check and what to do), docs/runbooks/alerts.md
 */

import { readOnlyLogin } from '../lib/env/needs.ts'
import { allChecks, type HealthResult } from '../lib/health/checks.ts'
import { EXIT, RunbookError } from '../lib/report/errors.ts'
import { print, table } from '../lib/report/output.ts'
import { redact } from '../lib/report/redact.ts'
import { perRun } from '../lib/run/per-run.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'

const results = perRun<HealthResult[]>('health results')

export const health: RunbookSpec = {
  name: 'health',
  mutates: false,
  // Read-only: the checker's key (or the SSH key without a checker) and, for the newest backup's age,
  // the store's credentials; no backup key, no Cloudflare or DigitalOcean token.
  checker: true,
  needs: (env) => [readOnlyLogin(env), 'store'],
  options: [{ name: 'json', makeVar: 'JSON=1', help: 'print the results as one JSON document' }],
  steps: [
    {
      title: 'Run every check',
      async run(ctx) {
        const t0 = Date.now()
        results.set(ctx, await allChecks(ctx.hosts, ctx.env, ctx.secrets))
        print(`      ${results.get(ctx).length} checks in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
        return 'ok'
      },
    },
    {
      title: 'Report',
      async run(ctx) {
        const all = results.maybe(ctx) ?? []
        const failed = all.filter((r) => r.ok === false)
        if (ctx.args.json === true) {
          const doc = JSON.stringify({
            env: ctx.env.name,
            at: new Date().toISOString(),
            ok: failed.length === 0,
            results: all,
          })
          // In the run's output, and alone on stdout (JSON=1 sends the progress to stderr).
          print(doc)
          process.stdout.write(`${redact(doc)}\n`)
        } else {
          const mark = (r: HealthResult) => (r.ok === null ? '-' : r.ok ? 'ok' : 'FAIL')
          print(
            table([
              ['', 'check', 'target', 'value', 'threshold'],
              ...all.map((r) => [mark(r), r.check, r.target, r.value, r.limit]),
            ]),
          )
        }
        if (failed.length)
          throw new RunbookError(
            `${failed.length} check(s) failed:\n${failed.map((r) => `  - ${r.check} ${r.target}: ${r.value} (want ${r.limit}); see ${r.runbook}`).join('\n')}`,
            EXIT.gateFailed,
            `Open the runbook named for each failed check (docs/runbooks/alerts.md lists them all).`,
          )
        print(
          `      all ${all.filter((r) => r.ok).length} checks passed${all.some((r) => r.ok === null) ? ` (${all.filter((r) => r.ok === null).length} not applicable here)` : ''}`,
        )
        return 'ok'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(health)

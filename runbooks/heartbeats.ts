/**
 * heartbeats — the dead man's switch: creates or updates, at the env's Healthchecks.io-compatible
 * service, one check per job that must keep coming (the host watchdog, every watchdog.interval_s; each
 * scheduled workflow job, on its cron), then shows each check's state. A check that went silent is exit 3.
 *
 * When: after the env's heartbeat: section or watchdog.interval_s changed (and once, to create them);
 * by the on-call when a "check is DOWN" alert came, to see which jobs went quiet. Changes: only the
 * checks at the service (what differs); never the hosts. Needs no host: it works while the droplet is gone.
 * On-call page: docs/runbooks/heartbeats.md
 */
import { type HcCheck, HeartbeatApi } from '../lib/heartbeat/api.ts'
import { describeCheck, differs, heartbeatJobs } from '../lib/heartbeat/jobs.ts'
import { InputError, PreconditionError } from '../lib/report/errors.ts'
import { print, table } from '../lib/report/output.ts'
import type { Context } from '../lib/run/runbook.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'

function service(ctx: Context): { api: HeartbeatApi; where: string } {
  const hb = ctx.env.heartbeat
  if (!hb)
    throw new InputError(
      `${ctx.env.file} has no heartbeat: section, so there is no dead man's switch to set up`,
      [],
      'Add heartbeat: (ping_url_secret, api_key_secret; see env/production.yaml and docs/runbooks/heartbeats.md).',
    )
  return { api: new HeartbeatApi(hb.api, ctx.secrets[hb.apiKeySecret] ?? ''), where: hb.api }
}

export const heartbeats: RunbookSpec = {
  name: 'heartbeats',
  mutates: true,
  offline: true,
  needs: () => ['heartbeat-api'],
  steps: [
    {
      title: "Create or update each job's check (its period or schedule, its grace, every integration)",
      next: 'See the error above: a refused key is heartbeat.api_key_secret (a read-write API key of the project); a service that does not answer: try again, the checks stay as they were.',
      async run(ctx) {
        const { api, where } = service(ctx)
        const jobs = heartbeatJobs(ctx.env)
        for (const job of jobs) print(`  ${job.slug}: ${describeCheck(job)}`)
        if (ctx.dryRun) {
          print(`dry-run: would create or update ${jobs.length} check(s) at ${where} (POST /api/v3/checks/)`)
          return 'dry-run'
        }
        const have = new Map((await api.list(ctx.env.name)).map((c) => [c.name, c]))
        const todo = jobs.filter((j) => differs(j, have.get(j.slug)))
        for (const job of todo) {
          const { created } = await api.upsert(ctx.env.name, job)
          print(`  ${job.slug}: ${created ? 'created' : 'updated'}`)
        }
        if (todo.length === 0) print(`  all ${jobs.length} check(s) as they should be at ${where}`)
        return todo.length ? 'changed' : 'ok'
      },
    },
    {
      title: "Each check's state: a silent job is down",
      next: 'A down check: open docs/runbooks/heartbeats.md at that job (the watchdog: is the droplet up? make status ENV=<env>; a scheduled job: the workflow run in GitHub Actions).',
      async run(ctx) {
        const { api } = service(ctx)
        const wanted = new Set(heartbeatJobs(ctx.env).map((j) => j.slug))
        const checks = (await api.list(ctx.env.name)).filter((c) => wanted.has(c.name))
        print(table([['check', 'state', 'last ping', 'expected'], ...checks.map(row)]))
        if (ctx.dryRun && checks.length < wanted.size) return 'ok'
        const missing = [...wanted].filter((s) => !checks.some((c) => c.name === s))
        const down = checks.filter((c) => c.status === 'down')
        if (missing.length)
          throw new PreconditionError(
            `not at the service: ${missing.join(', ')}`,
            'Run make heartbeats ENV=<env> without DRY_RUN.',
          )
        if (down.length)
          throw new PreconditionError(
            `silent: ${down.map((c) => `${c.name} (last ping ${c.last_ping ?? 'never'})`).join(', ')}`,
          )
        return 'ok'
      },
    },
  ],
}

function row(c: HcCheck): string[] {
  return [
    c.name,
    c.status === 'new' ? 'new (no ping yet)' : c.status,
    c.last_ping ?? '-',
    c.schedule ? `${c.schedule} UTC, grace ${c.grace} s` : `every ${c.timeout} s, grace ${c.grace} s`,
  ]
}

if (isMain(import.meta.url)) await main(heartbeats)

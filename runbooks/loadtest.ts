/**
 * loadtest — every domain loaded from this machine, as visitors meet it: through the edge (each name
 * resolved; production and staging: Cloudflare, over HTTPS), or the web host's port 80 where the env has no edge
 * (ENV=local). autocannon at a fixed total rate, split evenly over the domains, for a duration; then
 * p50/p95/p99, throughput and errors (connection errors, timeouts, 4xx/5xx). Fails (exit 4) when p95
 * >= 2 s or errors > 1%. Changes nothing, but production's visitors share what it loads: a gentle
 * default rate (5/s) and a typed confirmation there. `make loadtest ENV=<env> [RPS=50] [DURATION=60s]
 * [URL_PATH=/] [JSON=1]`; DRY_RUN=1 shows the plan and sends nothing. On-call page: docs/runbooks/loadtest.md
 */

import {
  ERROR_LIMIT_PCT,
  type LoadSummary,
  loadTargets,
  P95_LIMIT_MS,
  parseDuration,
  parsePath,
  parseRps,
  summarise,
  type Target,
  type TargetResult,
  verdictProblems,
} from '../lib/loadtest/plan.ts'
import { preflight, resolveEdge } from '../lib/loadtest/preflight.ts'
import { connectionsFor, loadOne } from '../lib/loadtest/run.ts'
import { EXIT, RunbookError } from '../lib/report/errors.ts'
import { print, table } from '../lib/report/output.ts'
import { redact } from '../lib/report/redact.ts'
import { stringArg } from '../lib/run/cli.ts'
import { perRun } from '../lib/run/per-run.ts'
import { type Context, confirmMidRun, isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'

interface LoadRun {
  targets: Target[]
  results?: TargetResult[]
  summary?: LoadSummary
}
const runs = perRun<LoadRun>('load test')
const seconds = (ctx: Context) => parseDuration(stringArg(ctx.args, 'duration'))

export const loadtest: RunbookSpec = {
  name: 'loadtest',
  mutates: false,
  offline: true,
  needs: () => [],
  validate(args) {
    parseDuration(stringArg(args, 'duration'))
    parsePath(stringArg(args, 'path'))
    // RPS= against the env's kind is checked once the env is loaded (the first step).
  },
  options: [
    {
      name: 'rps',
      makeVar: 'RPS',
      value: true,
      help: 'requests per second over all domains (default 50; production 5)',
    },
    { name: 'duration', makeVar: 'DURATION', value: true, help: 'how long: 60s (default), 2m, 90' },
    { name: 'path', makeVar: 'URL_PATH', value: true, help: 'what each domain is asked for (default /)' },
    {
      name: 'json',
      makeVar: 'JSON=1',
      help: 'print the figures as one JSON line on stdout (the rest on stderr)',
    },
  ],
  steps: [
    {
      title: 'Plan: every domain, where it is reached (the edge, or the web host), the rate and the duration',
      next: 'Nothing was sent. Check the DNS records and the env file, then run it again.',
      async run(ctx) {
        const env = ctx.env
        const rps = parseRps(stringArg(ctx.args, 'rps'), env)
        const edge = env.health.edge
          ? await resolveEdge(Object.values(env.domains), env.health.edgeResolver)
          : new Map<string, string>()
        const targets = loadTargets(env, rps, (d) => edge.get(d), parsePath(stringArg(ctx.args, 'path')))
        runs.set(ctx, { targets })
        print(
          table([
            ['domain', 'reached at', 'via', 'rate', 'connections'],
            ...targets.map((t) => [
              t.domain,
              `${t.address}:${t.port}${t.path}`,
              t.via,
              `${t.rps}/s`,
              String(connectionsFor(t.rps)),
            ]),
          ]),
        )
        print(
          `      for ${seconds(ctx)} s; fails when p95 >= ${P95_LIMIT_MS} ms or errors > ${ERROR_LIMIT_PCT}%`,
        )
        return 'ok'
      },
    },
    {
      title: 'Each domain answers before any load (through the edge: with a certificate this machine trusts)',
      next: 'Nothing was loaded. The domain above does not answer: make health ENV=<env> says why.',
      async run(ctx) {
        if (ctx.dryRun) return 'dry-run'
        const checks = await Promise.all(
          runs.get(ctx).targets.map(async (t) => ({ t, ...(await preflight(t, 30)) })),
        )
        for (const c of checks) print(`      ${c.t.domain}: ${c.said}`)
        const bad = checks.filter((c) => !c.ok)
        if (bad.length)
          throw new RunbookError(
            `${bad.map((c) => `${c.t.domain} (${c.said})`).join(', ')} did not answer: not loading a domain that is already down`,
            EXIT.precondition,
          )
        return 'ok'
      },
    },
    {
      title: 'Production: a person confirms the load (its visitors share it)',
      skip: (ctx) => (ctx.env.kind === 'production' ? false : `${ctx.env.kind}: no confirmation needed`),
      next: 'Nothing was loaded.',
      async run(ctx) {
        const total = runs.get(ctx).targets.reduce((s, t) => s + t.rps, 0)
        await confirmMidRun(ctx, `Load PRODUCTION with ${total} requests/s for ${seconds(ctx)} s`)
        return 'ok'
      },
    },
    {
      title: 'Load every domain at once at its rate, for the duration',
      next: 'The load stopped with this run. If the stack struggles now, make health ENV=<env>.',
      async run(ctx) {
        const r = runs.get(ctx)
        if (ctx.dryRun) {
          print(
            `      dry run: would send ${r.targets.map((t) => `${t.rps}/s to ${t.domain}`).join(', ')} for ${seconds(ctx)} s`,
          )
          return 'dry-run'
        }
        r.results = await Promise.all(r.targets.map((t) => loadOne(t, seconds(ctx))))
        const rows = r.results.map((x) => {
          const s = summarise([x])
          return [
            x.target.domain,
            String(s.requests),
            `${s.rps}/s`,
            `${s.p50_ms ?? '-'}`,
            `${s.p95_ms ?? '-'}`,
            `${s.p99_ms ?? '-'}`,
            `${s.errors} (${s.error_pct}%)`,
          ]
        })
        print(table([['domain', 'answers', 'throughput', 'p50 ms', 'p95 ms', 'p99 ms', 'errors'], ...rows]))
        return 'ok'
      },
    },
    {
      title: `The verdict: p95 under ${P95_LIMIT_MS} ms, errors at most ${ERROR_LIMIT_PCT}%`,
      next: 'Find what is slow or failing: make uptime ENV=<env> (p95 trend), make logs ENV=<env>; a release that made it slower: make rollback.',
      async run(ctx) {
        const r = runs.get(ctx)
        if (!r.results) return ctx.dryRun ? 'dry-run' : 'skipped'
        const s = summarise(r.results)
        r.summary = s
        const line = JSON.stringify({
          rps: s.rps,
          p95_ms: s.p95_ms,
          errors: s.errors,
          p50_ms: s.p50_ms,
          p99_ms: s.p99_ms,
          requests: s.requests,
          error_pct: s.error_pct,
          passed: s.passed,
        })
        print(`      ${line}`)
        if (ctx.args.json === true) process.stdout.write(`${redact(line)}\n`)
        const problems = verdictProblems(s)
        if (problems.length)
          throw new RunbookError(`load test failed: ${problems.join('; ')}`, EXIT.gateFailed)
        return 'ok'
      },
    },
  ],
}

if (isMain(import.meta.url)) {
  await main(loadtest)
}

/**
 * releases — the release history of the env's first host: what went live, when, by whom, and how.
 * Read-only. On-call page: docs/runbooks/deploy.md#releases
 */

import { readOn } from '../lib/commands/checker.ts'
import { readOnlyLogin } from '../lib/env/needs.ts'
import { print, table } from '../lib/report/output.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { liveRelease, parseReleases } from '../lib/stack/releases.ts'

export const releases: RunbookSpec = {
  name: 'releases',
  mutates: false,
  checker: true,
  needs: (env) => [readOnlyLogin(env)],
  steps: [
    {
      title: 'Read the release history',
      async run(ctx) {
        for (const host of ctx.hosts) {
          const out = await host.exec(readOn(host, ctx.env, 'releases'), {
            probe: true,
            echo: false,
          })
          const history = parseReleases(out.stdout)
          const live = liveRelease(history)
          const rows = history.map((r) => [
            r.at,
            r.action,
            r.id,
            r.colour,
            r.outcome,
            `${r.duration_s}s`,
            r.who,
            r.previous ?? '',
          ])
          print(`\n${host.name}: live ${live ? `${live.id} (${live.colour})` : 'none'}`)
          print(
            table([
              ['at', 'action', 'release', 'colour', 'outcome', 'took', 'who', 'previous'],
              ...rows.reverse(),
            ]),
          )
        }
        return 'ok'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(releases)

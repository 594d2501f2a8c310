/**
 * alert — tells the team something failed that has no runbook run of its own to report it (a scheduled
 * workflow's check, a CI stage), through the env's notify: targets subscribed to `alert`.
 *
 * When: a scheduled workflow's step failed (CI runs it `if: failure()`); by hand to page the team.
 * Changes: nothing; sends one message per subscribed target (a target that is down is reported, and
 *   does not fail the run).
 * On-call page: docs/runbooks/alerts.md
 */

import { notify, reportNotifyResults } from '../lib/notify/send.ts'
import { InputError } from '../lib/report/errors.ts'
import { ciRunUrl, whoAmI } from '../lib/run/audit.ts'
import { stringArg } from '../lib/run/cli.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'

export const alert: RunbookSpec = {
  name: 'alert',
  mutates: false,
  offline: true,
  needs: () => ['notify:alert'],
  options: [
    { name: 'title', makeVar: 'TITLE', value: true, help: 'what failed, in one line' },
    {
      name: 'runbook',
      makeVar: 'PAGE',
      value: true,
      help: 'the on-call page that answers it (docs/runbooks/...)',
    },
  ],
  steps: [
    {
      title: "Send the alert to the env's notify targets",
      async run(ctx) {
        const title = stringArg(ctx.args, 'title')
        if (!title) throw new InputError('TITLE="<what failed>" is required')
        if (ctx.env.notify.length === 0)
          throw new InputError(`${ctx.env.file} has no notify: targets, so there is no one to tell`)
        if (ctx.dryRun) return 'dry-run'
        reportNotifyResults(
          await notify(ctx.env.notify, ctx.secrets, {
            event: 'alert',
            env: ctx.env.name,
            outcome: 'failed',
            title,
            who: whoAmI(),
            link: ciRunUrl(),
            runbook: stringArg(ctx.args, 'runbook') ?? 'docs/runbooks/alerts.md',
          }),
        )
        return 'changed'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(alert)

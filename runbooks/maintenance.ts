/**
 * maintenance — put services behind a plain 503 page with Retry-After, or take them out again.
 *
 * When: planned work that stops a service (a data migration by hand, a host resize), or when a service
 *   misbehaves and users should see "back shortly" rather than errors. restore does this by itself for
 *   the services that use the data.
 * Options: ON=1 or OFF=1 (one of them); SERVICE=api,saas (default: all three); MINUTES=60 (how long
 *   the window lasts before the watchdog alerts that it was forgotten); REASON="..." (shown to the team).
 * Changes: ON writes a flag per service that nginx checks on every request (no reload), on every web
 *   host, plus the watchdog's maintenance flag (it then leaves containers alone); OFF removes them and
 *   checks that the app answers 200 again. Either way each domain is checked through nginx.
 * Abort: Ctrl-C; run it again (ON and OFF are both safe to repeat).
 * On-call page: docs/runbooks/maintenance.md
 */
import { writeFlag } from '../lib/commands/flag-file.ts'
import { parseMaintenanceServices } from '../lib/commands/maintenance.ts'
import { quote } from '../lib/commands/shell.ts'
import {
  expectAnswers,
  inMaintenance,
  requireMaintenanceConfig,
  turnOff,
  turnOn,
  webHosts,
  windowText,
} from '../lib/deploy/maintenance.ts'
import { remotePaths } from '../lib/env/host-paths.ts'
import type { Service } from '../lib/env/load.ts'
import { InputError } from '../lib/report/errors.ts'
import { print } from '../lib/report/output.ts'
import { type ParsedArgs, stringArg } from '../lib/run/cli.ts'
import { type Context, isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'

/** The window's default length: long enough for planned work, short enough that a forgotten one alerts. */
const DEFAULT_MINUTES = 60

function services(args: ParsedArgs): Service[] {
  const parsed = parseMaintenanceServices(stringArg(args, 'service'))
  if (typeof parsed === 'string') throw new InputError(parsed)
  return parsed
}

function minutes(args: ParsedArgs): number {
  const raw = stringArg(args, 'minutes')
  if (raw === undefined) return DEFAULT_MINUTES
  const n = Number(raw)
  if (!/^\d+$/.test(raw) || n < 1 || n > 24 * 60)
    throw new InputError(`MINUTES=${raw}: not a whole number of minutes from 1 to 1440`)
  return n
}

const turningOn = (ctx: Context) => ctx.args.on === true

export const maintenance: RunbookSpec = {
  name: 'maintenance',
  mutates: true,
  validate: (args) => {
    if ((args.on === true) === (args.off === true))
      throw new InputError(
        'say ON=1 (show the maintenance page) or OFF=1 (serve the app again), one of them',
        [],
        'e.g. make maintenance ENV=staging ON=1 SERVICE=api REASON="manual data fix"',
      )
    services(args)
    minutes(args)
  },
  needs: () => ['ssh'],
  options: [
    { name: 'on', makeVar: 'ON=1', help: 'show the maintenance page' },
    { name: 'off', makeVar: 'OFF=1', help: 'serve the app again' },
    {
      name: 'service',
      makeVar: 'SERVICE',
      value: true,
      help: 'site, saas, api, comma-separated (default: all)',
    },
    {
      name: 'minutes',
      makeVar: 'MINUTES',
      value: true,
      help: `how long the window lasts (default ${DEFAULT_MINUTES})`,
    },
    { name: 'reason', makeVar: 'REASON', value: true, help: 'why, for the team (no secrets)' },
  ],
  steps: [
    {
      title: "Check every web host's nginx has the maintenance page",
      next: 'Nothing was changed.',
      async run(ctx) {
        await requireMaintenanceConfig(ctx, webHosts(ctx))
        return 'ok'
      },
    },
    {
      title: 'Turn maintenance on or off on every web host',
      next: 'Run it again (both are safe to repeat); `make maintenance ENV=<env> OFF=1` serves the app again.',
      async run(ctx) {
        const hosts = webHosts(ctx)
        const chosen = services(ctx.args)
        if (turningOn(ctx)) {
          const until = new Date(Date.now() + minutes(ctx.args) * 60_000)
          const reason = stringArg(ctx.args, 'reason') ?? 'make maintenance'
          const window = { services: chosen, reason, until, runbook: 'make maintenance' }
          await turnOn(ctx, hosts, window)
          // The watchdog's own flag: it leaves the containers alone, and alerts once `until` is past.
          for (const host of hosts)
            await host.exec(writeFlag(remotePaths(ctx.env).maintenance, windowText(window)), { echo: false })
          ctx.auditEvent(`maintenance on: ${chosen.join(',')} until ${until.toISOString()}`)
        } else {
          await turnOff(ctx, hosts, chosen)
          const left = await inMaintenance(ctx, hosts)
          if (left.length === 0)
            for (const host of hosts)
              await host.exec(`rm -f ${quote(remotePaths(ctx.env).maintenance)}`, { echo: false })
          ctx.auditEvent(`maintenance off: ${chosen.join(',')}`)
        }
        return 'changed'
      },
    },
    {
      title: 'Check each domain through nginx',
      next: (ctx) =>
        `The flags are as asked. If a domain does not answer 200, the app itself is down: make status ENV=${ctx.env.name}, make logs ENV=${ctx.env.name}.`,
      async run(ctx) {
        const hosts = webHosts(ctx)
        const chosen = services(ctx.args)
        await expectAnswers(ctx, hosts, chosen, turningOn(ctx) ? 'on' : 'off')
        if (ctx.dryRun) return 'dry-run'
        const left = await inMaintenance(ctx, hosts)
        print(
          left.length
            ? left.map((l) => `      in maintenance: ${l}`).join('\n')
            : '      no service is in maintenance',
        )
        return 'ok'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(maintenance)

/**
 * logs — the containers' logs of every host in one view, oldest first, each line marked
 * `<host> <service>/<colour>`; secrets the runbook knows show as [secret:NAME]. Read-only.
 *
 * When: during an incident, instead of logging in to each host for docker logs.
 * Options: SERVICE=api,postgres (default all), SINCE=10m (30s, 2h, 1d or an RFC 3339 time),
 *   GREP=<extended regex> (applied on the hosts), FOLLOW=1 (stream until Ctrl-C), HOST=<name>.
 * Changes: nothing (only the audit record of this run is appended).
 * Abort: Ctrl-C at any point (the readers on the hosts stop with it).
 * On-call page: docs/runbooks/logs.md
 */
import { PassThrough } from 'node:stream'
import {
  type LogLine,
  logsCommand,
  mergeByTime,
  parseLogLine,
  parseServices,
  parseSince,
} from '../lib/commands/logs.ts'
import { print } from '../lib/report/output.ts'
import { HOST_OPTION, stringArg } from '../lib/run/cli.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'

const FOLLOW_LIMIT_S = 12 * 3600

export const logs: RunbookSpec = {
  name: 'logs',
  mutates: false,
  // The deploy login (the checker account cannot read Docker); app: its passwords are redacted.
  // SERVICE and SINCE are checked before any host is contacted: a typo is exit 2 at once.
  validate: (args) => {
    parseServices(stringArg(args, 'service'))
    parseSince(stringArg(args, 'since'))
  },
  needs: () => ['ssh', 'app'],
  options: [
    HOST_OPTION,
    {
      name: 'service',
      makeVar: 'SERVICE',
      value: true,
      help: 'only these services (site,saas,api,postgres,redis)',
    },
    {
      name: 'since',
      makeVar: 'SINCE',
      value: true,
      help: 'from this long ago (10m, 2h, 1d) or this time (default 10m)',
    },
    { name: 'grep', makeVar: 'GREP', value: true, help: 'only lines matching this extended regex' },
    { name: 'follow', makeVar: 'FOLLOW=1', help: 'keep streaming new lines until Ctrl-C' },
  ],
  steps: [
    {
      title: 'Read the logs of every host (oldest first) or follow them',
      next: 'A host did not answer for its logs: make status ENV=<env>, then docker logs on that host.',
      async run(ctx) {
        const command = logsCommand({
          env: ctx.env.name,
          services: parseServices(stringArg(ctx.args, 'service')),
          since: parseSince(stringArg(ctx.args, 'since')),
          follow: ctx.args.follow === true,
          ...(stringArg(ctx.args, 'grep') ? { grep: stringArg(ctx.args, 'grep') } : {}),
        })
        if (ctx.args.follow === true) {
          // Lines as they come, each marked with its host; stdin stays open so the readers keep going.
          await Promise.all(
            ctx.hosts.map((host) => {
              let partial = ''
              return host.exec(command, {
                timeoutS: FOLLOW_LIMIT_S,
                echo: false,
                stdin: new PassThrough(),
                onStdout: (chunk) => {
                  const lines = (partial + chunk.toString('utf8')).split('\n')
                  partial = lines.pop() ?? ''
                  for (const line of lines) print(format(host.name, parseLogLine(line)))
                },
              })
            }),
          )
          return 'ok'
        }
        const read = await Promise.all(
          ctx.hosts.map(async (host) => {
            const out = await host.exec(command, { timeoutS: 120, echo: false })
            const lines = out.stdout.split('\n').filter(Boolean).map(parseLogLine)
            if (!out.dryRun && lines.length === 0)
              print(`      ${host.name}: no log lines of ${ctx.env.name}'s containers`)
            return { host: host.name, lines }
          }),
        )
        for (const line of mergeByTime(read)) print(format(line.host, line))
        return 'ok'
      },
    },
  ],
}

/** `<host> <service>/<colour> <timestamp> <text>` (print redacts it on the way out). */
function format(host: string, l: LogLine): string {
  return `${host} ${l.tag} ${l.ts} ${l.text}`
}

if (isMain(import.meta.url)) await main(logs)

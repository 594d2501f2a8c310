/**
 * exec — one command inside a running container of a service, from this machine, audited.
 *
 * When: during an incident, to ask the app itself (api --version, a migration status, a one-off
 *   task the team wrote for it) without logging in to the host.
 * Options: SERVICE=<site|saas|api|postgres|redis> and CMD="<program> <args>" (required); HOST=<name>.
 *   An app service runs in the live colour's container; CMD is split into words like a shell would,
 *   without expansion (the app images have no shell).
 * Changes: whatever the command does: production asks for the typed env name. The command, who ran
 *   it and when go to the audit record (on the host and locally), secrets redacted.
 * Abort: Ctrl-C stops the command in the container.
 * On-call page: docs/runbooks/exec.md
 */
import { execCommand, isDataService, parseService, splitWords } from '../lib/commands/exec.ts'
import { print } from '../lib/report/output.ts'
import { HOST_OPTION, stringArg } from '../lib/run/cli.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { dataSession } from '../lib/swarm/hosts.ts'

export const exec: RunbookSpec = {
  name: 'exec',
  // The command may change anything: production asks for the typed env name before connecting.
  mutates: true,
  validate: (args) => {
    parseService(stringArg(args, 'service'))
    splitWords(stringArg(args, 'cmd'))
  },
  needs: () => ['ssh', 'app'],
  options: [
    HOST_OPTION,
    { name: 'service', makeVar: 'SERVICE', value: true, help: 'the service whose container runs it' },
    { name: 'cmd', makeVar: 'CMD', value: true, help: 'the command and its arguments' },
  ],
  steps: [
    {
      title: "Run the command in the service's running container",
      next: "The command's own exit status and error are above. make logs ENV=<env> SERVICE=<service> shows what the service said.",
      async run(ctx) {
        const service = parseService(stringArg(ctx.args, 'service'))
        const words = splitWords(stringArg(ctx.args, 'cmd'))
        const host =
          (isDataService(service) ? dataSession(ctx) : ctx.hosts.find((h) => h.host.roles.includes('web'))) ??
          ctx.hosts[0]
        if (!host) throw new Error(`${ctx.env.file} has no host`)
        ctx.auditEvent(`exec on ${host.name} ${service}: ${JSON.stringify(words)}`)
        const out = await host.exec(execCommand(ctx.env.name, service, words), { timeoutS: 300, echo: false })
        if (out.dryRun) return 'changed'
        const where = /^container (\S+)/m.exec(out.stderr)?.[1] ?? '?'
        print(`      in ${where} on ${host.name}`)
        if (out.stdout.trim()) print(out.stdout.trimEnd())
        return 'changed'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(exec)

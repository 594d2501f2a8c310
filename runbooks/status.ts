/**
 * status — what is on each host right now. Read-only: safe at any time, in any environment.
 *
 * When: before any change, during an incident, after a deploy. On a swarm env also every node and
 *   service, as the manager sees them.
 * Changes: nothing (only the audit record of this run is appended).
 * Abort: Ctrl-C at any point.
 * On-call page: docs/runbooks/status.md
 */
import { readOn } from '../lib/commands/checker.ts'
import { type HostFacts, parseHostFacts } from '../lib/commands/facts.ts'
import { parseNodeList, parseStackServices, stackName } from '../lib/commands/swarm.ts'
import { readOnlyLogin } from '../lib/env/needs.ts'
import { print, table } from '../lib/report/output.ts'
import { STALE_AFTER_S } from '../lib/run/lock.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'

export const status: RunbookSpec = {
  name: 'status',
  mutates: false,
  checker: true,
  needs: (env) => [readOnlyLogin(env)],
  steps: [
    {
      title: 'Read host facts (OS, uptime, disk, memory, Docker, release, lock, audit)',
      next: 'The host answers SSH but a basic command failed: log in and look (df -h, free -m, systemctl --failed).',
      async run(ctx) {
        const facts: [string, HostFacts][] = []
        for (const host of ctx.hosts) {
          const out = await host.exec(readOn(host, ctx.env, 'facts'), {
            probe: true,
            timeoutS: 30,
            echo: false,
          })
          if (!out.dryRun) facts.push([host.name, parseHostFacts(out.stdout)])
        }
        for (const [name, f] of facts) printHostFacts(name, f)
        return 'ok'
      },
    },
    {
      title: 'Swarm: every node, every service and where its tasks run (from the manager)',
      next: 'The manager does not answer for the swarm: log in and run docker node ls; see docs/runbooks/swarm.md.',
      async run(ctx) {
        if (!ctx.env.swarm) return 'skipped'
        const manager = ctx.hosts.find((h) => h.host.roles.includes('manager'))
        if (!manager) {
          print('      the manager is not in this run (HOST=): nothing to show')
          return 'skipped'
        }
        const read = async (cmd: string) => (await manager.exec(cmd, { probe: true, echo: false })).stdout
        const nodes = parseNodeList(await read(readOn(manager, ctx.env, 'nodes')))
        print(
          `\nnodes (from ${manager.name}):\n${table([
            ['node', 'role', 'status', 'availability', 'labels'],
            ...nodes.map((n) => [
              `${n.hostname}${n.leader ? ' (leader)' : ''}`,
              n.role,
              n.status,
              n.availability,
              Object.entries(n.labels)
                .map(([k, v]) => `${k}=${v}`)
                .join(' '),
            ]),
          ])}`,
        )
        const services = parseStackServices(await read(readOn(manager, ctx.env, 'stack-services')))
        print(
          `\nservices of stack ${stackName(ctx.env.name)}:\n${table([
            ['service', 'image', 'update', 'tasks'],
            ...services.map((s) => [
              s.name,
              s.image.replace(/@sha256:.*/, ''),
              s.update,
              s.tasks.map((t) => `${t.node}: ${t.state}`).join(', ') || 'none',
            ]),
          ])}`,
        )
        return 'ok'
      },
    },
  ],
}

function lockSummary(owner: Record<string, string>): string {
  const age = Number(owner.heartbeat_age_s ?? 0)
  const alive =
    age > STALE_AFTER_S ? `STALE: no heartbeat for ${age} s (make unlock)` : `heartbeat ${age} s ago`
  return `held by ${owner.who ?? '?'} (${owner.runbook ?? '?'} ${owner.release ?? ''}) since ${owner.started_at ?? '?'}, ${alive}`
}

/** The instant-rollback window, said for the on-call: what a rollback inside it would switch back to. */
export function windowSummary(idle: HostFacts['idle'], nowMs: number): string {
  if (!idle) return 'none (a rollback starts the previous release anew)'
  const release = idle.release ? ` (${idle.release})` : ''
  const until = new Date(idle.untilMs).toISOString().replace(/\.\d+Z$/, 'Z')
  const leftMin = Math.round((idle.untilMs - nowMs) / 60_000)
  return idle.untilMs > nowMs
    ? `${idle.colour}${release} kept running until ${until} (${leftMin} min left): make rollback is an nginx switch`
    : `${idle.colour}${release} past its end ${until}: the watchdog stops it; a rollback starts it anew`
}

function printHostFacts(name: string, f: HostFacts): void {
  const gb = (kb: number) => `${(kb / 1024 / 1024).toFixed(1)} GB`
  const rows = [
    ['host', name],
    ['os', `${f.os} (kernel ${f.kernel})`],
    ['uptime', `${(f.uptimeS / 3600).toFixed(1)} h`],
    ['disk /', `${gb(f.diskAvailKb)} free of ${gb(f.diskUsedKb + f.diskAvailKb)}`],
    ['memory', `${gb(f.memAvailKb)} available of ${gb(f.memTotalKb)}`],
    ['docker', f.docker],
    ['compose', f.compose],
    ['release', f.release],
    ['lock', f.lock === 'free' ? 'none' : lockSummary(f.lock)],
    ['serving', f.live],
    ['rollback window', windowSummary(f.idle, Date.now())],
    ['maintenance', f.maintenance.join('; ') || 'none'],
  ]
  print(`\n${table(rows)}`)
  print(
    f.audit.length
      ? `last audit records:\n${f.audit.map((a) => `  ${a}`).join('\n')}`
      : 'last audit records: none',
  )
}

if (isMain(import.meta.url)) await main(status)

import {
  describeFlagLine,
  flagText,
  maintenanceOff,
  maintenanceOn,
  maintenanceProbe,
  nginxHasMaintenance,
  waitForAnswer,
} from '../commands/maintenance.ts'
import { sitesPath } from '../commands/nginx.ts'
import type { Service } from '../env/load.ts'
import type { HostSession } from '../host/session.ts'
import { EXIT, RunbookError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import { whoAmI } from '../run/audit.ts'
import type { Context } from '../run/runbook.ts'

// Maintenance on the web hosts: the per-service flags nginx checks on every request (see
// lib/commands/maintenance.ts), set by `make maintenance` and by restore around its pause.

/** The hosts whose nginx serves the domains: those with the web role (all of them when none has roles). */
export function webHosts(ctx: Context): HostSession[] {
  const web = ctx.hosts.filter((h) => h.host.roles.length === 0 || h.host.roles.includes('web'))
  return web.length ? web : ctx.hosts
}

/** Refuses (nothing changed) when a host's nginx config predates the maintenance check: deploy first. */
export async function requireMaintenanceConfig(ctx: Context, hosts: HostSession[]): Promise<void> {
  const missing: string[] = []
  for (const host of hosts) {
    const out = await host.exec(nginxHasMaintenance(ctx.env.name, sitesPath(ctx.env.name)), {
      probe: true,
      echo: false,
    })
    if (!out.dryRun && out.stdout.trim() !== 'yes') missing.push(host.name)
  }
  if (missing.length)
    throw new RunbookError(
      `nginx on ${missing.join(', ')} has no maintenance page yet (its sites were written by an older deploy)`,
      EXIT.precondition,
      `Deploy once (make deploy ENV=${ctx.env.name}), which writes the new nginx config, then run this again.`,
    )
}

export interface MaintenanceWindow {
  services: readonly Service[]
  reason: string
  until: Date
  /** The runbook that set it: the flag says who to ask. */
  runbook: string
}

/** The flag's text: who, why, until when, set by what. */
export function windowText(w: MaintenanceWindow): string {
  return flagText({ by: whoAmI(), reason: w.reason, until: w.until, runbook: w.runbook })
}

export async function turnOn(ctx: Context, hosts: HostSession[], w: MaintenanceWindow): Promise<void> {
  const text = windowText(w)
  for (const host of hosts) await host.exec(maintenanceOn(ctx.env.name, w.services, text), { echo: false })
}

export async function turnOff(
  ctx: Context,
  hosts: HostSession[],
  services: readonly Service[],
): Promise<void> {
  for (const host of hosts) await host.exec(maintenanceOff(ctx.env.name, services), { echo: false })
}

/** `<host>: <service> until <time>, by <who> (<runbook>): <reason>` for every service in maintenance. */
export async function inMaintenance(ctx: Context, hosts: HostSession[]): Promise<string[]> {
  const lines: string[] = []
  for (const host of hosts) {
    const out = await host.exec(maintenanceProbe(ctx.env.name), { probe: true, echo: false })
    for (const l of out.stdout.split('\n').filter(Boolean)) lines.push(`${host.name}: ${describeFlagLine(l)}`)
  }
  return lines
}

/** Each service's domain answers as expected through every host's nginx, or the step fails naming which did not. */
export async function expectAnswers(
  ctx: Context,
  hosts: HostSession[],
  services: readonly Service[],
  expect: 'on' | 'off',
  timeoutS = ctx.env.health.timeoutS,
): Promise<void> {
  const bad: string[] = []
  for (const host of hosts)
    for (const s of services) {
      const domain = ctx.env.domains[s]
      const out = await host.exec(waitForAnswer(domain, ctx.env.health.path, expect, timeoutS), {
        allowFail: true,
        echo: false,
        timeoutS: timeoutS + 15,
      })
      if (out.dryRun) continue
      if (out.code !== 0) bad.push(`${host.name}: ${domain} answered "${out.stdout.trim() || 'nothing'}"`)
    }
  const want = expect === 'on' ? '503 with X-Maintenance: on' : '200 from the app'
  if (bad.length) throw new RunbookError(`expected ${want}: ${bad.join(', ')}`, EXIT.gateFailed)
  if (services.length) print(`      ${services.map((s) => ctx.env.domains[s]).join(', ')}: ${want}`)
}

import type { Env, Host } from '../env/load.ts'
import { perRun } from '../run/per-run.ts'
import type { Context } from '../run/runbook.ts'
import { type EmergencyState, type NewHost, writeState } from './state.ts'

// The emergency a run is working on, shared by its phases; saved after every change so a run can resume.
export const BUDGET_S = 15 * 60
export const emergencyRun = perRun<EmergencyState>('emergency state')
export const st = (ctx: Context): EmergencyState => emergencyRun.get(ctx)
export const save = (ctx: Context): void => {
  if (!ctx.dryRun) writeState(st(ctx))
}

/** The env as the sub-runbooks see it: the new host is its only host. */
export function onNewHost(s: EmergencyState, base: Env): (env: Env) => Env {
  return onlyHost(s.host, base)
}

/** The env with one host only, in the roles of the env's first (the new droplet, make image's builder). */
export function onlyHost(h: NewHost | undefined, base: Env): (env: Env) => Env {
  if (!h) throw new Error('no new host yet')
  const roles = base.hosts[0]?.roles ?? ['web', 'data']
  const host: Host = { name: h.name, address: h.address, sshPort: h.sshPort, hostKey: h.hostKey, roles }
  return (env) => ({ ...env, hosts: [host] })
}

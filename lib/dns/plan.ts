/**
 * Plan, then apply: read the live zone, compare it with the env's desired state, and list the changes.
 * Applying runs them in order; if one fails, the ones already made are undone in reverse, so the zone
 * is never left half way.
 */
import type Cloudflare from 'cloudflare'
import type { Env } from '../env/load.ts'
import { RunbookError } from '../report/errors.ts'
import { printErr } from '../report/output.ts'
import { type CfContext, call } from './cloudflare.ts'
import {
  type CoverageProblem,
  coverageAdvice,
  desiredRecords,
  desiredSettings,
  settingMatches,
  uncoveredNames,
} from './desired.ts'

export interface Change {
  kind: 'record' | 'setting' | 'certificate-pack' | 'origin-pulls'
  target: string
  from: string
  to: string
  apply(): Promise<void>
  /** Puts back what apply() changed (set once apply ran). */
  undo?: () => Promise<void>
}

export interface ZonePlan {
  zoneId: string
  changes: Change[]
  /** Hostnames no certificate covers and nothing planned will: the plan fails until handled. */
  uncovered: { problem: CoverageProblem; advice: string }[]
  /** Certificate packs ordered but not active yet. */
  pending: string[]
}

type LiveRecord = { id: string; type: string; name: string; content: string; proxied?: boolean }

const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v))

export async function planZone(ctx: CfContext, env: Env, zoneId: string): Promise<ZonePlan> {
  const zone = ctx.edge.zone
  const changes: Change[] = [
    ...(await planRecords(ctx, env, zoneId)),
    ...(await planSettings(ctx, env, zoneId)),
    ...(await planOriginPulls(ctx, zoneId)),
  ]
  const packs = (
    await call(ctx, `list certificate packs of ${zone}`, (cf) =>
      cf.ssl.certificatePacks.list({ zone_id: zoneId, status: 'all' } as never),
    )
  ).result as unknown as { id: string; status: string; hosts: string[]; type: string }[]
  const active = packs.filter((p) => p.status === 'active').map((p) => p.hosts)
  const pendingPacks = packs.filter((p) => p.status !== 'active' && p.status !== 'deleted')
  const names = Object.values(env.domains)
  const problems = uncoveredNames(names, zone, active)
  const pending =
    uncoveredNames(
      names,
      zone,
      pendingPacks.map((p) => p.hosts),
    ).length < problems.length
  const stillPending = pending ? problems.map((p) => p.name) : []
  const unhandled = pending ? [] : problems
  const uncovered: ZonePlan['uncovered'] = []
  if (unhandled.length && ctx.edge.advancedCertificate) {
    const hosts = [zone, `*.${zone}`, ...new Set(unhandled.map((p) => p.wildcard))]
    changes.push(packOrder(ctx, zoneId, hosts))
  } else {
    for (const problem of unhandled) uncovered.push({ problem, advice: coverageAdvice(problem, zone) })
  }
  return { zoneId, changes, uncovered, pending: stillPending }
}

async function planRecords(ctx: CfContext, env: Env, zoneId: string): Promise<Change[]> {
  const changes: Change[] = []
  const desired = desiredRecords(env)
  for (const name of [...new Set(desired.map((d) => d.name))]) {
    const live: LiveRecord[] = []
    await call(ctx, `list DNS records for ${name}`, async (cf) => {
      live.length = 0
      for await (const r of cf.dns.records.list({ zone_id: zoneId, name: { exact: name } } as never))
        live.push(r as unknown as LiveRecord)
    })
    const relevant = live.filter((r) => ['A', 'AAAA', 'CNAME'].includes(r.type))
    const wanted = desired.filter((d) => d.name === name)
    const unmatched = [...relevant]
    const todo: typeof wanted = []
    for (const w of wanted) {
      const i = unmatched.findIndex((r) => r.type === w.type && r.content === w.content)
      if (i < 0) {
        todo.push(w)
        continue
      }
      const [r] = unmatched.splice(i, 1)
      if (r && r.proxied !== true) changes.push(recordUpdate(ctx, zoneId, r, { ...w, proxied: true }))
    }
    const updates: Change[] = []
    const creates: Change[] = []
    for (const w of todo) {
      const reuse = unmatched.findIndex((r) => r.type === w.type)
      const r = reuse >= 0 ? unmatched.splice(reuse, 1)[0] : undefined
      if (r) updates.push(recordUpdate(ctx, zoneId, r, { ...w, proxied: true }))
      else creates.push(recordCreate(ctx, zoneId, w))
    }
    // Deletes first: an A record cannot be created while a CNAME of the same name exists.
    changes.push(...unmatched.map((r) => recordDelete(ctx, zoneId, r)), ...updates, ...creates)
  }
  return changes
}

function body(zoneId: string, r: { type: string; name: string; content: string; proxied?: boolean }) {
  return {
    zone_id: zoneId,
    type: r.type,
    name: r.name,
    content: r.content,
    proxied: r.proxied ?? false,
    ttl: 1,
  }
}

function recordCreate(
  ctx: CfContext,
  zoneId: string,
  w: { type: string; name: string; content: string },
): Change {
  const change: Change = {
    kind: 'record',
    target: `${w.type} ${w.name}`,
    from: '(none)',
    to: `${w.content} proxied`,
    async apply() {
      const made = await call(ctx, `create ${w.type} ${w.name}`, (cf) =>
        cf.dns.records.create(body(zoneId, { ...w, proxied: true }) as never),
      )
      change.undo = async () => {
        await call(ctx, `delete ${w.type} ${w.name}`, (cf) =>
          cf.dns.records.delete(made.id, { zone_id: zoneId }),
        )
      }
    },
  }
  return change
}

function recordUpdate(
  ctx: CfContext,
  zoneId: string,
  r: LiveRecord,
  w: { type: string; name: string; content: string; proxied: boolean },
): Change {
  const change: Change = {
    kind: 'record',
    target: `${r.type} ${r.name}`,
    from: `${r.content}${r.proxied ? ' proxied' : ' NOT proxied'}`,
    to: `${w.content} proxied`,
    async apply() {
      await call(ctx, `update ${r.type} ${r.name}`, (cf) =>
        cf.dns.records.update(r.id, body(zoneId, w) as never),
      )
      change.undo = async () => {
        await call(ctx, `restore ${r.type} ${r.name}`, (cf) =>
          cf.dns.records.update(r.id, body(zoneId, r) as never),
        )
      }
    },
  }
  return change
}

function recordDelete(ctx: CfContext, zoneId: string, r: LiveRecord): Change {
  const change: Change = {
    kind: 'record',
    target: `${r.type} ${r.name}`,
    from: `${r.content}${r.proxied ? ' proxied' : ''}`,
    to: '(deleted)',
    async apply() {
      await call(ctx, `delete ${r.type} ${r.name}`, (cf) => cf.dns.records.delete(r.id, { zone_id: zoneId }))
      change.undo = async () => {
        await call(ctx, `recreate ${r.type} ${r.name}`, (cf) =>
          cf.dns.records.create(body(zoneId, r) as never),
        )
      }
    },
  }
  return change
}

async function planSettings(ctx: CfContext, env: Env, zoneId: string): Promise<Change[]> {
  const changes: Change[] = []
  for (const [id, want] of Object.entries(desiredSettings(env))) {
    const live = (
      (await call(ctx, `read zone setting ${id}`, (cf) =>
        cf.zones.settings.get(id, { zone_id: zoneId }),
      )) as {
        value: unknown
      }
    ).value
    if (settingMatches(live, want)) continue
    const change: Change = {
      kind: 'setting',
      target: id,
      from: show(live),
      to: show(want),
      async apply() {
        await call(ctx, `set zone setting ${id}`, (cf) =>
          cf.zones.settings.edit(id, { zone_id: zoneId, value: want } as never),
        )
        change.undo = async () => {
          await call(ctx, `restore zone setting ${id}`, (cf) =>
            cf.zones.settings.edit(id, { zone_id: zoneId, value: live } as never),
          )
        }
      },
    }
    changes.push(change)
  }
  return changes
}

async function planOriginPulls(ctx: CfContext, zoneId: string): Promise<Change[]> {
  const want = ctx.edge.originPulls !== 'off'
  const live =
    (
      (await call(ctx, 'read authenticated origin pulls', (cf) =>
        cf.originTLSClientAuth.settings.get({ zone_id: zoneId }),
      )) as {
        enabled?: boolean
      }
    ).enabled === true
  if (live === want) return []
  const set = (cf: Cloudflare, enabled: boolean) =>
    cf.originTLSClientAuth.settings.update({ zone_id: zoneId, enabled })
  const change: Change = {
    kind: 'origin-pulls',
    target: 'authenticated origin pulls (zone)',
    from: live ? 'on' : 'off',
    to: want ? 'on' : 'off',
    async apply() {
      await call(ctx, 'set authenticated origin pulls', (cf) => set(cf, want))
      change.undo = async () => {
        await call(ctx, 'restore authenticated origin pulls', (cf) => set(cf, live))
      }
    },
  }
  return [change]
}

function packOrder(ctx: CfContext, zoneId: string, hosts: string[]): Change {
  const change: Change = {
    kind: 'certificate-pack',
    target: 'advanced certificate (Let’s Encrypt, 90 days, auto-renewed)',
    from: '(none)',
    to: hosts.join(' '),
    async apply() {
      const pack = (await call(ctx, 'order an advanced certificate pack', (cf) =>
        cf.ssl.certificatePacks.create({
          zone_id: zoneId,
          type: 'advanced',
          hosts,
          validation_method: 'txt',
          validity_days: 90,
          certificate_authority: 'lets_encrypt',
        } as never),
      )) as { id: string }
      change.undo = async () => {
        await call(ctx, 'cancel the certificate pack', (cf) =>
          cf.ssl.certificatePacks.delete(pack.id, { zone_id: zoneId }),
        )
      }
    },
  }
  return change
}

/** Applies every change; on a failure, undoes the applied ones (newest first) and throws. */
export async function applyChanges(changes: Change[]): Promise<void> {
  const done: Change[] = []
  for (const change of changes) {
    try {
      await change.apply()
      done.push(change)
    } catch (err) {
      const undone: string[] = []
      const stuck: string[] = []
      for (const c of done.reverse()) {
        try {
          await c.undo?.()
          undone.push(c.target)
        } catch (undoErr) {
          stuck.push(`${c.target}: ${(undoErr as Error).message}`)
        }
      }
      if (stuck.length) printErr(`could not undo:\n  ${stuck.join('\n  ')}`)
      throw new RunbookError(
        `${(err as Error).message}\n${done.length ? `The ${done.length} change(s) made before it were undone${stuck.length ? ' except those listed above' : ''}: ${undone.join(', ')}.` : 'Nothing had been changed yet.'}`,
        1,
        stuck.length
          ? 'Some changes could not be undone: run make dns ENV=<env> (plan) to see the zone as it is now.'
          : ((err as RunbookError).next ?? 'The zone is as it was. Fix the cause above and run again.'),
      )
    }
  }
}

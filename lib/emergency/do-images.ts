/**
 * Golden images at DigitalOcean (make image): droplet actions (shut down, snapshot) and the account's
 * droplet snapshots. A golden image of an env is a snapshot named `<name_prefix>-golden-<yyyymmdd-hhmm>`;
 * emergency creates its droplet from the newest one available in the env's region.
 */
import type { DropletConfig } from '../env/droplet.ts'
import { PreconditionError } from '../report/errors.ts'
import { type DoClient, request } from './digitalocean.ts'

export interface Snapshot {
  /** The snapshot's image id (`POST /v2/droplets` takes it as `image`). */
  id: number
  name: string
  createdAt: string
  regions: string[]
  sizeGb: number
}

interface RawSnapshot {
  id: string | number
  name: string
  created_at: string
  regions?: string[]
  size_gigabytes?: number
}

interface RawAction {
  id: number
  status: 'in-progress' | 'completed' | 'errored'
  type: string
}

/** How a golden image of this env is named: its prefix, then the UTC minute it was taken. */
export const goldenPrefix = (config: DropletConfig): string => `${config.namePrefix}-golden-`

export function goldenName(config: DropletConfig, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 13)
  return `${goldenPrefix(config)}${stamp}`
}

/** The env's golden images (any region), newest first (pure: unit tested). */
export function goldenOf(snapshots: Snapshot[], config: DropletConfig): Snapshot[] {
  const prefix = goldenPrefix(config)
  return snapshots
    .filter((s) => s.name.startsWith(prefix))
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id - a.id)
}

/** The env's golden images usable in its region, newest first. */
export function goldenImages(snapshots: Snapshot[], config: DropletConfig): Snapshot[] {
  return goldenOf(snapshots, config).filter((s) => s.regions.includes(config.region))
}

/** Golden images beyond the newest `keep` (in any region): what make image deletes after a new one. */
export function goldenToPrune(snapshots: Snapshot[], config: DropletConfig, keep: number): Snapshot[] {
  return goldenOf(snapshots, config).slice(keep)
}

/** Age in whole days, for what emergency prints about the image it starts from. */
export const ageDays = (s: Snapshot, now = Date.now()): number =>
  Math.floor((now - Date.parse(s.createdAt)) / 86_400_000)

export async function listSnapshots(c: DoClient): Promise<Snapshot[]> {
  const out: Snapshot[] = []
  for (let page = 1; page <= 50; page++) {
    const got = await request<{ snapshots: RawSnapshot[]; links?: { pages?: { next?: string } } }>(
      c,
      'GET',
      `/v2/snapshots?resource_type=droplet&per_page=200&page=${page}`,
      'list droplet snapshots',
    )
    for (const s of got.snapshots)
      out.push({
        id: Number(s.id),
        name: s.name,
        createdAt: s.created_at,
        regions: s.regions ?? [],
        sizeGb: s.size_gigabytes ?? 0,
      })
    if (!got.links?.pages?.next) break
  }
  return out
}

export async function dropletAction(
  c: DoClient,
  dropletId: number,
  body: { type: 'shutdown' | 'power_off' | 'snapshot'; name?: string },
): Promise<RawAction> {
  const out = await request<{ action: RawAction }>(
    c,
    'POST',
    `/v2/droplets/${dropletId}/actions`,
    `${body.type} droplet ${dropletId}`,
    body,
  )
  return out.action
}

/** Polls an action until it completed; an errored one, or one still running at the deadline, throws. */
export async function waitAction(
  c: DoClient,
  action: RawAction,
  timeoutS: number,
  pollMs = 3000,
): Promise<void> {
  const deadline = Date.now() + timeoutS * 1000
  for (;;) {
    const got = (
      await request<{ action: RawAction }>(c, 'GET', `/v2/actions/${action.id}`, `read action ${action.id}`)
    ).action
    if (got.status === 'completed') return
    if (got.status === 'errored')
      throw new PreconditionError(
        `DigitalOcean's ${got.type} action ${got.id} errored`,
        'Look at the droplet in the DigitalOcean console (Activity), then run the same command again.',
      )
    if (Date.now() > deadline)
      throw new PreconditionError(
        `DigitalOcean's ${got.type} action ${got.id} is still in progress after ${timeoutS} s`,
        'It may still finish: look at Images > Snapshots in the DigitalOcean console before running again.',
      )
    await new Promise((r) => setTimeout(r, pollMs))
  }
}

export async function deleteDroplet(c: DoClient, id: number): Promise<void> {
  await request(c, 'DELETE', `/v2/droplets/${id}`, `delete droplet ${id}`)
}

export async function deleteSnapshot(c: DoClient, id: number): Promise<void> {
  await request(c, 'DELETE', `/v2/snapshots/${id}`, `delete snapshot ${id}`)
}

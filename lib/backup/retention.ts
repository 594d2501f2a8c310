/**
 * Which backups to keep, like restic/borg `forget`: the newest complete backup of each of the last N
 * distinct days, ISO weeks and months (UTC) that have one. The newest complete backup is always kept.
 * Incomplete backups are kept for a while (one may still be uploading), then deleted. planRetention is
 * pure; applyRetention deletes, COMPLETE marker first, so a half-deleted backup never looks complete.
 */
import { InputError } from '../report/errors.ts'
import type { BackupStore } from '../store/storage.ts'
import { backupPrefix, completeKey } from './catalog.ts'

export interface RetentionPolicy {
  keepDaily: number
  keepWeekly: number
  keepMonthly: number
  /** Incomplete backups younger than this are kept (default 24). */
  keepIncompleteHours?: number
}

export interface RetentionPlan {
  keep: { id: string; reasons: string[] }[]
  delete: { id: string; reason: string }[]
}

/** unknownKey: signed with a key the keyring lacks: never deleted (it may be a real backup). */
type Entry = { id: string; createdAt: Date; complete: boolean; unknownKey?: string }

const day = (d: Date) => d.toISOString().slice(0, 10)
const month = (d: Date) => d.toISOString().slice(0, 7)

/** ISO 8601 week, e.g. 2026-W48 (weeks start on Monday; week 1 holds the year's first Thursday). */
export function isoWeek(d: Date): string {
  const monday0 = (x: Date) => (x.getUTCDay() + 6) % 7
  const thursday = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - monday0(d) + 3))
  const year = thursday.getUTCFullYear()
  const jan4 = new Date(Date.UTC(year, 0, 4))
  const firstThursday = Date.UTC(year, 0, 4 - monday0(jan4) + 3)
  const week = 1 + Math.round((thursday.getTime() - firstThursday) / (7 * 86_400_000))
  return `${year}-W${String(week).padStart(2, '0')}`
}

export function planRetention(entries: Entry[], policy: RetentionPolicy, now: Date): RetentionPlan {
  checkPolicy(policy)
  const incompleteMs = (policy.keepIncompleteHours ?? 24) * 3_600_000
  const sorted = [...new Map(entries.map((e) => [e.id, e])).values()].sort(
    (a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1),
  )
  const reasons = new Map<string, string[]>()
  const keep = (id: string, reason: string) => reasons.set(id, [...(reasons.get(id) ?? []), reason])

  const complete = sorted.filter((e) => e.complete)
  if (complete[0]) keep(complete[0].id, 'newest verified')
  const rules: [string, number, (d: Date) => string][] = [
    ['daily', policy.keepDaily, day],
    ['weekly', policy.keepWeekly, isoWeek],
    ['monthly', policy.keepMonthly, month],
  ]
  for (const [name, count, bucketOf] of rules) {
    // Newest first: the first backup seen in a bucket is that bucket's newest.
    const seen = new Set<string>()
    for (const e of complete) {
      if (seen.size >= count) break
      const bucket = bucketOf(e.createdAt)
      if (seen.has(bucket)) continue
      seen.add(bucket)
      keep(e.id, `${name} ${bucket}`)
    }
  }

  const plan: RetentionPlan = { keep: [], delete: [] }
  for (const e of sorted) {
    const kept = reasons.get(e.id)
    if (kept) plan.keep.push({ id: e.id, reasons: kept })
    else if (e.unknownKey)
      plan.keep.push({ id: e.id, reasons: [`signed with key ${e.unknownKey}, not in the keyring`] })
    else if (e.complete) plan.delete.push({ id: e.id, reason: 'not selected by the retention policy' })
    else if (now.getTime() - e.createdAt.getTime() > incompleteMs) {
      plan.delete.push({ id: e.id, reason: `incomplete and older than ${incompleteMs / 3_600_000}h` })
    } else plan.keep.push({ id: e.id, reasons: ['in progress?'] })
  }
  return plan
}

function checkPolicy(policy: RetentionPolicy): void {
  const problems: string[] = []
  for (const k of ['keepDaily', 'keepWeekly', 'keepMonthly'] as const) {
    const v = policy[k]
    if (!Number.isInteger(v) || v < 0)
      problems.push(`${k}: expected a whole number >= 0, got ${JSON.stringify(v)}`)
  }
  const hours = policy.keepIncompleteHours
  if (hours !== undefined && !(Number.isFinite(hours) && hours >= 0)) {
    problems.push(`keepIncompleteHours: expected a number >= 0, got ${JSON.stringify(hours)}`)
  }
  if (problems.length) throw new InputError('invalid backup retention policy:', problems)
}

/**
 * Deletes every object of each backup the plan deletes, COMPLETE marker first. Returns what went.
 * A backup that the plan also keeps is refused (a plan from somewhere else).
 */
export async function applyRetention(
  store: BackupStore,
  env: string,
  plan: RetentionPlan,
): Promise<{ deleted: string[]; objects: number; bytes: number }> {
  const kept = new Set(plan.keep.map((k) => k.id))
  const clash = plan.delete.filter((d) => kept.has(d.id)).map((d) => d.id)
  if (clash.length) throw new InputError(`retention plan both keeps and deletes ${clash.join(', ')}`)
  const result = { deleted: [] as string[], objects: 0, bytes: 0 }
  for (const { id } of plan.delete) {
    const objects = await store.list(backupPrefix(env, id))
    if (objects.length === 0) continue
    const marker = completeKey(env, id)
    if (objects.some((o) => o.key === marker)) await store.delete([marker])
    await store.delete(objects.map((o) => o.key).filter((k) => k !== marker))
    result.deleted.push(id)
    result.objects += objects.length
    result.bytes += objects.reduce((a, o) => a + o.bytes, 0)
  }
  return result
}

/**
 * WAL retention: base backups and the archived WAL are one chain. Each cluster's segments older than
 * the first segment its oldest kept base backup needs are of no use to any restore, and go with
 * prune-backups. A cluster no kept backup has a base of is kept whole (it may be the live one before its
 * first base, or an old one someone still wants): it is listed, never deleted here. Timeline history
 * files are kept. Pure: the plan. Unit tested.
 */
import type { BaseInfo } from './base-backup.ts'
import { type ArchivedWal, isSegmentName } from './wal-archive.ts'

export interface ClusterWalPlan {
  system: string
  /** The first segment the oldest kept base of this cluster needs; undefined: no kept base. */
  keepFrom?: string
  remove: ArchivedWal[]
  kept: number
}

export function planWalRetention(archived: ArchivedWal[], keptBases: BaseInfo[]): ClusterWalPlan[] {
  const systems = [...new Set(archived.map((w) => w.system))]
  return systems.map((system) => {
    const mine = archived.filter((w) => w.system === system)
    const starts = keptBases.filter((b) => b.system === system).map((b) => b.start_wal)
    const keepFrom = starts.sort()[0]
    // Names order within a timeline; an older timeline's segments sort before a newer one's.
    const remove = keepFrom ? mine.filter((w) => isSegmentName(w.name) && w.name < keepFrom) : []
    return { system, ...(keepFrom ? { keepFrom } : {}), remove, kept: mine.length - remove.length }
  })
}

/** One line per cluster for prune-backups' report. */
export function describeWalPlan(plan: ClusterWalPlan[]): string[] {
  return plan.map((c) =>
    c.keepFrom
      ? `WAL of cluster ${c.system}: ${c.remove.length} segment(s) before ${c.keepFrom} (the oldest kept base's first) to delete, ${c.kept} kept`
      : `WAL of cluster ${c.system}: no kept backup has a base of it: all ${c.kept} file(s) kept (delete them by hand once nobody needs that cluster: docs/runbooks/backup.md#retention)`,
  )
}

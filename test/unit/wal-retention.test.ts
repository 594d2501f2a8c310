import * as assert from 'uvu/assert'
import type { BaseInfo } from '../../lib/backup/base-backup.ts'
import type { ArchivedWal } from '../../lib/backup/wal-archive.ts'
import { describeWalPlan, planWalRetention } from '../../lib/backup/wal-retention.ts'
import { suite } from '../harness.ts'

const test = suite('wal-retention: WAL older than the oldest kept base backup of its cluster goes')

const w = (system: string, name: string): ArchivedWal => ({
  key: `wal/p/${system}/${name}.0123456789abcdef.gz.enc`,
  system,
  name,
  hash: '0123456789abcdef',
  bytes: 10,
})
const seg = (n: number) => `0000000100000000${n.toString(16).toUpperCase().padStart(8, '0')}`
const base = (system: string, n: number): BaseInfo => ({
  system,
  timeline: 1,
  start_lsn: `0/${n.toString(16).toUpperCase()}000028`,
  start_wal: seg(n),
  end_lsn: `0/${n.toString(16).toUpperCase()}000100`,
  finished_at: '2026-12-06T10:00:00Z',
})

test("each cluster from its oldest kept base's first segment on; history files kept", () => {
  const archived = [1, 2, 3, 4, 5, 6].map((n) => w('111', seg(n))).concat([w('111', '00000002.history')])
  const [plan] = planWalRetention(archived, [base('111', 5), base('111', 3)])
  assert.is(plan?.keepFrom, seg(3))
  assert.equal(
    plan?.remove.map((x) => x.name),
    [seg(1), seg(2)],
  )
  assert.is(plan?.kept, 5)
})

test("a cluster no kept backup has a base of is kept whole, and said so; another cluster's base never counts", () => {
  const archived = [w('111', seg(1)), w('111', seg(2)), w('222', seg(1)), w('222', seg(9))]
  const plans = planWalRetention(archived, [base('222', 9)])
  assert.equal(
    plans.map((p) => [p.system, p.keepFrom, p.remove.map((x) => x.name), p.kept]),
    [
      ['111', undefined, [], 2],
      ['222', seg(9), [seg(1)], 1],
    ],
  )
  const lines = describeWalPlan(plans)
  assert.match(lines[0] ?? '', 'WAL of cluster 111: no kept backup has a base of it: all 2 file(s) kept')
  assert.is(
    lines[1],
    `WAL of cluster 222: 1 segment(s) before ${seg(9)} (the oldest kept base's first) to delete, 1 kept`,
  )
  assert.equal(planWalRetention([], [base('1', 1)]), [])
})

test.run()

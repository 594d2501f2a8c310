import * as assert from 'uvu/assert'
import { liveWithTree, parseSourceArgs, recordedSource, staleRunProblem } from '../../lib/deploy/source.ts'
import { InputError } from '../../lib/report/errors.ts'
import type { ReleaseRecord } from '../../lib/stack/releases.ts'
import { suite } from '../harness.ts'

// The source commit of a release: COMMITTED_AT= refuses older over newer, TREE= promotes a merge commit.
const test = suite('source commit: stale-run refusal and promotion by tree')

const TREE_A = 'a'.repeat(40)
const TREE_B = 'b'.repeat(40)
const rec = (
  id: string,
  outcome: ReleaseRecord['outcome'],
  source?: ReleaseRecord['source'],
): ReleaseRecord => ({
  id,
  colour: 'blue',
  images: {},
  digests: {},
  who: 't',
  at: '2026-12-01T00:00:00Z',
  duration_s: 1,
  outcome,
  action: 'deploy',
  previous: null,
  ...(source ? { source } : {}),
})

function inputError(f: () => unknown): string {
  try {
    f()
  } catch (err) {
    assert.instance(err, InputError)
    return `${(err as InputError).message} ${JSON.stringify(err)}`
  }
  assert.unreachable('no error')
  return ''
}

test('COMMITTED_AT and TREE: optional; a time in another zone is kept in UTC; a bad value names its variable', () => {
  assert.equal(parseSourceArgs({}), {})
  assert.equal(parseSourceArgs({ 'committed-at': '2026-12-02T10:31:07-03:00', tree: TREE_A }), {
    committed_at: '2026-12-02T13:31:07.000Z',
    tree: TREE_A,
  })
  assert.match(
    inputError(() => parseSourceArgs({ 'committed-at': 'yesterday' })),
    'COMMITTED_AT: "yesterday"',
  )
  assert.match(
    inputError(() => parseSourceArgs({ 'committed-at': '2026-13-45T99:00:00Z' })),
    'COMMITTED_AT',
  )
  assert.match(
    inputError(() => parseSourceArgs({ tree: 'main' })),
    'TREE: "main" is not a git tree hash',
  )
})

test('an older commit over a newer live one is a problem that names both and the way back; newer, same or unknown is not', () => {
  const history = [
    rec('old', 'live', { committed_at: '2026-12-01T10:00:00.000Z' }),
    rec('new', 'live', { committed_at: '2026-12-02T10:00:00.000Z' }),
    rec('failed', 'failed', { committed_at: '2026-12-03T10:00:00.000Z' }),
  ]
  const problem = staleRunProblem(history, 'old', { committed_at: '2026-12-01T10:00:00.000Z' }, 'staging')
  assert.ok(problem)
  assert.match(problem, 'old (committed 2026-12-01T10:00:00.000Z) is older than new, live now')
  assert.match(problem, 'make rollback ENV=staging TO=old')
  assert.match(problem, 'ALLOW_OLDER=1')
  // A failed release is not live: the live one is `new`.
  assert.is(
    staleRunProblem(history, 'next', { committed_at: '2026-12-02T11:00:00.000Z' }, 'staging'),
    undefined,
  )
  assert.is(
    staleRunProblem(history, 'new', { committed_at: '2026-12-01T00:00:00.000Z' }, 'staging'),
    undefined,
  )
  assert.is(staleRunProblem(history, 'x', {}, 'staging'), undefined)
  assert.is(
    staleRunProblem([rec('hand', 'live')], 'x', { committed_at: '2026-01-01T00:00:00Z' }, 's'),
    undefined,
  )
  assert.is(staleRunProblem([], 'x', { committed_at: '2026-01-01T00:00:00Z' }, 's'), undefined)
})

test("a deploy's record keeps its own source; a rollback's keeps its target's", () => {
  const history = [
    rec('v1', 'live', { committed_at: '2026-12-01T10:00:00.000Z', tree: TREE_A }),
    rec('v2', 'live'),
  ]
  assert.equal(recordedSource('deploy', { tree: TREE_B }, history, 'v3'), { tree: TREE_B })
  assert.is(recordedSource('deploy', {}, history, 'v3'), undefined)
  assert.equal(recordedSource('rollback', undefined, history, 'v1'), {
    committed_at: '2026-12-01T10:00:00.000Z',
    tree: TREE_A,
  })
  assert.is(recordedSource('rollback', undefined, history, 'v2'), undefined)
})

test('promotion by tree: the newest live record with the same tree; none without a tree', () => {
  const history = [
    rec('s1', 'live', { tree: TREE_A }),
    rec('s2', 'failed', { tree: TREE_B }),
    rec('s3', 'live', { tree: TREE_A }),
  ]
  assert.is(liveWithTree(history, TREE_A)?.id, 's3')
  assert.is(liveWithTree(history, TREE_B), undefined)
  assert.is(liveWithTree(history, undefined), undefined)
})

test.run()

import { InputError } from '../report/errors.ts'
import type { ParsedArgs } from '../run/cli.ts'
import { perRun } from '../run/per-run.ts'
import { liveRelease, type ReleaseRecord } from '../stack/releases.ts'

// Where a release's code came from: its commit's time and tree (CI passes the push's head_commit).
// Kept in the release record. The commit time stops a stale run (a re-run of an old pipeline, a queue
// overtaken) from putting older code over newer; the tree lets production promote a merge commit whose
// tree is exactly what went live on staging (same files, another commit).

export interface SourceCommit {
  /** The commit's time, ISO 8601 (github.event.head_commit.timestamp). */
  committed_at?: string
  /** The commit's tree hash (github.event.head_commit.tree_id). */
  tree?: string
}

const source = perRun<SourceCommit>('source commit')
export const setSource = source.set
export const runSource = source.maybe

const TREE = /^[0-9a-f]{40}([0-9a-f]{24})?$/
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$/

/** COMMITTED_AT= and TREE= (both optional); a value that is given must be usable. */
export function parseSourceArgs(args: ParsedArgs): SourceCommit {
  const at = typeof args['committed-at'] === 'string' ? args['committed-at'].trim() : ''
  const tree = typeof args.tree === 'string' ? args.tree.trim() : ''
  const problems: string[] = []
  if (at && (!TIME.test(at) || Number.isNaN(Date.parse(at))))
    problems.push(`COMMITTED_AT: "${at}" is not an ISO 8601 time such as 2026-12-02T10:31:07Z`)
  if (tree && !TREE.test(tree)) problems.push(`TREE: "${tree}" is not a git tree hash (40 or 64 hex digits)`)
  if (problems.length)
    throw new InputError(
      'the source commit is not usable:',
      problems,
      'Pass the commit being deployed: COMMITTED_AT=$(git show -s --format=%cI <sha>) TREE=$(git rev-parse <sha>^{tree}), or leave both out.',
    )
  return { ...(at ? { committed_at: new Date(at).toISOString() } : {}), ...(tree ? { tree } : {}) }
}

/**
 * Why deploying `release` (committed at `given`) would put older code over newer: the live release's
 * commit is later. Undefined when it would not, or when either time is unknown (a deploy by hand).
 */
export function staleRunProblem(
  history: ReleaseRecord[],
  release: string,
  given: SourceCommit | undefined,
  envName: string,
): string | undefined {
  const live = liveRelease(history)
  const liveAt = live?.source?.committed_at
  if (!live || live.id === release || !liveAt || !given?.committed_at) return undefined
  if (Date.parse(liveAt) <= Date.parse(given.committed_at)) return undefined
  return `${release} (committed ${given.committed_at}) is older than ${live.id}, live now (committed ${liveAt}): a stale run (an old pipeline re-run, or a queue overtaken) would put older code over newer. To go back on purpose: make rollback ENV=${envName} TO=${release} (when it went live here), or ALLOW_OLDER=1 (audited)`
}

/** The source a record should keep: a deploy's own; a rollback's is its target's (what runs again). */
export function recordedSource(
  action: 'deploy' | 'rollback',
  run: SourceCommit | undefined,
  history: ReleaseRecord[],
  release: string,
): SourceCommit | undefined {
  const s =
    action === 'deploy'
      ? run
      : [...history].reverse().find((r) => r.id === release && r.outcome === 'live')?.source
  return s && (s.committed_at || s.tree) ? s : undefined
}

/** The newest live record of the same tree (another commit with exactly these files). */
export function liveWithTree(history: ReleaseRecord[], tree: string | undefined): ReleaseRecord | undefined {
  if (!tree) return undefined
  return [...history].reverse().find((r) => r.outcome === 'live' && r.source?.tree === tree)
}

import { readReleases } from '../commands/health.ts'
import { parseDigestsArg, pinsOfRecord, setPins } from '../deploy/pins.ts'
import { parseSourceArgs, setSource } from '../deploy/source.ts'
import { remotePaths } from '../env/host-paths.ts'
import { runLocalSync } from '../host/local-run.ts'
import type { HostSession } from '../host/session.ts'
import { InputError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import { stringArg } from '../run/cli.ts'
import type { Context } from '../run/runbook.ts'
import { liveRelease, parseReleases, previousGood } from '../stack/releases.ts'

// Which release a run is about: RELEASE= under the branch rule (deploy), or the rollback target.
export const RELEASE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** The release argument and the branch rule, the same on one host and on a swarm. */
export function releaseToDeploy(ctx: Context): string {
  const release = stringArg(ctx.args, 'release')
  if (!release || !RELEASE.test(release))
    throw new InputError('RELEASE=<sha> is required: the image tag to deploy (letters, digits, . _ -)')
  checkBranch(ctx.env.branch, stringArg(ctx.args, 'branch'), ctx.args['allow-branch'] === true)
  const pins = parseDigestsArg(stringArg(ctx.args, 'digests'), ctx.env)
  // COMMITTED_AT=, TREE=: kept in the record; an older commit over a newer one is refused.
  setSource(ctx, parseSourceArgs(ctx.args))
  if (pins) {
    setPins(ctx, pins)
    print(
      `      images pinned by digest: ${Object.entries(pins)
        .map(([s, d]) => `${s} ${d.slice(0, 19)}`)
        .join(', ')}`,
    )
  }
  ctx.release = release
  return release
}

/** TO=<release>, else the previous good one, from the history on `host` (the first host, the manager). */
export async function chooseTarget(ctx: Context, host: HostSession | undefined): Promise<string> {
  if (!host) throw new InputError('the env has no host')
  const history = parseReleases(
    (await host.exec(readReleases(remotePaths(ctx.env).releases), { probe: true, echo: false })).stdout,
  )
  const current = liveRelease(history)?.id
  const wanted = stringArg(ctx.args, 'to')
  const target = wanted
    ? history.find((r) => r.id === wanted && r.outcome === 'live')
    : previousGood(history, current)
  if (!target) {
    const known =
      [...new Set(history.filter((r) => r.outcome === 'live').map((r) => r.id))].join(', ') || 'none'
    throw new InputError(
      wanted
        ? `${wanted} never went live here, so it is no rollback target (live releases: ${known})`
        : `There is no previous good release to go back to (live releases: ${known})`,
    )
  }
  if (target.id === current) throw new InputError(`${target.id} is already live`)
  // The digests it ran, when it came from a registry: a host that lost the images pulls exactly those.
  const pins = ctx.env.images.delivery === 'registry' ? pinsOfRecord(target) : undefined
  if (pins) setPins(ctx, pins)
  ctx.release = target.id
  print(`      rolling back from ${current ?? 'none'} to ${target.id}`)
  return target.id
}

/** staging deploys from `staging`, production from `main`; anything else needs ALLOW_BRANCH=1 (audited). */
export function checkBranch(expected: string, given: string | undefined, allow: boolean): void {
  const branch = given ?? process.env.GITHUB_REF_NAME ?? currentGitBranch()
  if (branch === expected || allow) return
  throw new InputError(
    `This env deploys from branch "${expected}", and this release comes from "${branch ?? 'unknown'}".`,
    [],
    'Deploy a release from the right branch, or pass ALLOW_BRANCH=1 if you mean it (the override is audited).',
  )
}

function currentGitBranch(): string | undefined {
  const git = runLocalSync(['git', 'rev-parse', '--abbrev-ref', 'HEAD'])
  return git.code === 0 ? git.stdout.trim() : undefined
}

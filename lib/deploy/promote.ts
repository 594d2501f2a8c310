import { readOn } from '../commands/checker.ts'
import { loadEnv } from '../env/load.ts'
import { readPromoteKey } from '../env/secrets.ts'
import { InputError, PreconditionError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import { checkerSession } from '../run/connect.ts'
import type { Context } from '../run/runbook.ts'
import { parseReleases, type ReleaseRecord } from '../stack/releases.ts'
import { pinsOfRecord, runPins, setPins } from './pins.ts'
import { liveWithTree, runSource } from './source.ts'

// Build once, promote by digest: an env with promote_from (production) deploys a release only as it
// went live on that env (staging), pinned to the digests it ran there. ALLOW_UNSTAGED=1 skips the
// check (audited): a hotfix when staging is down.

/**
 * Checks the release against the source env's history and pins the run to its digests. Stops before
 * any change when it never went live there, when its record has no registry digests, or when
 * DIGESTS= says otherwise.
 */
export async function checkPromotion(ctx: Context, release: string): Promise<void> {
  const from = ctx.env.promoteFrom
  if (!from) return
  if (ctx.args['allow-unstaged'] === true) {
    print(`      ALLOW_UNSTAGED=1: ${release} is not checked against ${from.env} (the override is audited)`)
    ctx.auditEvent(`promotion check skipped (ALLOW_UNSTAGED=1): ${release} not checked against ${from.env}`)
    return
  }
  const { history, live } = await stagedHistory(ctx)
  const tree = runSource(ctx)?.tree
  const byId = history.filter((r) => r.id === release).at(-1)
  // A merge commit staging never ran, with exactly the files of one that went live there: same tree.
  const record = byId ?? liveWithTree(history, tree)
  const next = `Deploy ${release} to ${from.env} first (it goes live there, then here with the same images), or pass ALLOW_UNSTAGED=1 if you must (audited).`
  if (!record)
    throw new PreconditionError(
      `${release} never went live on ${from.env} (promote_from of ${ctx.env.file})${tree ? `, nor did its tree ${tree.slice(0, 12)}` : ''}; live there: ${live.join(', ') || 'none'}`,
      next,
    )
  const pins = pinsOfRecord(record)
  if (!pins)
    throw new PreconditionError(
      `${from.env}'s record of ${release} has no registry digest for every service (its images did not come from a registry)`,
      next,
    )
  const given = runPins(ctx)
  const differ = given
    ? Object.keys(pins).filter((s) => given[s as keyof typeof pins] !== pins[s as keyof typeof pins])
    : []
  if (differ.length)
    throw new InputError(
      `DIGESTS differ from what went live on ${from.env} for ${release}: ${differ.join(', ')}`,
      differ.map(
        (s) =>
          `${s}: given ${given?.[s as keyof typeof pins]}, ${from.env} ran ${pins[s as keyof typeof pins]}`,
      ),
      `Leave DIGESTS out (${ctx.env.name} takes ${from.env}'s), or give the digests that went live there.`,
    )
  setPins(ctx, pins)
  const as = record.id === release ? '' : ` as ${record.id} (the same tree, ${tree?.slice(0, 12)})`
  print(
    `      ${release} went live on ${from.env}${as} at ${record.at}: promoted with the same image digests`,
  )
  ctx.auditEvent(`promoted ${release} from ${from.env}${as} (live there at ${record.at}) by digest`)
}

/** What went live on the source env (oldest first), read through its checker login. */
async function stagedHistory(ctx: Context): Promise<{ history: ReleaseRecord[]; live: string[] }> {
  const from = ctx.env.promoteFrom
  if (!from) return { history: [], live: [] }
  const source = loadEnv(from.env)
  const checker = source.ssh.checker
  const host = source.hosts.find((h) => h.roles.includes('web')) ?? source.hosts[0]
  if (!checker || !host)
    throw new InputError(
      `promote_from.env of ${ctx.env.file}: ${source.file} has no ssh.checker (or no host): its history is read through its checker account`,
    )
  const session = checkerSession(source, host, readPromoteKey(ctx.env, ctx.secrets), {
    commandTimeoutS: 60,
    echo: false,
  })
  try {
    await session.connect()
    const out = await session.exec(readOn(session, source, 'releases'), {
      probe: true,
      echo: false,
    })
    const history = parseReleases(out.stdout).filter((r) => r.outcome === 'live')
    return {
      history,
      live: [...new Set(history.map((r) => r.id))].slice(-5),
    }
  } catch (err) {
    if (err instanceof PreconditionError || err instanceof InputError) throw err
    throw new PreconditionError(
      `cannot read ${from.env}'s release history on ${host.name} as ${checker.user}: ${(err as Error).message.split('\n')[0]}`,
      `Check ${from.checkerKey.secret ?? from.checkerKey.file} (promote_from.checker_key) is ${from.env}'s checker key and ${host.name} is up; or ALLOW_UNSTAGED=1 (audited).`,
    )
  } finally {
    session.close()
  }
}

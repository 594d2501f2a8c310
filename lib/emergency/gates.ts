import { readBackupManifest } from '../backup/restore.ts'
import type { Host } from '../env/load.ts'
import { readPrivateKey } from '../env/secrets.ts'
import {
  containerChecks,
  type HealthResult,
  headerChecks,
  httpChecks,
  serviceChecks,
  tlsChecks,
} from '../health/checks.ts'
import { EXIT, RunbookError } from '../report/errors.ts'
import { print, table } from '../report/output.ts'
import { type Context, connectHost } from '../run/runbook.ts'
import { onNewHost, save, st } from './run.ts'
import { checkData, probeDomains, recordProblems } from './verify.ts'

// The emergency's checks on the new host: the health gates before the DNS switch, the data and every
// domain after it.

/**
 * The new host as the env sees it, with one SSH session kept in ctx.hosts (so the emergency's own
 * audit record lands there too); in a dry run, `what` is printed and nothing connects.
 */
async function newHostSession(ctx: Context, what: string) {
  const s = st(ctx)
  if (ctx.dryRun) {
    print(`      would ${what} on ${s.host ? s.host.address : 'the new droplet once it exists'}`)
    return undefined
  }
  const env = onNewHost(s, ctx.env)(ctx.env)
  const host = env.hosts[0] as Host
  let session = ctx.hosts.find((h) => h.name === host.name)
  if (!session) {
    session = await connectHost({ ...ctx, env }, host, readPrivateKey(env, ctx.secrets), 'user')
    ctx.hosts.push(session)
  }
  return { s, env, host, session }
}

export async function healthPhase(ctx: Context): Promise<void> {
  const on = await newHostSession(
    ctx,
    'check every domain through nginx, TLS, headers, containers and services',
  )
  if (!on) return
  const { env, session } = on
  const results: HealthResult[] = [
    ...(await httpChecks(session, env)),
    ...(await tlsChecks(session, env)),
    ...(await headerChecks(session, env)),
    ...(await containerChecks(session, env)),
    ...(await serviceChecks(session, env)),
  ]
  print(
    table([
      ['check', 'target', 'ok', 'value'],
      ...results.map((r) => [r.check, r.target, r.ok === null ? 'n/a' : r.ok ? 'ok' : 'FAIL', r.value]),
    ]),
  )
  const failed = results.filter((r) => r.ok === false)
  if (failed.length)
    throw new RunbookError(
      `${failed.length} health gate(s) failed on the new host: ${failed.map((r) => `${r.check} ${r.target}`).join(', ')}`,
      EXIT.gateFailed,
    )
}

export async function verifyPhase(ctx: Context): Promise<void> {
  const on = await newHostSession(
    ctx,
    `compare every table and the canary with backup ${st(ctx).backup?.id}, read the records, and request every domain`,
  )
  if (!on) return
  const { s, env, host, session } = on
  const { manifest } = await readBackupManifest(ctx, s.backup?.id)
  const data = await checkData(session, env, manifest, s.recovered?.tables)
  const records = await recordProblems(env, ctx.secrets)
  const domains = await probeDomains(env, host.address)
  print(
    table([
      ['check', 'result'],
      [
        'rows',
        s.recovered
          ? `${data.rowsVerified} of ${s.recovered.rows} rows recovered (backup ${manifest.id}'s base, WAL replayed to ${s.recovered.replayedTo || 'its end'}; the backup had ${manifest.postgres.rows}); ${data.dataLost} lost`
          : `${data.rowsVerified} of ${manifest.postgres.rows} rows of backup ${manifest.id}; ${data.dataLost} lost`,
      ],
      ['canary', data.canary ? `row of backup ${manifest.id} present` : 'MISSING'],
      [
        'records',
        env.edge
          ? records.length
            ? records.join('; ')
            : `every domain names only ${host.address}`
          : 'n/a (no edge: section)',
      ],
      ...domains.map((d) => [
        d.domain,
        `${d.status ?? d.error} ${d.protocol} ${d.ms} ms ${env.health.edge ? 'through the edge' : `at ${host.address} (the origin the records name)`}`,
      ]),
    ]),
  )
  s.result = { rowsVerified: data.rowsVerified, dataLost: data.dataLost }
  save(ctx)
  const problems = [
    ...data.problems,
    ...records,
    ...domains.filter((d) => d.status !== 200).map((d) => `${d.domain}: ${d.status ?? d.error}`),
  ]
  if (problems.length)
    throw new RunbookError(`verification failed:\n  - ${problems.join('\n  - ')}`, EXIT.gateFailed)
}

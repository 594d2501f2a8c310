import { readReleases } from '../commands/health.ts'
import {
  acceptTwinSql,
  newPassword,
  psqlFromStdin,
  redisAclInput,
  redisCliFromStdin,
  retireTwinSql,
  scramVerifier,
  setPasswordSql,
  twinRole,
} from '../commands/rotate.ts'
import { checkPreconditions, writeConfig } from '../deploy/prepare.ts'
import { state } from '../deploy/state.ts'
import { postDeployGates, recordLive, startTarget, switchTraffic } from '../deploy/switch.ts'
import { remotePaths } from '../env/host-paths.ts'
import type { Secrets } from '../env/secrets.ts'
import { releaseStrategy } from '../release/strategy.ts'
import { InputError } from '../report/errors.ts'
import { print, printErr } from '../report/output.ts'
import { registerSecret } from '../report/redact.ts'
import { perRun } from '../run/per-run.ts'
import type { Context } from '../run/step.ts'
import { DB_NAME, DB_USER } from '../stack/files.ts'
import { liveRelease, parseReleases } from '../stack/releases.ts'
import { dataSession } from '../swarm/hosts.ts'
import { swarmPreconditions, swarmSecrets, writeSwarmConfig } from '../swarm/prepare.ts'
import { deployStack, recordSwarmRelease, swarmGates, waitForSecrets, waitForStack } from '../swarm/roll.ts'
import { swarmRun } from '../swarm/state.ts'
import { type SecretHome, saveSecret, secretHome } from './edit.ts'

// make rotate-secret: a data password changed with no failed request. The data service accepts the
// old and the new password for a while (Redis: two passwords of its default user; Postgres, which
// keeps one per role: a twin login role that acts as the env's user); the apps move to the new one by
// the deploy's own blue/green switch (on a swarm: a rolling update of the services that use it, with
// new Docker secrets); then the old one is revoked and the colour that held it removed.

export const ROTATABLE = ['POSTGRES_PASSWORD', 'REDIS_PASSWORD'] as const
export type Rotatable = (typeof ROTATABLE)[number]

export function rotatable(name: string | undefined): Rotatable {
  if (ROTATABLE.includes(name as Rotatable)) return name as Rotatable
  throw new InputError(
    name ? `NAME=${name} cannot be rotated by this runbook` : 'NAME is required',
    [`it rotates ${ROTATABLE.join(' or ')} (the data services' passwords)`],
    'Other secrets change where they are issued (the provider), then make secrets-edit.',
  )
}

interface Rotation {
  name: Rotatable
  home: SecretHome
  old: string
  value: string
  /** The login and secrets the serving colour uses: what the config files go back to on a failure. */
  serving: { login: string | undefined; secrets: Secrets }
  saved: boolean
}

const rotations = perRun<Rotation>('the rotation')
const data = (ctx: Context) => ({ env: ctx.env.name, user: DB_USER, db: DB_NAME })

/** On the data host, the rotated service's change: SQL on psql's stdin, or commands on redis-cli's. */
async function onDataService(ctx: Context, sql: string, redis: string, allowFail = false): Promise<void> {
  const pg = rotations.get(ctx).name === 'POSTGRES_PASSWORD'
  await dataHost(ctx).exec(pg ? psqlFromStdin(data(ctx)) : redisCliFromStdin(data(ctx)), {
    stdin: pg ? sql : redis,
    allowFail,
    echo: false,
  })
}

function dataHost(ctx: Context) {
  const host = dataSession(ctx)
  if (!host) throw new InputError('the env has no host')
  return host
}

function useSecrets(ctx: Context, secrets: Secrets): void {
  ;(ctx as { secrets: Secrets }).secrets = Object.freeze({ ...secrets })
}

/** Which secret, where it is kept, the live release; the deploy's own preconditions; a new value. */
export async function prepareRotation(ctx: Context, name: Rotatable): Promise<void> {
  const home = secretHome(ctx.env, name)
  if (home.kind === 'environment')
    throw new InputError(
      `${name} comes from this process's environment, where the new value could not be kept`,
      [],
      `Unset ${name} here so that it is read from (and written to) the env's secrets file, then run again. Nothing was changed.`,
    )
  const host = releaseStrategy(ctx).historyHost(ctx)
  if (!host) throw new InputError('the env has no host')
  const history = parseReleases(
    (await host.exec(readReleases(remotePaths(ctx.env).releases), { probe: true, echo: false })).stdout,
  )
  const live = liveRelease(history)
  if (!live)
    throw new InputError(
      `nothing is live on ${ctx.env.name} yet`,
      [],
      `Deploy first: the new password goes live with the apps.`,
    )
  let serving = `${live.id} on every node`
  if (ctx.env.swarm) await swarmPreconditions(ctx, live.id, 'deploy')
  else {
    await checkPreconditions(ctx, live.id, 'deploy')
    const s = state(ctx)
    if (!s.live) throw new InputError('no colour serves: deploy first')
    s.removeOld = true
    serving = `${live.id} on ${s.live}`
  }
  ctx.release = live.id
  const value = newPassword()
  registerSecret(name, value)
  rotations.set(ctx, {
    name,
    home,
    old: ctx.secrets[name] ?? '',
    value,
    serving: { login: undefined, secrets: ctx.secrets },
    saved: false,
  })
  print(
    `      ${name}: a new value (32 random bytes), kept in ${home.kind === 'age' ? home.file : `${home.file} (plaintext: the sandbox)`}`,
  )
  const twice = name === 'REDIS_PASSWORD' ? '' : ' (twice: Postgres keeps one password per role)'
  print(
    `      the apps (${serving}) move to it by ${ctx.env.swarm ? 'a rolling update with new Docker secrets' : 'a colour switch'}${twice}`,
  )
}

/**
 * After a failure: the config files name what the serving colour uses (the deploy's undo then creates
 * containers from them); registered after the lock so it runs before the undo.
 */
export function restoreFilesOnFailure(ctx: Context): () => Promise<void> {
  return async () => {
    const r = rotations.maybe(ctx)
    if (!r || !ctx.failure() || ctx.dryRun) return
    useSecrets(ctx, r.serving.secrets)
    if (ctx.env.swarm) return swarmBackTo(ctx, r.serving.login)
    state(ctx).dbLogin = r.serving.login
    await writeConfig(ctx)
  }
}

/**
 * A swarm after a failure: the files and Docker secrets of what served before, and, if the stack was
 * told to use the new ones, a rolling update back, waited for (the swarm undo then only records).
 */
async function swarmBackTo(ctx: Context, login: string | undefined): Promise<void> {
  const run = swarmRun(ctx)
  if (run.deployed) printErr('  the apps go back to the secrets they used before (a rolling update)')
  await swarmOnSecrets(ctx, login, run.deployed)
  run.deployed = false
}

/**
 * The swarm's files and Docker secrets for ctx.secrets with `login`; with `roll`, the stack told to use
 * them and waited for until every task holds them.
 */
async function swarmOnSecrets(ctx: Context, login: string | undefined, roll: boolean): Promise<void> {
  const run = swarmRun(ctx)
  run.login = login
  await writeSwarmConfig(ctx)
  await swarmSecrets(ctx)
  if (!roll) return
  await deployStack(ctx, run.images)
  run.deployed = true
  await waitForStack(ctx, run.images)
  await waitForSecrets(ctx)
}

/** After a failure, once the apps are back on the old password: the new one is not accepted any more. */
export function revokeNewOnFailure(ctx: Context): () => Promise<void> {
  return async () => {
    const r = rotations.maybe(ctx)
    if (!r || !ctx.failure() || ctx.dryRun) return
    if (r.saved) {
      printErr(
        `  ${r.name}: the new value is saved in ${r.home.kind === 'environment' ? '' : r.home.file} and the apps use it; run make rotate-secret ENV=${ctx.env.name} NAME=${r.name} again to finish (it starts over with another value).`,
      )
      return
    }
    if (r.serving.secrets[r.name] !== r.old) return
    await onDataService(ctx, retireTwinSql(DB_USER), redisAclInput(r.old, '<', r.value), true)
    printErr(`  ${r.name}: unchanged; the apps use the old value, which is the only one accepted.`)
  }
}

/** Postgres: the twin role logs in with the new password. Redis: its default user takes a second password. */
export async function acceptNew(ctx: Context): Promise<void> {
  const r = rotations.get(ctx)
  if (ctx.dryRun) return
  await onDataService(ctx, acceptTwinSql(DB_USER, scramVerifier(r.value)), redisAclInput(r.old, '>', r.value))
  print(
    r.name === 'POSTGRES_PASSWORD'
      ? `      Postgres: ${twinRole(DB_USER)} logs in with the new password (and acts as ${DB_USER})`
      : '      Redis: the old and the new password both open it',
  )
}

/** The idle colour started with `login` and the new value; switched to; gates; the old colour removed. */
export async function moveApps(ctx: Context, login: string | undefined): Promise<void> {
  if (ctx.env.swarm) return moveSwarmApps(ctx, login)
  const r = rotations.get(ctx)
  const s = state(ctx)
  s.finished = false
  s.dbLogin = login
  useSecrets(ctx, { ...ctx.secrets, [r.name]: r.value })
  await writeConfig(ctx)
  await startTarget(ctx)
  await switchTraffic(ctx)
  if (ctx.dryRun) return
  await postDeployGates(ctx)
  r.serving = { login, secrets: ctx.secrets }
  await recordLive(ctx, `rotate-secret ${r.name}`)
  // The next switch, if any, goes the other way (finished until it starts: the deploy's undo has nothing to undo).
  Object.assign(s, {
    live: s.target,
    target: s.live,
    switched: false,
    alreadyRunning: undefined,
    alreadyHealthy: undefined,
    alreadyAnswering: undefined,
    digests: undefined,
  })
}

/**
 * A swarm: new Docker secrets (named by a hash of the new connection strings), a rolling update of the
 * services that use them, one node at a time (nginx sends to the other node meanwhile); the gates.
 */
async function moveSwarmApps(ctx: Context, login: string | undefined): Promise<void> {
  const r = rotations.get(ctx)
  const run = swarmRun(ctx)
  Object.assign(run, { finished: false, deployed: false })
  useSecrets(ctx, { ...ctx.secrets, [r.name]: r.value })
  await swarmOnSecrets(ctx, login, true)
  if (ctx.dryRun) return
  await swarmGates(ctx)
  r.serving = { login, secrets: ctx.secrets }
  // Recorded live (the unused Docker secrets, the old password's, are removed).
  await recordSwarmRelease(ctx, 'live', `rotate-secret ${r.name}`)
  run.deployed = false
}

export async function saveNewValue(ctx: Context): Promise<string> {
  const r = rotations.get(ctx)
  if (ctx.dryRun) return r.home.kind === 'environment' ? '' : r.home.file
  const file = await saveSecret(ctx.env, r.name, r.value)
  r.saved = true
  ctx.auditEvent(`rotate-secret: ${r.name} changed; the new value saved in ${file}`)
  return file
}

/** Postgres only: the env's user takes the new password, then the apps move back to it. */
export async function backToMainRole(ctx: Context): Promise<void> {
  if (!ctx.dryRun)
    await dataHost(ctx).exec(psqlFromStdin(data(ctx)), {
      stdin: setPasswordSql(DB_USER, scramVerifier(rotations.get(ctx).value)),
      echo: false,
    })
  print(`      Postgres: ${DB_USER} logs in with the new password`)
  await moveApps(ctx, undefined)
}

/** The old password opens nothing any more. */
export async function revokeOld(ctx: Context): Promise<void> {
  const r = rotations.get(ctx)
  if (ctx.dryRun) return
  await onDataService(ctx, retireTwinSql(DB_USER), redisAclInput(r.value, '<', r.old))
  print(
    r.name === 'POSTGRES_PASSWORD'
      ? `      Postgres: ${twinRole(DB_USER)} can no longer log in; the old password was ${DB_USER}'s, now replaced`
      : '      Redis: only the new password opens it',
  )
}

export function rotation(ctx: Context): Rotation {
  return rotations.get(ctx)
}

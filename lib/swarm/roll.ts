import { imageDigests } from '../commands/registry.ts'
import {
  parseStackServices,
  rolledBack,
  secretsPrune,
  stackDeploy,
  stackServicesProbe,
  stackSettled,
  taskSecretsProbe,
  tasksMissingSecrets,
  updateMessages,
} from '../commands/swarm.ts'
import { pruneImages } from '../deploy/prune-images.ts'
import { appendReleaseOn, releaseRecord } from '../deploy/record.ts'
import { recordedSource, runSource } from '../deploy/source.ts'
import { gateFailures } from '../deploy/switch.ts'
import { SERVICES, type Service } from '../env/load.ts'
import { notifyOnEnd } from '../notify/run-outcome.ts'
import { EXIT, RunbookError } from '../report/errors.ts'
import { print, printErr } from '../report/output.ts'
import type { Context } from '../run/runbook.ts'
import type { ReleaseRecord } from '../stack/releases.ts'
import { secretKey, stackFiles, stackVars } from './files.ts'
import { swarmHosts } from './hosts.ts'
import { maybeSwarmRun, swarmRun } from './state.ts'

const POLL_MS = 2000

/** `docker stack deploy` of `images` on the manager, then wait until every node runs them (or Swarm gave up). */
export async function deployStack(ctx: Context, images: Record<Service, string>): Promise<void> {
  const { manager } = swarmHosts(ctx)
  const run = swarmRun(ctx)
  await manager.upload(stackFiles(ctx.env).vars, stackVars(ctx.env, images, run.secretNames), '0644')
  await runStackDeploy(ctx)
}

/** `docker stack deploy` on the manager, of the stack files and the variables file now there. */
export async function runStackDeploy(ctx: Context): Promise<void> {
  const { manager } = swarmHosts(ctx)
  const files = stackFiles(ctx.env)
  const composeFiles = [
    files.compose,
    files.secrets,
    ...(ctx.env.swarm?.encryptedOverlay ? [files.encrypted] : []),
  ]
  await manager.exec(
    stackDeploy({
      dir: files.dir,
      stack: files.stack,
      files: composeFiles,
      vars: files.vars,
      registry: ctx.env.images.delivery === 'registry',
    }),
    { timeoutS: 300 },
  )
}

/**
 * Waits for the rolling update: one node at a time, each new task healthy before the next. Returns
 * when every node runs `images`; throws when Swarm rolled the update back (a task failed in its
 * monitor window) or paused it, after its rollback finished, so the previous release serves again.
 */
export async function waitForStack(ctx: Context, images: Record<Service, string>): Promise<void> {
  if (ctx.dryRun) return
  const { manager, nodes } = swarmHosts(ctx)
  const files = stackFiles(ctx.env)
  const timeoutS = ctx.env.swarm?.updateTimeoutS ?? 600
  const deadline = Date.now() + timeoutS * 1000
  let last = ''
  for (;;) {
    const services = parseStackServices(
      (await manager.exec(stackServicesProbe(files.stack), { probe: true, echo: false })).stdout,
    )
    const back = rolledBack(services, images)
    if (back.length) {
      const why = (
        await manager.exec(updateMessages(files.stack), { probe: true, echo: false })
      ).stdout.trim()
      throw new SwarmRolledBack(
        back.map((s) => `${s.name}: ${s.update}`).join(', '),
        why,
        back.every((s) => s.update === 'rollback_completed'),
      )
    }
    const { settled, waiting } = stackSettled(services, images, nodes.length)
    if (settled) return
    const now = waiting.join('; ')
    if (now !== last) print(`      waiting: ${now}`)
    last = now
    if (Date.now() > deadline)
      throw new RunbookError(
        `The stack did not settle within swarm.update_timeout_s (${timeoutS} s): ${now}`,
        EXIT.stepFailed,
        `Look at \`docker service ps ${files.stack}_api --no-trunc\` on ${manager.name} for why tasks do not start.`,
      )
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
}

/**
 * Waits until every task of each service that uses the database or Redis holds this run's Docker
 * secrets: a change of secrets alone (rotate-secret) leaves the images as they are, so waitForStack
 * cannot tell the rolling update apart from the release it replaces.
 */
export async function waitForSecrets(ctx: Context): Promise<void> {
  if (ctx.dryRun) return
  const { manager, nodes } = swarmHosts(ctx)
  const run = swarmRun(ctx)
  const files = stackFiles(ctx.env)
  const timeoutS = ctx.env.swarm?.updateTimeoutS ?? 600
  const deadline = Date.now() + timeoutS * 1000
  for (const service of SERVICES) {
    const wanted = ctx.env.services[service].map((d) => run.secretNames[secretKey(d)] ?? '')
    if (wanted.length === 0) continue
    for (;;) {
      const out = await manager.exec(taskSecretsProbe(`${files.stack}_${service}`), {
        probe: true,
        echo: false,
      })
      const missing = tasksMissingSecrets(out.stdout, wanted, nodes.length)
      if (!missing) break
      if (Date.now() > deadline)
        throw new RunbookError(
          `${service} did not move to the new secrets within swarm.update_timeout_s (${timeoutS} s): ${missing}`,
          EXIT.stepFailed,
          `Look at \`docker service ps ${files.stack}_${service} --no-trunc\` on ${manager.name}.`,
        )
      await new Promise((r) => setTimeout(r, POLL_MS))
    }
  }
}

export class SwarmRolledBack extends RunbookError {
  constructor(
    states: string,
    why: string,
    /** Every service is back on its previous spec (else Swarm paused: nodes may differ). */
    readonly complete: boolean,
  ) {
    super(
      complete
        ? `Swarm rolled the update back by itself (${states}):\n${why}`
        : `Swarm paused the update (${states}):\n${why}`,
      EXIT.gateFailed,
      complete
        ? 'The previous release serves again on every node. Look at the new release (docker service logs) before trying again.'
        : 'This run puts the previous release back (see below); check make status, then look at docker service ps on the manager.',
    )
  }
}

/** The rolling update of this run's release; a Swarm rollback is recorded as such. */
export async function rollStack(ctx: Context): Promise<boolean> {
  const run = swarmRun(ctx)
  await deployStack(ctx, run.images)
  run.deployed = true
  try {
    await waitForStack(ctx, run.images)
  } catch (err) {
    if (err instanceof SwarmRolledBack && err.complete) run.swarmRolledBack = true
    throw err
  }
  if (!ctx.dryRun) print(`      every web node runs ${run.release}`)
  return true
}

/** Through nginx on every web node: each domain's health, the API's p95 (the same checks as make health). */
export async function swarmGates(ctx: Context): Promise<boolean> {
  if (ctx.dryRun) return false
  const failures = await gateFailures(ctx, swarmHosts(ctx).nodes)
  if (failures.length === 0) return true
  throw new RunbookError(`Post-deploy gates failed:\n${failures.join('\n')}`, EXIT.gateFailed)
}

/** The release history on every host (each node's status reads it), then unused Docker secrets go. */
export async function recordSwarmRelease(
  ctx: Context,
  outcome: ReleaseRecord['outcome'],
  note?: string,
): Promise<void> {
  const run = swarmRun(ctx)
  const { manager, nodes } = swarmHosts(ctx)
  const digestsOutput = ctx.dryRun
    ? ''
    : (await manager.exec(imageDigests(run.images), { probe: true, echo: false })).stdout
  const record = releaseRecord({
    id: run.release,
    colour: 'swarm',
    images: run.images,
    digestsOutput,
    started: run.started,
    outcome,
    action: run.action,
    previous: run.live?.id ?? null,
    ...(note ? { note } : {}),
    source: recordedSource(run.action, runSource(ctx), run.history, run.release),
  })
  for (const host of ctx.hosts) await appendReleaseOn(host, ctx.env, record)
  if (outcome === 'live') {
    run.finished = true
    await manager.exec(secretsPrune(ctx.env.name, Object.values(run.secretNames)))
    print(`      ${run.release} is live on ${nodes.length} node(s)`)
    // As on one host: after a deploy, every node keeps the images of the newest releases and the
    // rollback target (Swarm's own rollback needs it); a failure is reported, the release is live.
    if (run.action === 'deploy')
      await pruneImages(nodes, ctx.env, run.history, run.release, run.live?.id ?? null).catch((err: Error) =>
        printErr(`      could not remove old images: ${err.message.split('\n')[0]}`),
      )
  }
}

/**
 * However a run ends before it finished (a failed step or gate, SIGINT/SIGTERM): once the stack was
 * told to run the new release, the live release is deployed again, unless Swarm already rolled back.
 * The release is recorded as failed. The lock is released after this (cleanups run in reverse).
 */
export function swarmCleanupOnFailure(ctx: Context): () => Promise<void> {
  return async () => {
    const run = maybeSwarmRun(ctx)
    if (!run || run.finished || ctx.dryRun) return
    if (run.deployed && run.live && !run.swarmRolledBack) {
      printErr(`  putting ${run.live.id} back on every node`)
      try {
        await deployStack(ctx, run.live.images as Record<Service, string>)
        await waitForStack(ctx, run.live.images as Record<Service, string>)
      } catch (err) {
        printErr(`  could not put ${run.live.id} back: ${(err as Error).message.split('\n')[0]}`)
      }
    }
    await recordSwarmRelease(ctx, 'failed').catch((e: Error) => printErr(`  could not record: ${e.message}`))
    printErr(
      `  ${run.release} did not go live; ${run.live ? `${run.live.id} serves` : 'nothing was serving before'}.`,
    )
  }
}

/** The team hears how the run ended, and what serves now. Never fails the run. */
export function notifySwarmOutcome(ctx: Context): void {
  notifyOnEnd(ctx, () => {
    const run = maybeSwarmRun(ctx)
    if (!run) return undefined
    return {
      event: run.action,
      ok: run.finished,
      title: `${run.action} of ${run.release} to ${ctx.env.name}: ${run.finished ? 'success' : 'failed'}`,
      release: run.release,
      durationS: (Date.now() - run.started) / 1000,
      runbook: `docs/runbooks/${run.action}.md`,
      next: [
        run.live
          ? `${run.live.id} serves on every node; check make status ENV=${ctx.env.name}`
          : `nothing was serving before this run; fix the failure and deploy again`,
      ],
    }
  })
}

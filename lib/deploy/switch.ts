import { takeBackup } from '../backup/take.ts'
import {
  allHealthy,
  type Colour,
  colourPorts,
  compose,
  projectContainers,
  projectName,
  projectRunningImages,
  runsExactly,
} from '../commands/compose.ts'
import { writeFileFromStdin } from '../commands/files.ts'
import { idleColourText, parseIdleColour, writeFlag } from '../commands/flag-file.ts'
import { allAnswered, answersNow, smokeCheck } from '../commands/health.ts'
import {
  nginxTestAndReload,
  renderUpstreams,
  setColourFlag,
  switchToColour,
  UPSTREAMS_PREDATE_FLAG,
  upstreamsPath,
  waitServedBy,
} from '../commands/nginx.ts'
import { imageDigests } from '../commands/registry.ts'
import { inBackground, quote } from '../commands/shell.ts'
import { remotePaths } from '../env/host-paths.ts'
import { SERVICES, type Service } from '../env/load.ts'
import { httpChecks, latencyCheck } from '../health/checks.ts'
import { commandFailure, type HostSession } from '../host/session.ts'
import { type CommandError, RunbookError } from '../report/errors.ts'
import { print, printErr } from '../report/output.ts'
import type { Context } from '../run/runbook.ts'
import { colourEnv, DB_NAME, DB_USER, deployFiles, networkName } from '../stack/files.ts'
import { lastLiveOn, type ReleaseRecord } from '../stack/releases.ts'
import { waitHealthy, writeNginxFiles } from './prepare.ts'
import { appendReleaseOn, releaseRecord } from './record.ts'
import { recordedSource, runSource } from './source.ts'
import { maybeState, state } from './state.ts'
import { waitUntil } from './wait.ts'

/**
 * Production: a backup before any migration runs: a full, verified, off-site one (the backup
 * runbook's phases) when the env has a backup: section, else a pg_dump kept on the host. Not on a
 * host where nothing was live yet (its database is empty).
 */
export async function migrate(ctx: Context): Promise<boolean> {
  const s = state(ctx)
  for (const host of ctx.hosts) {
    if (ctx.env.kind === 'production' && !s.live) {
      // A first deploy on this host (a new droplet, make emergency): its database is the empty one
      // this run just started. Backing it up would only put an empty "latest backup" in the store.
      print(`      ${host.name}: nothing was live on this host: no data to back up before migrating`)
    } else if (ctx.env.kind === 'production' && ctx.env.backup) {
      if (ctx.dryRun) print(`  [${host.name}] would take a full backup (make backup) before migrating`)
      else {
        const taken = await takeBackup(ctx, host, `pre-migration ${s.release}`)
        print(
          `      ${host.name}: pre-migration backup ${taken.id} (make restore BACKUP=${taken.id} returns to it)`,
        )
      }
    } else if (ctx.env.kind === 'production') {
      const dump = `${remotePaths(ctx.env).base}/pre-migration-${s.release}.dump`
      const pg = projectContainers(projectName(ctx.env.name, 'data'), 'postgres')
      await host.exec(
        `umask 077; docker exec $(${pg}) pg_dump -Fc -U ${DB_USER} ${DB_NAME} > ${quote(dump)}`,
        { timeoutS: 1800 },
      )
      print(`      ${host.name}: pre-migration backup ${dump} (no backup: section in ${ctx.env.file})`)
    }
    const files = deployFiles(ctx.env)
    await host.exec(
      `docker run --rm --network ${quote(networkName(ctx.env))} --env-file ${quote(files.app.secrets)} ${quote(s.images.api)} migrate`,
      { timeoutS: 900, next: 'The old colour still serves. Fix the migration in the app, release again.' },
    )
  }
  return true
}

function colourCompose(ctx: Context, host: HostSession, colour: Colour, args: string): string {
  const files = deployFiles(ctx.env)
  const flavour = state(ctx).flavour.get(host) ?? 'v2'
  return compose(
    flavour,
    files.dir,
    projectName(ctx.env.name, colour),
    files.app.compose,
    files.colourVars(colour),
    args,
  )
}

/**
 * A rollback inside the instant-rollback window: the target colour still runs exactly the release's
 * images on every host (deploy kept it running), so nothing is delivered or started. Asked once per run.
 * A deploy always goes through `compose up` (its files may have changed; Compose keeps what did not).
 */
export async function alreadyRunning(ctx: Context): Promise<boolean> {
  const s = state(ctx)
  if (s.alreadyRunning !== undefined) return s.alreadyRunning
  let all = s.action === 'rollback' && !ctx.dryRun
  let healthy = true
  let answering = true
  for (const host of all ? ctx.hosts : []) {
    // In the same command, whether each service answers on its port now (start's smoke check, when so).
    const out = await host.exec(
      `${projectRunningImages(projectName(ctx.env.name, s.target))}; ${answersNow(colourPorts(s.target), ctx.env.health.path)}`,
      { probe: true, echo: false },
    )
    all = all && runsExactly(out.stdout, s.images)
    healthy = healthy && allHealthy(out.stdout)
    answering = answering && allAnswered(out.stdout, SERVICES)
  }
  s.alreadyRunning = all
  s.alreadyHealthy = all && healthy
  s.alreadyAnswering = s.alreadyHealthy && answering
  return all
}

/** The idle colour with the new images: started, healthy, answering on its own ports. */
export async function startTarget(ctx: Context): Promise<boolean> {
  const s = state(ctx)
  const running = await alreadyRunning(ctx)
  for (const host of ctx.hosts) {
    const project = projectName(ctx.env.name, s.target)
    if (running)
      print(`      ${host.name}: ${s.target} already runs ${s.release} (kept running after the last deploy)`)
    else {
      await host.upload(
        deployFiles(ctx.env).colourVars(s.target),
        colourEnv(ctx.env, s.target, s.images),
        '0644',
      )
      await host.exec(colourCompose(ctx, host, s.target, 'up -d --remove-orphans'), { timeoutS: 600 })
    }
    if (ctx.dryRun) continue
    if (s.alreadyAnswering) {
      // Kept running, healthy, and every service answered on its port a moment ago (alreadyRunning).
      print(`      ${host.name}: ${s.target} healthy, each service answered ${ctx.env.health.path} directly`)
      continue
    }
    // Kept running and seen healthy a moment ago (alreadyRunning): no need to ask Docker again.
    if (!s.alreadyHealthy) await waitHealthy(host, project, ctx.env.health.timeoutS)
    // Every service straight on its port, in one command (a short retry each, never one shot).
    const ports = colourPorts(s.target)
    await host.exec(
      SERVICES.map((svc) => smokeCheck(ports[svc], ctx.env.health.path, ctx.env.health.timeoutS)).join(
        ' && ',
      ),
      {
        probe: true,
        echo: false,
        timeoutS: 3 * ctx.env.health.timeoutS + 10,
        next: `The old colour still serves. The failing port is above (${SERVICES.map((svc) => `${svc} ${ports[svc]}`).join(', ')}): make logs ENV=${ctx.env.name} SERVICE=<service> says why its health fails.`,
      },
    )
    print(`      ${host.name}: ${s.target} healthy, each service answers ${ctx.env.health.path} directly`)
  }
  return true
}

/**
 * Points nginx at `colour`: the flag file nginx reads on every request (no reload, no nginx -t: the
 * configuration does not change), then watched until every domain is served by `colour`, in one
 * command (a rollback's seconds count); asked again from here while it is not. A host whose upstreams
 * an older deploy wrote (no flag file yet) gets today's sites and upstreams, checked and reloaded.
 */
export async function pointNginxAt(ctx: Context, colour: Colour): Promise<void> {
  const domains = SERVICES.map((service) => ctx.env.domains[service])
  const watch = waitServedBy(domains, ctx.env.health.path, colour, 5)
  const upstreams = renderUpstreams(ctx.env.name, colour)
  const writeUpstreams = writeFileFromStdin(upstreamsPath(ctx.env.name), '0644')
  for (const host of ctx.hosts) {
    const command = `${switchToColour(ctx.env.name, colour, writeUpstreams)} && { ${watch}; }`
    let out = await host.exec(command, { stdin: upstreams, echo: false, timeoutS: 60, allowFail: true })
    if (out.code === UPSTREAMS_PREDATE_FLAG) {
      print(`      ${host.name}: nginx's files predate the colour flag: written anew, checked and reloaded`)
      await writeNginxFiles(ctx, host, upstreams)
      out = await host.exec(
        `${setColourFlag(ctx.env.name, colour)} && ${nginxTestAndReload} && { ${watch}; }`,
        {
          echo: false,
          timeoutS: 60,
        },
      )
    } else if (out.code !== 0)
      // allowFail only to see the status above: anything else fails the step as exec would have.
      throw commandFailure(host.name, command, out.code, out)
    if (!ctx.dryRun && notServedBy(out.stdout, domains, colour))
      await waitForColour(ctx, host, domains, colour)
  }
}

/** From waitServedBy's lines: each domain not (yet) served by `colour`, with its answer; '' when all are. */
export function notServedBy(out: string, domains: string[], colour: Colour): string {
  const wrong: string[] = []
  for (const domain of domains) {
    const line = out.split('\n').find((l) => l.startsWith(`${domain} `)) ?? ''
    const [, code, served, ...why] = line.trim().split(' ')
    if (served !== colour)
      wrong.push(
        `${domain}: ${code || '000'} from ${served || 'nobody'}${why.join(' ').trim() ? ` (${why.join(' ').trim()})` : ''}`,
      )
  }
  return wrong.join(', ')
}

/**
 * nginx reloads asynchronously: wait until every domain is really served by `colour`. 30 s, each
 * probe 3 s at most: on a loaded 2-core host a first deploy's new containers and nginx's new workers
 * were seen to need more than the 15 s (two 5-s probes) this allowed before.
 */
async function waitForColour(
  ctx: Context,
  host: HostSession,
  domains: string[],
  colour: Colour,
): Promise<void> {
  await waitUntil(
    `nginx serving ${colour}`,
    30,
    async () => {
      // Polled on the host for up to 5 s a time; asked again from here until the 30 s are up.
      const out = await host.exec(waitServedBy(domains, ctx.env.health.path, colour, 5), {
        probe: true,
        echo: false,
        timeoutS: 30,
      })
      return notServedBy(out.stdout, domains, colour) || true
    },
    150,
  )
}

export async function switchTraffic(ctx: Context): Promise<boolean> {
  const s = state(ctx)
  // Before the command: should it fail after writing the file (nginx -t, the wait), the cleanup
  // points nginx back at the colour that served.
  s.switched = true
  await pointNginxAt(ctx, s.target)
  return true
}

/**
 * The gates through nginx on `hosts`, with each domain's Host: the same checks as `make health`
 * (lib/health/checks.ts): every domain's health, then the API's p95 over a burst. The failures, if any.
 */
export async function gateFailures(ctx: Context, hosts: HostSession[]): Promise<string[]> {
  const failures: string[] = []
  for (const host of hosts) {
    // At once (a rollback's seconds count): every domain's answer and the API's burst.
    const [checks, latency] = await Promise.all([httpChecks(host, ctx.env), latencyCheck(host, ctx.env)])
    for (const r of checks) if (!r.ok) failures.push(`${r.target} answered ${r.value}`)
    print(`      ${latency.target}: ${latency.value}`)
    if (!latency.ok) failures.push(`${latency.target}: ${latency.value} (gate: ${latency.limit})`)
  }
  return failures
}

/** Through nginx, with each domain's Host: health answers, and the API's p95 over a burst is under 2 s. */
export async function postDeployGates(ctx: Context): Promise<boolean> {
  if (ctx.dryRun) return false
  const s = state(ctx)
  // The images' digests for the record, read while the gates run (a rollback's seconds count).
  const digests = Promise.all(ctx.hosts.map(async (h) => [h, await readDigests(h, s.images)] as const))
  const [failures] = await Promise.all([gateFailures(ctx, ctx.hosts), digests])
  s.digests = new Map(await digests)
  if (failures.length === 0) return true
  if (s.live) {
    printErr(`      gates failed: switching back to ${s.live}`)
    await pointNginxAt(ctx, s.live)
    s.switched = false
  }
  throw new RunbookError(
    `Post-deploy gates failed, switched back to ${s.live ?? 'nothing'}:\n${failures.join('\n')}`,
    4,
  )
}

/**
 * The release recorded as live on every host; then the colour that served before retired. After a
 * deploy it keeps running for rollback.instant_window_min (a rollback inside the window is an nginx
 * switch; the host's watchdog stops it when the window ends). Otherwise (a rollback, or a window of 0)
 * it is stopped after the drain period, not removed: a rollback starts it again in seconds. Where no
 * drain is waited for here, the retirement rides in the record's command (a rollback's seconds count).
 * The run is finished once the record is written, whatever the retirement does.
 */
export async function recordLive(ctx: Context, note?: string, drainS = 2): Promise<void> {
  const s = state(ctx)
  const retire = retirement(ctx, drainS)
  const withRecord = retire && retire.drainS === 0 ? retire : undefined
  const retireFailed = await recordRelease(ctx, 'live', note, withRecord?.command)
  s.finished = true
  if (retireFailed) throw retireFailed
  if (retire && !withRecord) {
    if (!ctx.dryRun) await new Promise((r) => setTimeout(r, retire.drainS * 1000))
    for (const host of ctx.hosts) await host.exec(retire.command(host), { timeoutS: 120, echo: false })
  }
  if (retire) print(`      ${retire.said}`)
}

interface Retirement {
  /** Seconds waited here before `command` runs; 0: it runs in the record's own command. */
  drainS: number
  command(host: HostSession): string
  said: string
}

function retirement(ctx: Context, drainS: number): Retirement | undefined {
  const s = state(ctx)
  if (!s.live || s.live === s.target) return undefined
  const old = s.live
  const idleFile = remotePaths(ctx.env).idleColour
  const windowMin = ctx.env.rollback.instantWindowMin
  const previous = lastLiveOn(s.history, old)?.id ?? 'the previous release'
  if (s.removeOld)
    // It holds a password that is about to stop working: after the drain, gone (a rollback creates it anew).
    return {
      drainS,
      command: (host) => `${colourCompose(ctx, host, old, 'rm -f -s')} && rm -f ${quote(idleFile)}`,
      said: `${old} (${previous}) stopped and removed after a ${drainS} s drain`,
    }
  if (s.action === 'deploy' && windowMin > 0) {
    const until = new Date(Date.now() + windowMin * 60_000)
    return {
      drainS: 0,
      command: () => writeFlag(idleFile, idleColourText(old, previous, until)),
      said: `${old} (${previous}) keeps running until ${until.toISOString()} (rollback.instant_window_min: ${windowMin}): a rollback before then is an nginx switch`,
    }
  }
  if (s.action === 'rollback') {
    // The release rolled away from stops after the drain, in the background on the host (unless a
    // runbook took the lock meanwhile); the file lets the watchdog stop it should that be lost.
    const until = new Date(Date.now() + drainS * 1000)
    return {
      drainS: 0,
      command: (host) =>
        `${writeFlag(idleFile, idleColourText(old, previous, until))} && { ${inBackground(colourCompose(ctx, host, old, 'stop'), drainS, remotePaths(ctx.env).lock)} }`,
      said: `${old} (${previous}) stops after a ${drainS} s drain, in the background on the host`,
    }
  }
  return {
    drainS,
    command: (host) => `${colourCompose(ctx, host, old, 'stop')} && rm -f ${quote(idleFile)}`,
    said: `${old} (${previous}) stopped after a ${drainS} s drain (kept for rollback)`,
  }
}

/**
 * The run's record on every host (image digests as read while the gates ran, when they were). `andThen`:
 * a command run in the record's own command once the record is written; its failure is returned (the
 * record stands), the record's own is thrown.
 */
export async function recordRelease(
  ctx: Context,
  outcome: ReleaseRecord['outcome'],
  note?: string,
  andThen?: (host: HostSession) => string,
): Promise<CommandError | undefined> {
  const s = state(ctx)
  let failed: CommandError | undefined
  for (const host of ctx.hosts) {
    const digestsOutput = ctx.dryRun ? '' : (s.digests?.get(host) ?? (await readDigests(host, s.images)))
    const record = releaseRecord({
      id: s.release,
      colour: s.target,
      images: s.images,
      digestsOutput,
      started: s.started,
      outcome,
      action: s.action,
      previous: [...s.history].reverse().find((r) => r.outcome === 'live')?.id ?? null,
      ...(note ? { note } : {}),
      source: recordedSource(s.action, runSource(ctx), s.history, s.release),
    })
    failed ??= await appendReleaseOn(host, ctx.env, record, andThen?.(host))
  }
  return failed
}

async function readDigests(host: HostSession, images: Record<string, string>): Promise<string> {
  return (await host.exec(imageDigests(images), { probe: true, echo: false })).stdout
}

/**
 * However a deploy ends before it finished (a failed step, a failed gate, SIGINT/SIGTERM): traffic
 * goes back to the colour that served before, the half-started colour is stopped, the release is
 * recorded as failed. The lock is released after this (cleanups run in reverse order).
 */
export function cleanupOnFailure(ctx: Context): () => Promise<void> {
  return async () => {
    const s = maybeState(ctx)
    if (!s || s.finished || ctx.dryRun) return
    if (s.switched && s.live) await pointNginxAt(ctx, s.live)
    for (const host of ctx.hosts) {
      await host.exec(colourCompose(ctx, host, s.target, 'stop'), {
        timeoutS: 120,
        allowFail: true,
        echo: false,
      })
    }
    await restoreRollbackTarget(ctx)
    await recordRelease(ctx, 'failed')
    printErr(
      `  ${s.release} did not go live; ${s.live ? `${s.live} keeps serving` : 'nothing was serving before'}.`,
    )
  }
}

/**
 * The idle colour held the previous release's stopped containers (the rollback target) before this
 * deploy replaced them: they are created again from that release's images, not started, so a
 * rollback finds them as a successful deploy leaves them. Best effort: rollback recreates them anyway.
 */
async function restoreRollbackTarget(ctx: Context): Promise<void> {
  const s = state(ctx)
  const before = lastLiveOn(s.history, s.target)
  if (!before || before.id === s.release) return
  const images = before.images as Record<Service, string>
  if (!SERVICES.every((svc) => images[svc])) return
  for (const host of ctx.hosts) {
    // Inside the instant-rollback window the previous release was running: it runs again.
    const idle = parseIdleColour(
      (
        await host.exec(`cat ${quote(remotePaths(ctx.env).idleColour)} 2>/dev/null || true`, {
          probe: true,
          echo: false,
        })
      ).stdout,
    )
    const running = idle?.colour === s.target && idle.release === before.id && Date.now() < idle.untilMs
    await host.upload(deployFiles(ctx.env).colourVars(s.target), colourEnv(ctx.env, s.target, images), '0644')
    const up = running ? 'up -d --remove-orphans' : 'up --no-start --remove-orphans'
    const out = await host.exec(colourCompose(ctx, host, s.target, up), {
      timeoutS: 120,
      allowFail: true,
      echo: false,
    })
    const how = running
      ? `running: instant rollback until ${new Date(idle.untilMs).toISOString()}`
      : 'stopped'
    printErr(
      out.code === 0
        ? `  ${host.name}: ${s.target} holds ${before.id} again (${how}), as rollback expects it.`
        : `  ${host.name}: could not put ${before.id}'s containers back on ${s.target} (rollback will create them).`,
    )
  }
}

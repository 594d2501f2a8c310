import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import {
  compose,
  composeFlavourProbe,
  imageIds,
  networkEnsure,
  parseProjectHealth,
  projectHealth,
} from '../commands/compose.ts'
import { readReleases } from '../commands/health.ts'
import {
  DEFAULT_TLS_PATH,
  defaultTlsPlan,
  liveColourProbe,
  nginxTestAndReload,
  renderDefaultTls,
  renderSites,
  renderUpstreams,
  setColourFlag,
  sitesPath,
  upstreamsPath,
} from '../commands/nginx.ts'
import {
  manifestProbe,
  parseManifestProbe,
  parsePinnedProbe,
  pinnedProbe,
  pullImages,
  pullPinned,
  registryStdin as registryPasswordStdin,
} from '../commands/registry.ts'
import { heldPasswordsProbe, passwordsDiffering } from '../commands/rotate.ts'
import { quote } from '../commands/shell.ts'
import {
  certificatePresent,
  originPullTrustPresent,
  placeholderCertificate,
  placeholderOriginPullTrust,
  tlsDirCheck,
  tlsDirEnsure,
} from '../commands/tls.ts'
import { ZONE_ORIGIN_PULL } from '../env/edge.ts'
import { remotePaths } from '../env/host-paths.ts'
import { APP_SECRETS } from '../env/needs.ts'
import { SERVICES } from '../env/terms.ts'
import { tlsPaths } from '../env/tls-paths.ts'
import { ensure, ensureFile } from '../host/converge.ts'
import { runLocalSync, streamLocal } from '../host/local-run.ts'
import type { HostSession } from '../host/session.ts'
import { EXIT, PreconditionError, RunbookError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import type { Context } from '../run/runbook.ts'
import { recreateOldRedis, writeDataFiles } from '../stack/data-files.ts'
import { appEnv, composeFile, deployFiles, networkName, serviceEnv } from '../stack/files.ts'
import { parseReleases, type ReleaseRecord } from '../stack/releases.ts'
import { pinnedRefs, runPins } from './pins.ts'
import { runSource, staleRunProblem } from './source.ts'
import { imageRefs, setState, state } from './state.ts'
import { waitUntil } from './wait.ts'

const MIN_FREE_KB = 2 * 1024 * 1024

/** Everything that can be known before changing anything, checked together and reported together. */
export async function checkPreconditions(
  ctx: Context,
  release: string,
  action: 'deploy' | 'rollback',
): Promise<void> {
  const images = imageRefs(ctx.env, release)
  // A rollback's images are on the host already (a deploy put them there; kept as the rollback target):
  // this machine's copies matter only if the host lost them, and delivery then says which is missing.
  const problems = await releaseProblems(ctx, images, action === 'rollback')
  const flavour = new Map()
  let history = parseReleases('')
  let live: 'blue' | 'green' | null = null
  for (const host of ctx.hosts) {
    // Independent reads: asked at once, over the one SSH connection (a rollback's seconds count).
    const probe = (command: string) => host.exec(command, { probe: true, echo: false })
    const [flavourOut, disk, releasesOut, colourOut, stale] = await Promise.all([
      probe(composeFlavourProbe),
      diskProblem(ctx, host),
      probe(readReleases(remotePaths(ctx.env).releases)),
      probe(liveColourProbe(ctx.env.name)),
      action === 'deploy' ? stalePasswords(ctx, host) : undefined,
    ])
    if (stale) problems.push(stale)
    const f = flavourOut.stdout.trim()
    if (f !== 'v1' && f !== 'v2')
      problems.push(`${host.name}: no Docker Compose: run make setup-server ENV=${ctx.env.name}`)
    else flavour.set(host, f)
    if (disk) problems.push(disk)
    history = parseReleases(releasesOut.stdout)
    if (action === 'deploy') {
      const older = olderOverNewer(ctx, history, release)
      if (older) problems.push(`${host.name}: ${older}`)
    }
    const colour = colourOut.stdout.trim()
    live = colour === 'blue' || colour === 'green' ? colour : null
    // A rollback never rewrites nginx's sites: only a deploy can bring a profile that conflicts.
    if (action === 'deploy' && ctx.env.edge) {
      const plan = defaultTlsPlan(await readDefaultTls(host), ctx.env.name, ctx.env.edge.tlsProfile)
      if (plan.action === 'conflict') problems.push(`${host.name}: ${plan.problem}`)
    }
  }
  stopIfProblems(`${action} ${release}`, problems)
  const target = live === 'blue' ? 'green' : 'blue'
  setState(ctx, {
    release,
    images,
    flavour,
    history,
    live,
    target,
    started: Date.now(),
    switched: false,
    finished: false,
    action,
  })
  print(`      release ${release}: live colour ${live ?? 'none'}, deploying to ${target}`)
}

/**
 * A deploy of an older commit than the live one (COMMITTED_AT= against the live record's): the problem,
 * or undefined. ALLOW_OLDER=1 lets it through, audited.
 */
export function olderOverNewer(ctx: Context, history: ReleaseRecord[], release: string): string | undefined {
  const problem = staleRunProblem(history, release, runSource(ctx), ctx.env.name)
  if (!problem || ctx.args['allow-older'] !== true) return problem
  print(`      ALLOW_OLDER=1: ${problem.split(':')[0]}; deploying it anyway (audited)`)
  ctx.auditEvent(`older commit deployed over a newer one (ALLOW_OLDER=1): ${problem.split(':')[0]}`)
  return undefined
}

/**
 * A deploy writes this run's data passwords into the host's data.env, but Postgres and Redis keep the
 * ones they were given: a value that differs from the host's (a GitHub secret left behind after
 * make rotate-secret, a secrets file edited by hand) would break the apps, health and backups.
 * Compared by salted hash; a host without data.env yet (a new one) has nothing to compare.
 */
async function stalePasswords(ctx: Context, host: HostSession): Promise<string | undefined> {
  const salt = randomBytes(16).toString('hex')
  const names = ['POSTGRES_PASSWORD', 'REDIS_PASSWORD'] as const
  const out = await host.exec(heldPasswordsProbe(remotePaths(ctx.env).dataEnv, names, salt), {
    probe: true,
    echo: false,
  })
  const differing = passwordsDiffering(
    out.stdout,
    Object.fromEntries(names.map((n) => [n, ctx.secrets[n]])),
    salt,
  )
  if (differing.length === 0) return undefined
  return `${host.name}: ${differing.join(' and ')} given to this run ${differing.length > 1 ? 'differ' : 'differs'} from what the data services use (the host's data.env): it was rotated (make rotate-secret) or edited by hand. Give this run the current value (CI: update the GitHub environment's secret from env/${ctx.env.name}.secrets.age); a password changes only through make rotate-secret ENV=${ctx.env.name} NAME=...`
}

/**
 * What a release needs wherever it runs (one host or a swarm), before any host is asked: its images
 * (here for ssh delivery, in the registry otherwise), the data passwords, nginx's sites from the edge:
 * section, and the origin-pull CA.
 */
export async function releaseProblems(
  ctx: Context,
  images: Record<string, string>,
  onHostAlready = false,
): Promise<string[]> {
  const problems: string[] = []
  if (ctx.env.images.delivery !== 'ssh') problems.push(...(await registryProblems(ctx, images)))
  else if (!onHostAlready) problems.push(...localImageProblems(ctx, images))
  for (const secret of APP_SECRETS)
    if (!ctx.secrets[secret])
      problems.push(`secret ${secret} is not declared under secrets: in ${ctx.env.file}`)
  try {
    renderSites(ctx.env) // an edge: value nginx cannot take (a CSP with a `"`) stops here, not mid-deploy
  } catch (err) {
    problems.push((err as Error).message)
  }
  const ca = ctx.env.edge?.originPullCa
  if (ca && ca !== ZONE_ORIGIN_PULL && !readFileSync(ca, 'utf8').includes('-----BEGIN CERTIFICATE-----'))
    problems.push(
      `edge.origin_pull_ca: ${ca} is not a PEM certificate (the CA of the origin-pull client certificate)`,
    )
  return problems
}

/** Every problem found, together; nothing was changed. */
export function stopIfProblems(what: string, problems: string[]): void {
  if (problems.length)
    throw new PreconditionError(
      `${what} cannot start:\n  - ${problems.join('\n  - ')}`,
      'Nothing was changed.',
    )
}

/** The env's directory on `host` exists and has 2 GB free; else what is wrong, and what to do. */
export async function diskProblem(ctx: Context, host: HostSession): Promise<string | undefined> {
  const base = remotePaths(ctx.env).base
  const df = await host.exec(`df -Pk ${base} | awk 'NR==2 {print $4}'`, {
    probe: true,
    allowFail: true,
    echo: false,
  })
  const free = Number(df.stdout.trim())
  if (df.code !== 0) return `${host.name}: ${base} is missing: run make setup-server ENV=${ctx.env.name}`
  if (free < MIN_FREE_KB)
    return `${host.name}: only ${(free / 1048576).toFixed(1)} GB free; need 2 GB (docker system prune?)`
  return undefined
}

/** delivery: ssh streams the images from this machine: each must be here. */
export function localImageProblems(ctx: Context, images: Record<string, string>): string[] {
  const refs = [...Object.values(images), ctx.env.images.postgres, ctx.env.images.redis]
  // One docker call when all are here (the usual case; each call blocks this process ~0.15 s); else
  // one per image, to name the missing ones.
  if (runLocalSync(['docker', 'image', 'inspect', '-f', '{{.Id}}', ...refs]).code === 0) return []
  return refs
    .filter((ref) => runLocalSync(['docker', 'image', 'inspect', '-f', '{{.Id}}', ref]).code !== 0)
    .map(
      (ref) =>
        `image ${ref} is not on this machine (delivery: ssh streams it from here); build or pull it first`,
    )
}

/** Streams missing images from this machine (ssh delivery) or pulls them on the host (registry). */
export async function deliverImages(ctx: Context): Promise<boolean> {
  const s = state(ctx)
  let changed = false
  // The data images too: with ssh delivery the host never pulls anything from a registry.
  const refs = [...Object.values(s.images), ctx.env.images.postgres, ctx.env.images.redis]
  for (const host of ctx.hosts) changed = (await deliverTo(ctx, host, refs)) || changed
  return changed
}

/** The images `refs` on one host: those it lacks streamed from here (ssh) or pulled by it (registry). */
export async function deliverTo(ctx: Context, host: HostSession, refs: string[]): Promise<boolean> {
  const pinned = pinnedPairs(ctx, refs)
  const pinnedChanged = pinned.length ? await deliverPinned(ctx, host, pinned) : false
  const rest = refs.filter((r) => !pinned.some(([ref]) => ref === r))
  return (await deliverByRef(ctx, host, rest)) || pinnedChanged
}

/** The run's pinned images among `refs` (DIGESTS=, or a rollback's recorded digests): [repo:release, repo@sha256]. */
function pinnedPairs(ctx: Context, refs: string[]): Array<[string, string]> {
  const p = runPins(ctx)
  if (!p || !ctx.release || ctx.env.images.delivery !== 'registry') return []
  const map = pinnedRefs(imageRefs(ctx.env, ctx.release), p)
  return refs.flatMap((r) => {
    const d = map.get(r)
    return d ? [[r, d] as [string, string]] : []
  })
}

/**
 * Pinned images: what the host holds under the release's tag must be the pinned digest; otherwise it
 * pulls by digest and tags it, then checks again (a registry that answered another image fails here).
 */
async function deliverPinned(
  ctx: Context,
  host: HostSession,
  pairs: Array<[string, string]>,
): Promise<boolean> {
  const probe = async () =>
    parsePinnedProbe((await host.exec(pinnedProbe(pairs), { probe: true, echo: false })).stdout)
  const wrong = await probe()
  if (wrong.length === 0) return false
  const pull = pairs.filter(([ref]) => wrong.includes(ref))
  await host.exec(pullPinned(pull, ctx.env.images.registry), {
    timeoutS: 900,
    ...registryStdin(ctx),
    next: `Check that ${ctx.env.images.registry?.server ?? 'the registry'} is reachable from ${host.name} and holds ${pull.map(([, d]) => d).join(', ')}.`,
  })
  if (ctx.dryRun) return true
  const still = await probe()
  if (still.length)
    throw new RunbookError(
      `${host.name}: after pulling by digest, ${still.join(', ')} is not the pinned image`,
      EXIT.stepFailed,
      'Nothing switched; the live colour still serves. Check the digests given (DIGESTS=) against the image build, then run again.',
    )
  return true
}

async function deliverByRef(ctx: Context, host: HostSession, refs: string[]): Promise<boolean> {
  if (refs.length === 0) return false
  const onHost = (await host.exec(imageIds(refs), { probe: true, echo: false })).stdout
  const missing = refs.filter((r) => {
    const line = onHost.split('\n').find((l) => l.startsWith(`${r} `))
    if (!line || line.endsWith(' missing')) return true
    // ssh delivery: the host's copy must be this machine's image; registry: a tag the host holds is
    // the release's (tags are commit SHAs), and is not pulled again (no Docker Hub call per deploy).
    const want = localImageId(ctx, r)
    return want !== undefined && line.split(' ')[1] !== want
  })
  if (missing.length === 0) return false
  if (ctx.env.images.delivery === 'registry') {
    await host.exec(pullImages(missing, ctx.env.images.registry), {
      timeoutS: 900,
      ...registryStdin(ctx),
      next: `Check that ${ctx.env.images.registry?.server ?? 'the registry'} is reachable from ${host.name} and the token can read the images.`,
    })
    return true
  }
  print(`      ${host.name}: streaming ${missing.join(' ')}`)
  if (ctx.dryRun) return true
  const save = streamLocal(['docker', 'save', ...missing])
  const loaded = await host
    .exec('docker load -q', { stdin: save.stdout, timeoutS: 900, echo: false })
    .catch((e: Error) => e)
  const saved = await save.done
  // A failed save also fails the load: say the cause, not only its echo on the host.
  if (saved.code !== 0)
    throw new RunbookError(
      `docker save ${missing.join(' ')} failed on this machine (exit ${saved.code}): ${saved.stderr.trim().split('\n').pop()}`,
      EXIT.stepFailed,
    )
  if (loaded instanceof Error) throw loaded
  return true
}

/** Every host can see the release's images in the registry (asked with the host's own network and login). */
export async function registryProblems(ctx: Context, images: Record<string, string>): Promise<string[]> {
  // Pinned images are looked up by their digest (the tag may have moved; the digest cannot).
  const p = runPins(ctx)
  const pinned = p ? pinnedRefs(images as ReturnType<typeof imageRefs>, p) : new Map<string, string>()
  const refs = [
    ...Object.values(images).map((r) => pinned.get(r) ?? r),
    ctx.env.images.postgres,
    ctx.env.images.redis,
  ]
  const problems: string[] = []
  for (const host of ctx.hosts) {
    const probe = await host.exec(manifestProbe(refs, ctx.env.images.registry), {
      probe: true,
      allowFail: true,
      echo: false,
      ...registryStdin(ctx),
    })
    if (probe.code !== 0) {
      problems.push(
        `${host.name}: cannot log in to ${ctx.env.images.registry?.server}: ${probe.stderr.trim().split('\n').pop()} (check ${ctx.env.images.registry?.passwordSecret})`,
      )
      continue
    }
    for (const ref of parseManifestProbe(probe.stdout))
      problems.push(
        `${host.name}: image ${ref} is not in the registry (was it built and pushed for this release?)`,
      )
  }
  return problems
}

/** The registry password goes on stdin, never on a command line. */
function registryStdin(ctx: Context): { stdin?: string } {
  return registryPasswordStdin(ctx.env.images.registry, ctx.secrets)
}

function localImageId(ctx: Context, ref: string): string | undefined {
  if (ctx.env.images.delivery !== 'ssh') return undefined
  const inspect = runLocalSync(['docker', 'image', 'inspect', '-f', '{{.Id}}', ref])
  if (inspect.code !== 0) throw new Error(`docker image inspect ${ref} failed here: ${inspect.stderr.trim()}`)
  return inspect.stdout.trim()
}

/** Compose files, variables and secrets (0600), the network, nginx's server blocks. */
export async function writeConfig(ctx: Context): Promise<boolean> {
  const files = deployFiles(ctx.env)
  const login = state(ctx).dbLogin
  let changed = false
  for (const host of ctx.hosts) {
    const user = ctx.env.ssh.user
    const owner = `${user}:${user}`
    for (const file of [
      { path: files.data.compose, content: composeFile('data'), mode: '0644' },
      { path: files.app.compose, content: composeFile('app'), mode: '0644' },
      { path: files.app.secrets, content: appEnv(ctx.secrets, login), mode: '0600' },
      ...SERVICES.map((svc) => ({
        path: files.app.serviceEnv(svc),
        content: serviceEnv(ctx.env, svc, ctx.secrets, login),
        mode: '0600',
      })),
    ]) {
      changed = (await ensureFile(host, { ...file, owner })) || changed
    }
    changed = (await writeDataFiles(host, ctx.env, ctx.secrets)) || changed
    await host.exec(networkEnsure(networkName(ctx.env)))
    // nginx: the server blocks, TLS files, both colours' upstreams; the flag file says the colour that
    // serves now (the switch step moves it). Reloaded here when one changed: the switch does not reload.
    const serving = state(ctx).live ?? state(ctx).target
    const nginx = await writeNginxFiles(ctx, host, renderUpstreams(ctx.env.name, serving))
    if (nginx) {
      await host.exec(`${setColourFlag(ctx.env.name, serving)} && ${nginxTestAndReload}`)
      print(`      ${host.name}: nginx's files changed: checked and reloaded (${serving} serves)`)
    }
    changed ||= nginx
  }
  return changed
}

/** A host's nginx files for the env: server blocks, the edge's files, `upstreams`. Whether one changed. */
export async function writeNginxFiles(ctx: Context, host: HostSession, upstreams: string): Promise<boolean> {
  const owner = `${ctx.env.ssh.user}:${ctx.env.ssh.user}`
  const file = (path: string, content: string) => ensureFile(host, { path, content, mode: '0644', owner })
  let changed = await file(sitesPath(ctx.env.name), renderSites(ctx.env))
  if (ctx.env.edge) changed = (await writeEdgeFiles(ctx, host)) || changed
  return (await file(upstreamsPath(ctx.env.name), upstreams)) || changed
}

async function readDefaultTls(host: HostSession): Promise<string> {
  return (await host.exec(`cat ${quote(DEFAULT_TLS_PATH)} 2>/dev/null || true`, { probe: true, echo: false }))
    .stdout
}

/**
 * What the sites' 443 servers need before nginx reloads: the TLS directory (deploy's, 0700), a
 * certificate (a placeholder made on the host until the dns runbook installs the origin certificate),
 * the origin-pull CA, and port 443's default server (one per host, with the env's TLS profile).
 */
export async function writeEdgeFiles(ctx: Context, host: HostSession): Promise<boolean> {
  const edge = ctx.env.edge
  if (!edge) return false
  const user = ctx.env.ssh.user
  const owner = `${user}:${user}`
  const paths = tlsPaths(ctx.env.name)
  const dir = await ensure(host, tlsDirCheck(ctx.env.name, user), tlsDirEnsure(ctx.env.name, user))
  const placeholder = await ensure(host, certificatePresent(ctx.env.name), placeholderCertificate(ctx.env))
  if (edge.originPulls === 'on' && edge.http === 'serve')
    print(
      `      note: edge.origin_pulls is on but edge.http is serve: port 80 serves without a client certificate (use redirect)`,
    )
  if (placeholder)
    print(
      `      ${host.name}: no origin certificate yet: a self-signed placeholder (make dns ENV=${ctx.env.name} installs the real one)`,
    )
  const ca =
    edge.originPullCa === ZONE_ORIGIN_PULL
      ? await ensure(
          host,
          originPullTrustPresent(ctx.env.name, edge.zone),
          placeholderOriginPullTrust(ctx.env),
        )
      : await ensureFile(host, {
          path: paths.originPullCa,
          content: readFileSync(edge.originPullCa, 'utf8'),
          mode: '0644',
          owner,
        })
  if (ca && edge.originPulls === 'on' && edge.originPullCa === ZONE_ORIGIN_PULL)
    print(
      `      ${host.name}: the zone's origin-pull certificate is not here yet: Cloudflare's requests get 403 until make dns ENV=${ctx.env.name} APPLY=1 installs it`,
    )
  let defaultServer = false
  const plan = defaultTlsPlan(await readDefaultTls(host), ctx.env.name, edge.tlsProfile)
  if (plan.action === 'conflict') throw new PreconditionError(`${host.name}: ${plan.problem}`)
  if (plan.action === 'write')
    defaultServer = await ensureFile(host, {
      path: DEFAULT_TLS_PATH,
      content: renderDefaultTls(ctx.env.name, edge.tlsProfile),
      mode: '0644',
      owner,
    })
  return dir || placeholder || ca || defaultServer
}

/** Postgres and Redis in their own project: started if needed, never recreated by an app deploy. */
export async function dataServices(ctx: Context): Promise<boolean> {
  const files = deployFiles(ctx.env)
  for (const host of ctx.hosts) {
    const flavour = state(ctx).flavour.get(host) ?? 'v2'
    const run = (args: string) =>
      host.exec(compose(flavour, files.dir, files.data.project, files.data.compose, files.data.vars, args), {
        timeoutS: 600,
      })
    await run('up -d --no-recreate')
    await recreateOldRedis(host, files.data.project, run)
    if (ctx.dryRun) continue
    await waitHealthy(host, files.data.project, ctx.env.health.timeoutS * 2)
  }
  return false
}

export async function waitHealthy(host: HostSession, project: string, timeoutS: number): Promise<void> {
  await waitUntil(`${project} healthy`, timeoutS, async () => {
    const services = parseProjectHealth(
      (await host.exec(projectHealth(project), { probe: true, echo: false })).stdout,
    )
    const bad = services.filter(
      (s) => s.state !== 'running' || (s.health !== 'healthy' && s.health !== 'none'),
    )
    if (services.length && bad.length === 0) return true
    return bad.map((s) => `${s.service} ${s.state}/${s.health}`).join(', ') || 'no containers'
  })
}

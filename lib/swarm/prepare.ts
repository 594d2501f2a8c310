import { takeBackup } from '../backup/take.ts'
import { compose, composeFlavourProbe, networkEnsure, projectContainers } from '../commands/compose.ts'
import { readReleases } from '../commands/health.ts'
import { nginxTestAndReload } from '../commands/nginx.ts'
import { quote } from '../commands/shell.ts'
import {
  nodeList,
  parseNodeList,
  parseSwarmState,
  secretEnsure,
  swarmStateProbe,
  WEB_LABEL,
} from '../commands/swarm.ts'
import {
  deliverTo,
  diskProblem,
  olderOverNewer,
  releaseProblems,
  stopIfProblems,
  waitHealthy,
  writeNginxFiles,
} from '../deploy/prepare.ts'
import { imageRefs } from '../deploy/state.ts'
import { remotePaths } from '../env/host-paths.ts'
import { ensureFile } from '../host/converge.ts'
import type { HostSession } from '../host/session.ts'
import { print } from '../report/output.ts'
import type { Context } from '../run/runbook.ts'
import { recreateOldRedis, writeDataFiles } from '../stack/data-files.ts'
import { composeFile, DB_NAME, DB_USER, deployFiles, networkName } from '../stack/files.ts'
import { liveRelease, parseReleases } from '../stack/releases.ts'
import {
  composeText,
  connectionStrings,
  dataAddressVar,
  migrateEnv,
  nodeUpstreams,
  secretName,
  stackFiles,
  stackSecretsFile,
} from './files.ts'
import { swarmHosts } from './hosts.ts'
import { setSwarmRun, swarmRun } from './state.ts'

/** Everything that can be known before changing anything, on every host, reported together. */
export async function swarmPreconditions(
  ctx: Context,
  release: string,
  action: 'deploy' | 'rollback',
): Promise<void> {
  const { manager, nodes, data } = swarmHosts(ctx)
  const images = imageRefs(ctx.env, release)
  const problems = await releaseProblems(ctx, images)
  const setup = `make setup-server ENV=${ctx.env.name}`
  const swarmNodes = parseNodeList(
    (await manager.exec(nodeList, { probe: true, allowFail: true, echo: false })).stdout,
  )
  for (const node of nodes) {
    const st = parseSwarmState((await node.exec(swarmStateProbe, { probe: true, echo: false })).stdout)
    const known = swarmNodes.find((n) => n.id === st.nodeId)
    if (st.state !== 'active')
      problems.push(`${node.name}: not in the swarm (state ${st.state}): run ${setup}`)
    else if (!known) problems.push(`${node.name}: the manager ${manager.name} does not know it: run ${setup}`)
    else if (known.status !== 'ready' || known.availability !== 'active')
      problems.push(
        `${node.name}: swarm node is ${known.status}/${known.availability} (docker node ls on ${manager.name})`,
      )
    else if (known.labels[WEB_LABEL] !== 'true')
      problems.push(`${node.name}: no ${WEB_LABEL} label: run ${setup}`)
  }
  for (const host of [data, ...nodes]) {
    const disk = await diskProblem(ctx, host)
    if (disk) problems.push(disk)
  }
  const flavour = (await data.exec(composeFlavourProbe, { probe: true, echo: false })).stdout.trim()
  if (flavour !== 'v1' && flavour !== 'v2') problems.push(`${data.name}: no Docker Compose: run ${setup}`)
  stopIfProblems(`${action} ${release}`, problems)
  const history = parseReleases(
    (await manager.exec(readReleases(remotePaths(ctx.env).releases), { probe: true, echo: false })).stdout,
  )
  const live = liveRelease(history)
  const older = action === 'deploy' ? olderOverNewer(ctx, history, release) : undefined
  stopIfProblems(`${action} ${release}`, older ? [`${manager.name}: ${older}`] : [])
  setSwarmRun(ctx, {
    release,
    images,
    history,
    live,
    action,
    started: Date.now(),
    deployed: false,
    swarmRolledBack: false,
    finished: false,
    dataWasRunning: false,
    secretNames: {},
  })
  print(
    `      release ${release}: live ${live?.id ?? 'none'}; ${nodes.length} web node(s) (${nodes.map((n) => n.name).join(', ')}), data on ${data.name}`,
  )
}

/** App images to every web node, the data images to the data host. */
export async function deliverSwarmImages(ctx: Context): Promise<boolean> {
  const { nodes, data } = swarmHosts(ctx)
  const run = swarmRun(ctx)
  let changed = false
  for (const node of nodes) changed = (await deliverTo(ctx, node, Object.values(run.images))) || changed
  changed = (await deliverTo(ctx, data, [ctx.env.images.postgres, ctx.env.images.redis])) || changed
  return changed
}

/** The data host's compose files; the manager's stack files; every web node's nginx (checked, reloaded). */
export async function writeSwarmConfig(ctx: Context): Promise<boolean> {
  const { manager, nodes, data } = swarmHosts(ctx)
  const owner = `${ctx.env.ssh.user}:${ctx.env.ssh.user}`
  const files = deployFiles(ctx.env)
  const stack = stackFiles(ctx.env)
  const urls = connectionStrings(data.host, ctx.secrets, swarmRun(ctx).login)
  let changed = false
  const write = async (host: HostSession, path: string, content: string, mode = '0644') =>
    (changed = (await ensureFile(host, { path, content, mode, owner })) || changed)
  await write(data, files.data.compose, composeFile('data'))
  await write(data, stack.dataPublished, composeText('data-published'))
  changed = (await writeDataFiles(data, ctx.env, ctx.secrets, dataAddressVar(data.host))) || changed
  await write(manager, stack.compose, composeText('stack'))
  await write(manager, stack.encrypted, composeText('stack-encrypted'))
  await write(manager, stack.secrets, stackSecretsFile(ctx.env))
  await write(manager, stack.migrateEnv, migrateEnv(urls), '0600')
  const web = nodes.map((n) => n.host)
  for (const node of nodes) {
    const nginx = await writeNginxFiles(ctx, node, nodeUpstreams(ctx.env, node.host, web))
    if (nginx) {
      await node.exec(nginxTestAndReload)
      print(`      ${node.name}: nginx sends to its own tasks, then to ${web.length - 1} other node(s)`)
    }
    changed ||= nginx
  }
  return changed
}

/** Postgres and Redis on the data host, their ports on its private address; never recreated. */
export async function swarmDataServices(ctx: Context): Promise<boolean> {
  const { data } = swarmHosts(ctx)
  const files = deployFiles(ctx.env)
  const flavour = (await data.exec(composeFlavourProbe, { probe: true, echo: false })).stdout.trim()
  const pg = await data.exec(projectContainers(files.data.project, 'postgres'), { probe: true, echo: false })
  swarmRun(ctx).dataWasRunning = pg.stdout.trim() !== ''
  await data.exec(networkEnsure(networkName(ctx.env)))
  const run = (args: string) =>
    data.exec(
      compose(
        flavour === 'v1' ? 'v1' : 'v2',
        files.dir,
        files.data.project,
        [files.data.compose, stackFiles(ctx.env).dataPublished],
        files.data.vars,
        args,
      ),
      { timeoutS: 600 },
    )
  await run('up -d --no-recreate')
  await recreateOldRedis(data, files.data.project, run)
  if (!ctx.dryRun) await waitHealthy(data, files.data.project, ctx.env.health.timeoutS * 2)
  return false
}

/** The api's connection strings as Docker secrets (named by a hash of their value, never the value). */
export async function swarmSecrets(ctx: Context): Promise<boolean> {
  const { manager, data } = swarmHosts(ctx)
  const run = swarmRun(ctx)
  for (const [key, value] of Object.entries(connectionStrings(data.host, ctx.secrets, run.login))) {
    const name = secretName(ctx.env.name, key, value)
    run.secretNames[key] = name
    await manager.exec(secretEnsure(name, ctx.env.name), { stdin: value, echo: false })
  }
  print(`      secrets: ${Object.values(run.secretNames).join(', ')}`)
  return true
}

/**
 * Production: a verified backup (from the data host) before any migration; then the new api image
 * migrates as a one-off container on the manager. Releases must work on the schema before and after.
 */
export async function swarmMigrate(ctx: Context): Promise<boolean> {
  const { manager, data } = swarmHosts(ctx)
  const run = swarmRun(ctx)
  if (ctx.env.kind === 'production' && !(run.live && run.dataWasRunning))
    // A first deploy, or a new data host (its database is the empty one this run started): backing it
    // up would only put an empty "latest backup" in the store.
    print(`      ${data.name}: no live data yet: nothing to back up before migrating`)
  else if (ctx.env.kind === 'production' && ctx.env.backup) {
    if (ctx.dryRun) print(`  [${data.name}] would take a full backup (make backup) before migrating`)
    else {
      const taken = await takeBackup(ctx, data, `pre-migration ${run.release}`)
      print(`      pre-migration backup ${taken.id} (make restore BACKUP=${taken.id} returns to it)`)
    }
  } else if (ctx.env.kind === 'production') {
    const dump = `${remotePaths(ctx.env).base}/pre-migration-${run.release}.dump`
    const pg = projectContainers(deployFiles(ctx.env).data.project, 'postgres')
    await data.exec(`umask 077; docker exec $(${pg}) pg_dump -Fc -U ${DB_USER} ${DB_NAME} > ${quote(dump)}`, {
      timeoutS: 1800,
    })
  }
  await manager.exec(
    `docker run --rm --env-file ${quote(stackFiles(ctx.env).migrateEnv)} ${quote(run.images.api)} migrate`,
    {
      timeoutS: 900,
      next: `${run.live?.id ?? 'Nothing'} still serves. Fix the migration in the app, release again.`,
    },
  )
  return true
}

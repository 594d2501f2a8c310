/**
 * deploy — a release goes live with zero downtime (blue/green behind nginx).
 *
 * When: CI on every merge to the env's branch (staging from `staging`, production from `main`), or by hand.
 * Changes: images on the host, the idle colour's containers, migrations, nginx's upstreams, the release history.
 *   Postgres and Redis run in their own project and are never recreated.
 * Abort: Ctrl-C at any time: the lock is released and the colour that served before keeps serving
 *   (if traffic had already moved, it is moved back).
 * On a swarm env: a rolling update of the stack, node by node (see the swarm steps below).
 * On-call page: docs/runbooks/deploy.md
 */
import { execFileSync } from 'node:child_process'
import { notifyOutcome } from '../lib/deploy/finish.ts'
import { checkPreconditions, dataServices, writeConfig } from '../lib/deploy/prepare.ts'
import {
  deliver,
  gates,
  recordAndRetire,
  startIdleColour,
  switchNginx,
  takeLock,
} from '../lib/deploy/steps.ts'
import { migrate } from '../lib/deploy/switch.ts'
import { InputError } from '../lib/report/errors.ts'
import { stringArg } from '../lib/run/cli.ts'
import { type Context, isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import {
  deliverSwarmImages,
  swarmDataServices,
  swarmMigrate,
  swarmPreconditions,
  writeSwarmConfig,
} from '../lib/swarm/prepare.ts'
import { notifySwarmOutcome } from '../lib/swarm/roll.ts'
import {
  rollingUpdate,
  swarmGatesStep,
  swarmLock,
  swarmRecord,
  swarmSecretsStep,
} from '../lib/swarm/steps.ts'

const RELEASE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

const options: RunbookSpec['options'] = [
  {
    name: 'release',
    makeVar: 'RELEASE',
    value: true,
    help: 'the release to deploy: the app git SHA (the image tag)',
  },
  {
    name: 'branch',
    makeVar: 'BRANCH',
    value: true,
    help: 'the branch the release comes from (default: GITHUB_REF_NAME, else git)',
  },
  {
    name: 'allow-branch',
    makeVar: 'ALLOW_BRANCH=1',
    help: "deploy from another branch than the env's (audited)",
  },
]

/** The release argument and the branch rule, the same on one host and on a swarm. */
function releaseToDeploy(ctx: Context): string {
  const release = stringArg(ctx.args, 'release')
  if (!release || !RELEASE.test(release))
    throw new InputError('RELEASE=<sha> is required: the image tag to deploy (letters, digits, . _ -)')
  checkBranch(ctx.env.branch, stringArg(ctx.args, 'branch'), ctx.args['allow-branch'] === true)
  ctx.release = release
  return release
}

/**
 * On a swarm env (a swarm: section): a rolling update of the stack, one web node at a time. Swarm
 * itself rolls back a release whose tasks fail their health check; the gates through every node's
 * nginx, a failure or Ctrl-C after the update put the previous release back. Data on the data host.
 */
const swarmDeploy: RunbookSpec = {
  name: 'deploy',
  mutates: true,
  options,
  steps: [
    {
      title: 'Preconditions: release, branch rule, images, every node in the swarm, disk, Compose',
      next: 'Nothing was changed. Fix what is listed, then run the same command again.',
      async run(ctx) {
        await swarmPreconditions(ctx, releaseToDeploy(ctx), 'deploy')
        ctx.onCleanup(notifySwarmOutcome(ctx))
        return 'ok'
      },
    },
    swarmLock('deploy'),
    {
      title: 'Deliver the images: the app to every web node, Postgres and Redis to the data host',
      run: async (ctx) => ((await deliverSwarmImages(ctx)) ? 'changed' : 'ok'),
    },
    {
      title: 'Write the stack and data files, variables (0600), nginx on every web node (nginx -t, reload)',
      run: async (ctx) => ((await writeSwarmConfig(ctx)) ? 'changed' : 'ok'),
    },
    {
      title: 'Postgres and Redis up on the data host (own project, never recreated)',
      run: async (ctx) => ((await swarmDataServices(ctx)) ? 'changed' : 'ok'),
    },
    swarmSecretsStep,
    {
      title: 'Migrations from the new api image on the manager (production: backup first)',
      next: 'The previous release still serves; nothing was updated. Fix the migration and release again.',
      run: async (ctx) => ((await swarmMigrate(ctx)) ? 'changed' : 'ok'),
    },
    rollingUpdate(
      'The previous release serves. Look at the new tasks: docker service ps / docker service logs on the manager.',
    ),
    swarmGatesStep(
      'The previous release was put back on every node. Look at the new release before trying again.',
    ),
    swarmRecord(),
  ],
}

export const deploy: RunbookSpec = {
  name: 'deploy',
  mutates: true,
  options,
  swarm: swarmDeploy,
  steps: [
    {
      title: 'Preconditions: release, branch rule, images, hosts, disk, Compose',
      next: 'Nothing was changed. Fix what is listed, then run the same command again.',
      async run(ctx) {
        await checkPreconditions(ctx, releaseToDeploy(ctx), 'deploy')
        ctx.onCleanup(notifyOutcome(ctx))
        return 'ok'
      },
    },
    takeLock('deploy'),
    deliver('Deliver the images to the host'),
    {
      title: 'Write compose files, variables, secrets (0600), nginx server blocks',
      run: async (ctx) => ((await writeConfig(ctx)) ? 'changed' : 'ok'),
    },
    {
      title: 'Postgres and Redis up (own project, never recreated)',
      run: async (ctx) => ((await dataServices(ctx)) ? 'changed' : 'ok'),
    },
    {
      title: 'Migrations from the new api image (production: pg_dump first)',
      next: 'The old colour still serves; nothing switched. Fix the migration and release again.',
      run: async (ctx) => ((await migrate(ctx)) ? 'changed' : 'ok'),
    },
    startIdleColour(
      'Start the idle colour with the new images; wait until healthy; smoke-check it directly',
      'The old colour still serves; nothing switched. Look at the new containers: docker logs, docker inspect.',
    ),
    switchNginx,
    gates('Traffic was switched back to the previous colour. Look at the new release before trying again.'),
    recordAndRetire(),
  ],
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
  try {
    return execFileSync('git', ['rev-parse', '--abbrev-ref', 'HEAD'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim()
  } catch {
    return undefined
  }
}

if (isMain(import.meta.url)) await main(deploy)

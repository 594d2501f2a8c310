/**
 * deploy — a release goes live with zero downtime (blue/green behind nginx).
 *
 * When: CI on every merge to the env's branch (staging from `staging`, production from `main`), or by hand.
 * Changes: images on the host, the idle colour's containers, migrations, nginx's upstreams, the release history.
 *   Production first runs the release's migrations on a masked copy of the live database (dropped after).
 *   Postgres and Redis run in their own project and are never recreated.
 * Abort: Ctrl-C at any time: the lock is released and the colour that served before keeps serving
 *   (if traffic had already moved, it is moved back).
 * On a swarm env: a rolling update of the stack, node by node, in place of blue/green (lib/swarm/strategy.ts).
 * On-call page: docs/runbooks/deploy.md
 */

import { checkPromotion } from '../lib/deploy/promote.ts'
import { rehearseStep } from '../lib/deploy/rehearse.ts'
import {
  deliverStep,
  gatesStep,
  lockStep,
  markReleaseStep,
  NOTHING_CHANGED,
  recordStep,
  startStep,
  switchStep,
} from '../lib/release/steps.ts'
import { bySetup, releaseStrategy } from '../lib/release/strategy.ts'
import { releaseToDeploy } from '../lib/release/target.ts'
import { changedIf, isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'

export const deploy: RunbookSpec = {
  name: 'deploy',
  mutates: true,
  // Production backs up before migrating: the store and the backup key too.
  needs: (env, args) => [
    'ssh',
    'app',
    'registry',
    'notify:deploy',
    // error_tracking: the release and a deploy marker at the Sentry-compatible service
    'error-tracking',
    // promote_from (production): staging's checker key reads what went live there.
    ...(env.promoteFrom && args['allow-unstaged'] !== true ? (['promote'] as const) : []),
    ...(env.kind === 'production' ? (['store', 'backup-key'] as const) : []),
  ],
  options: [
    {
      name: 'release',
      makeVar: 'RELEASE',
      value: true,
      help: 'the release to deploy: the app git SHA (the image tag)',
    },
    {
      name: 'digests',
      makeVar: 'DIGESTS',
      value: true,
      help: "pin the images: site=sha256:...,saas=sha256:...,api=sha256:... (the build's digests; registry delivery)",
    },
    {
      name: 'committed-at',
      makeVar: 'COMMITTED_AT',
      value: true,
      help: "the release's commit time, ISO 8601 (CI: the push's head_commit.timestamp): an older commit than the live one is refused",
    },
    {
      name: 'tree',
      makeVar: 'TREE',
      value: true,
      help: "the release's git tree (CI: head_commit.tree_id): with promote_from, a commit whose tree went live there is promoted",
    },
    {
      name: 'allow-older',
      makeVar: 'ALLOW_OLDER=1',
      help: 'deploy a commit older than the live one (COMMITTED_AT=); audited',
    },
    {
      name: 'branch',
      makeVar: 'BRANCH',
      value: true,
      help: 'the branch the release comes from (default: GITHUB_REF_NAME, else git)',
    },
    {
      name: 'allow-unstaged',
      makeVar: 'ALLOW_UNSTAGED=1',
      help: 'with promote_from: deploy a release that never went live there (audited)',
    },
    {
      name: 'allow-unrehearsed',
      makeVar: 'ALLOW_UNREHEARSED=1',
      help: "production: skip the rehearsal of the release's migrations on a copy of the live data (audited)",
    },
    {
      name: 'allow-branch',
      makeVar: 'ALLOW_BRANCH=1',
      help: "deploy from another branch than the env's (audited)",
    },
  ],
  steps: [
    {
      title:
        'Preconditions: release, branch rule, promotion (live on promote_from), images, hosts (every node in a swarm), disk, Compose',
      next: NOTHING_CHANGED,
      async run(ctx) {
        const release = releaseToDeploy(ctx)
        // promote_from (production): only what went live there, pinned to the digests it ran.
        await checkPromotion(ctx, release)
        await releaseStrategy(ctx).preconditions(ctx, release, 'deploy')
        return 'ok'
      },
    },
    lockStep('deploy'),
    deliverStep(
      "Deliver the images (a swarm: the app to every web node, Postgres and Redis to the data host, the api's connection strings as Docker secrets)",
    ),
    {
      title:
        'Write compose or stack files, variables, secrets (0600), nginx server blocks (nginx -t, reload)',
      run: async (ctx) => changedIf(await releaseStrategy(ctx).writeConfig(ctx)),
    },
    {
      title: 'Postgres and Redis up (own project, on the data host of a swarm; never recreated)',
      run: async (ctx) => changedIf(await releaseStrategy(ctx).dataServices(ctx)),
    },
    rehearseStep,
    {
      title: 'Migrations from the new api image (on the manager of a swarm; production: backup first)',
      next: bySetup(
        'The old colour still serves; nothing switched. Fix the migration and release again.',
        'The previous release still serves; nothing was updated. Fix the migration and release again.',
      ),
      run: async (ctx) => changedIf(await releaseStrategy(ctx).migrate(ctx)),
    },
    startStep(
      'Start the idle colour with the new images; wait until healthy; smoke-check it directly (a swarm: a rolling update, node by node)',
      bySetup(
        'The old colour still serves; nothing switched. Look at the new containers: docker logs, docker inspect.',
        'The previous release serves. Look at the new tasks: docker service ps / docker service logs on the manager.',
      ),
    ),
    switchStep,
    gatesStep(
      'The previous release was put back (traffic switched back). Look at the new release before trying again.',
    ),
    recordStep(),
    markReleaseStep(),
  ],
}

if (isMain(import.meta.url)) await main(deploy)

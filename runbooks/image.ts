/**
 * image — the env's golden image: a DigitalOcean snapshot of a droplet that setup-server set up, so that
 * make emergency's new droplet starts set up (setup-server there is a re-run) and serves again sooner.
 *
 * When: monthly, and after a change to setup-server or its packages (docs/runbooks/emergency.md#golden-images).
 * Changes: creates a builder droplet from droplet.image (tagged ce-image-builder), runs setup-server on it,
 *   removes what belongs to one droplet or holds a secret (host keys, machine id, logs, the watchdog's
 *   config), shuts it down, snapshots it as <name_prefix>-golden-<time>, deletes the builder, then the
 *   golden images beyond the newest droplet.images_keep. It never snapshots a live droplet: that disk holds
 *   customer data (LGPD) and the env's secrets.
 * Abort: Ctrl-C at any time: the builder is deleted on the way out (KEEP_BUILDER=1 leaves it to look at).
 *   A snapshot half made is not listed, so emergency never starts from it.
 * On-call page: docs/runbooks/emergency.md#golden-images
 */
import {
  builderDroplet,
  finishImage,
  imageRun,
  planImage,
  sealBuilder,
  snapshotBuilder,
} from '../lib/emergency/image.ts'
import { runOnHost } from '../lib/emergency/phases.ts'
import { type Context, isMain, main, type RunbookSpec, type Step } from '../lib/run/runbook.ts'
import { setupServer } from './setup-server.ts'

/** A step that changes something at DigitalOcean or on the builder (a dry run only shows it). */
function step(title: string, next: string, run: (ctx: Context) => Promise<void>): Step {
  return {
    title,
    next,
    async run(ctx) {
      await run(ctx)
      return ctx.dryRun ? 'dry-run' : 'changed'
    },
  }
}

export const image: RunbookSpec = {
  name: 'image',
  mutates: true,
  // It connects only to the builder droplet it makes, never to the env's hosts.
  offline: true,
  needs: (env) => [...setupServer.needs(env, {}), 'droplet'],
  options: [
    {
      name: 'keep-builder',
      makeVar: 'KEEP_BUILDER=1',
      help: 'leave the builder droplet running when the run fails or ends (to look at it; delete it by hand)',
    },
  ],
  steps: [
    {
      title: 'Plan: the builder, the image name, the golden images there are and which are deleted after',
      next: 'Nothing was changed. Fix what is said above (the droplet: section, DIGITALOCEAN_TOKEN) and run again.',
      run: async (ctx) => {
        await planImage(ctx)
        return 'ok'
      },
    },
    step(
      'A builder droplet from droplet.image, its host key pinned',
      'The builder is deleted on the way out. Run make image again.',
      builderDroplet,
    ),
    step(
      'setup-server on the builder',
      'The builder is deleted on the way out. Fix what setup-server said above (KEEP_BUILDER=1 to look at it), then run make image again.',
      (ctx) =>
        runOnHost(
          ctx,
          imageRun.get(ctx).builder,
          'the builder droplet',
          setupServer,
          [],
          'Run make image again.',
        ),
    ),
    step(
      'Seal: host keys, machine id, logs, root keys, Docker state and the secret-bearing configs removed',
      'The builder is deleted on the way out. Run make image again.',
      sealBuilder,
    ),
    step(
      'Shut the builder down, snapshot it, wait until the image is listed',
      'The builder is deleted on the way out. A snapshot still in progress shows in the console (Images > Snapshots); run make image again.',
      snapshotBuilder,
    ),
    step(
      'Delete the builder and the golden images beyond droplet.images_keep',
      'The new image is made. Delete what is left in the DigitalOcean console (Droplets tagged ce-image-builder, Images > Snapshots).',
      finishImage,
    ),
  ],
}

if (isMain(import.meta.url)) await main(image)

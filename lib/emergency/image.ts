/**
 * make image's steps: a builder droplet from droplet.image, set up by setup-server, shed of what belongs
 * to one droplet (lib/commands/image.ts), shut down and snapshotted as the env's newest golden image;
 * the builder deleted, older golden images beyond droplet.images_keep deleted.
 */
import { sealForImage } from '../commands/image.ts'
import type { DropletConfig } from '../env/droplet.ts'
import { readPrivateKey } from '../env/secrets.ts'
import { InputError, PreconditionError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import { perRun } from '../run/per-run.ts'
import { type Context, connectHost } from '../run/runbook.ts'
import { type DoClient, doClient } from './digitalocean.ts'
import {
  ageDays,
  deleteDroplet,
  deleteSnapshot,
  dropletAction,
  goldenName,
  goldenOf,
  goldenPrefix,
  goldenToPrune,
  listSnapshots,
  type Snapshot,
  waitAction,
} from './do-images.ts'
import { createPinned, untilActive, waitForSsh } from './droplet.ts'
import { planTable } from './plan.ts'
import type { NewHost } from './state.ts'

export const BUILDER_TAG = 'ce-image-builder'
/** DigitalOcean's snapshot of a small droplet takes minutes; a large disk longer. */
const SNAPSHOT_TIMEOUT_S = 3600

interface ImageRun {
  config: DropletConfig
  client: DoClient
  name: string
  builderName: string
  runTag: string
  startedAt: number
  builder?: NewHost & { dropletId: number }
  builderGone?: boolean
  snapshot?: Snapshot
}

export const imageRun = perRun<ImageRun>('image run')

export async function planImage(ctx: Context): Promise<void> {
  const config = ctx.env.droplet
  if (!config)
    throw new InputError(
      `make image needs a droplet: section in ${ctx.env.file} (region, size, image, ssh_keys)`,
      [],
      'Add it (docs/runbooks/emergency.md#golden-images): the builder droplet and the images emergency uses come from it.',
    )
  const now = new Date()
  const name = goldenName(config, now)
  const stamp = name.slice(goldenPrefix(config).length)
  const r: ImageRun = {
    config,
    client: doClient(config, ctx.secrets),
    name,
    builderName: `${config.namePrefix}-image-${stamp}`,
    runTag: `ce-image-${ctx.env.name}-${stamp}`,
    startedAt: Date.now(),
  }
  imageRun.set(ctx, r)
  const existing = goldenOf(await listSnapshots(r.client), config)
  const pruned = goldenToPrune(
    [...existing, { id: 0, name, createdAt: now.toISOString(), regions: [], sizeGb: 0 }],
    config,
    config.imagesKeep,
  )
  print(
    planTable([
      ['builder', `${r.builderName}: ${config.size} ${config.image} in ${config.region} (${config.apiBase})`],
      ['image', `${name}: setup-server's work, no data, no secret, no host key`],
      [
        'golden images now',
        existing.length ? existing.map((s) => `${s.name} (${ageDays(s)} d)`).join(', ') : '(none)',
      ],
      [
        `kept (images_keep ${config.imagesKeep})`,
        pruned.length ? `deletes afterwards: ${pruned.map((s) => s.name).join(', ')}` : 'all',
      ],
    ]),
  )
}

/** The builder: pinned host key (cloud-init), active, SSH answering; deleted on the way out unless kept. */
export async function builderDroplet(ctx: Context): Promise<void> {
  const r = imageRun.get(ctx)
  if (ctx.dryRun) {
    print(
      `      would POST ${r.config.apiBase}/v2/droplets ${r.builderName} (${r.config.image}, tags ${r.runTag} ${BUILDER_TAG}),`,
    )
    print('      with a host key generated here (cloud-init user_data, not shown), then wait until active')
    return
  }
  const made = await createPinned(
    r.client,
    r.config,
    r.builderName,
    [r.runTag, BUILDER_TAG],
    undefined,
    'make image',
  )
  ctx.onCleanup(() => removeBuilder(ctx, r, made.droplet.id))
  const active = await untilActive(r.client, r.config, made.droplet.id)
  r.builder = {
    name: r.builderName,
    address: active.ip,
    sshPort: 22,
    hostKey: made.fingerprint,
    dropletId: active.id,
  }
  print(`      ${active.name} is active at ${active.ip}; waiting for SSH`)
  await waitForSsh(active.ip, 22, 180)
}

async function removeBuilder(ctx: Context, r: ImageRun, id: number): Promise<void> {
  if (r.builderGone) return
  if (ctx.args['keep-builder'] === true) {
    print(
      `      KEEP_BUILDER=1: the builder droplet ${id} (${r.builderName}) is left running: delete it in the console when done`,
    )
    return
  }
  await deleteDroplet(r.client, id)
  r.builderGone = true
  print(`      the builder droplet ${id} (${r.builderName}) is deleted`)
}

/** Over the admin login (root's is off now): host keys, machine id, logs and the secret-bearing configs go. */
export async function sealBuilder(ctx: Context): Promise<void> {
  const r = imageRun.get(ctx)
  const command = sealForImage(ctx.env.name)
  if (!r.builder) {
    print(`      would run on the builder:\n${command.replace(/^/gm, '        ')}`)
    return
  }
  const host = { ...r.builder, roles: ctx.env.hosts[0]?.roles ?? ['web', 'data'] }
  const session = await connectHost(ctx, host, readPrivateKey(ctx.env, ctx.secrets), 'bootstrap')
  try {
    const out = await session.exec(command)
    if (!out.stdout.includes('sealed'))
      throw new PreconditionError(
        `${r.builderName}: the seal did not finish`,
        'Run make image again (a new builder).',
      )
  } finally {
    session.close()
  }
}

/** Shut down (a consistent disk), then the snapshot: the action waited for, the image found by its name. */
export async function snapshotBuilder(ctx: Context): Promise<void> {
  const r = imageRun.get(ctx)
  if (!r.builder) {
    print(
      `      would shut the builder down, then POST .../actions {type: snapshot, name: ${r.name}} and wait`,
    )
    return
  }
  const id = r.builder.dropletId
  await waitAction(r.client, await dropletAction(r.client, id, { type: 'shutdown' }), 300)
  print(`      ${r.builderName} is off; snapshot ${r.name} started`)
  const t0 = Date.now()
  await waitAction(
    r.client,
    await dropletAction(r.client, id, { type: 'snapshot', name: r.name }),
    SNAPSHOT_TIMEOUT_S,
    5000,
  )
  r.snapshot = (await listSnapshots(r.client)).find((s) => s.name === r.name)
  if (!r.snapshot)
    throw new PreconditionError(
      `the snapshot action finished but no snapshot is named ${r.name}`,
      'Look at Images > Snapshots in the DigitalOcean console, then run make image again.',
    )
  print(
    `      snapshot ${r.name}: image id ${r.snapshot.id}, ${r.snapshot.sizeGb} GB, in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  )
}

/** The builder deleted; older golden images beyond images_keep deleted; the summary line. */
export async function finishImage(ctx: Context): Promise<void> {
  const r = imageRun.get(ctx)
  if (!r.builder || !r.snapshot) {
    print(`      would delete the builder and golden images beyond the newest ${r.config.imagesKeep}`)
    return
  }
  await removeBuilder(ctx, r, r.builder.dropletId)
  const old = goldenToPrune(await listSnapshots(r.client), r.config, r.config.imagesKeep)
  for (const s of old) {
    await deleteSnapshot(r.client, s.id)
    print(`      deleted the older golden image ${s.name} (id ${s.id})`)
  }
  print(
    `image-summary ${JSON.stringify({ name: r.name, id: r.snapshot.id, size_gb: r.snapshot.sizeGb, build_s: Math.round((Date.now() - r.startedAt) / 100) / 10, deleted: old.map((s) => s.name) })}`,
  )
}

import { createConnection } from 'node:net'
import { rotateHostKey } from '../commands/sshd.ts'
import type { DropletConfig } from '../env/droplet.ts'
import { FINGERPRINT } from '../env/fingerprint.ts'
import { readPrivateKey } from '../env/secrets.ts'
import { InputError, PreconditionError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import { stringArg } from '../run/cli.ts'
import { type Context, connectHost } from '../run/runbook.ts'
import {
  createDroplet,
  createRequest,
  type DoClient,
  type DropletInfo,
  doClient,
  dropletsByTag,
  waitActive,
} from './digitalocean.ts'
import { ageDays, goldenImages, goldenPrefix, listSnapshots, type Snapshot } from './do-images.ts'
import { cloudInitUserData, generateHostKey } from './host-key.ts'
import { dropletSummary } from './plan.ts'
import { save, st } from './run.ts'

// The create phase: a droplet made through the API (found again by its tag when a run resumes), or the
// HOST= given by hand; either way SSH answers with the pinned host key before the phase ends.
export async function createPhase(ctx: Context): Promise<void> {
  const s = st(ctx)
  if (s.host) {
    if (ctx.dryRun) print(`      would use ${s.host.address}:${s.host.sshPort}, host key ${s.host.hostKey}`)
    else await waitForSsh(s.host.address, s.host.sshPort, 120)
    return
  }
  const config = ctx.env.droplet
  if (!config) throw new Error('unreachable: plan checked the droplet: section')
  const name = `${config.namePrefix}-${s.runId.slice(-13)}`
  if (ctx.dryRun) {
    print(
      `      would POST ${config.apiBase}/v2/droplets ${name} (${dropletSummary(ctx.env)}, tag ${s.runId}),`,
    )
    print(
      `      from the newest golden image ${goldenPrefix(config)}* (make image) if there is one${ctx.args['base-image'] === true ? ' (not: BASE_IMAGE=1)' : ''}, else ${config.image};`,
    )
    print('      with a host key generated here (cloud-init user_data, not shown), then wait until active')
    return
  }
  const client = doClient(config, ctx.secrets)
  // An interrupted run may have created it already: its tag finds it.
  let droplet = (await dropletsByTag(client, s.runId))[0]
  let hostKey: string | undefined
  if (droplet) {
    print(`      droplet ${droplet.id} (${droplet.name}) was created by the interrupted run: using it`)
    hostKey = droplet.tags.find((t) => t.startsWith(HOSTKEY_TAG))?.slice(HOSTKEY_TAG.length)
  } else {
    const image = ctx.args['base-image'] === true ? undefined : await newestGolden(client, config)
    s.image = image ? image.name : config.image
    const made = await createPinned(client, config, name, [s.runId], image?.id, 'make emergency')
    droplet = made.droplet
    hostKey = made.fingerprint
  }
  if (!hostKey)
    throw new PreconditionError(
      `droplet ${droplet.id} carries no host-key tag, so its host key cannot be pinned`,
      'Destroy it in the DigitalOcean console and run again with RESTART=1.',
    )
  const active = await untilActive(client, config, droplet.id)
  s.host = {
    name: stringArg(ctx.args, 'name') ?? active.name,
    address: active.ip,
    sshPort: 22,
    hostKey: pinOf(hostKey),
    dropletId: active.id,
  }
  save(ctx)
  print(`      ${active.name} is active at ${active.ip}; waiting for SSH`)
  await waitForSsh(active.ip, 22, 180)
  await replaceCloudInitHostKey(ctx)
}

const HOSTKEY_TAG = 'ce-hostkey:'

/** A host-key tag's hex digest (or a fingerprint) as the SHA256:... fingerprint pinned. */
const pinOf = (hostKey: string): string =>
  hostKey.startsWith('SHA256:')
    ? hostKey
    : `SHA256:${Buffer.from(hostKey, 'hex').toString('base64').replace(/=+$/, '')}`

/**
 * The env's newest golden image (make image) in its region, or undefined: then the droplet starts from
 * droplet.image and setup-server installs everything. A token that may not list snapshots does not stop
 * an emergency: it says so and starts from droplet.image.
 */
async function newestGolden(client: DoClient, config: DropletConfig): Promise<Snapshot | undefined> {
  let found: Snapshot | undefined
  try {
    found = goldenImages(await listSnapshots(client), config)[0]
  } catch (err) {
    if (!(err instanceof InputError)) throw err
    print(`      could not list golden images (${err.message}): starting from ${config.image}`)
    return undefined
  }
  if (!found) {
    print(
      `      no golden image ${goldenPrefix(config)}* in ${config.region} (make image makes one): from ${config.image}; setup-server installs everything`,
    )
    return undefined
  }
  const days = ageDays(found)
  print(
    `      from the golden image ${found.name} (id ${found.id}, ${days} day(s) old${days > 35 ? ': stale, setup-server will bring more up to date; run make image after this' : ''})`,
  )
  return found
}

/**
 * Creates a droplet whose SSH host key is generated here and installed by cloud-init (user_data), so the
 * first connection is already pinned; the key's digest rides along as a tag, so a resumed run can pin it.
 */
export async function createPinned(
  client: DoClient,
  config: DropletConfig,
  name: string,
  tags: string[],
  image: string | number | undefined,
  by: string,
): Promise<{ droplet: DropletInfo; fingerprint: string }> {
  const key = generateHostKey(`${name} (${by})`)
  const req = createRequest(config, name, tags[0] ?? name, cloudInitUserData(key), image ?? config.image)
  req.tags.push(
    ...tags.slice(1),
    `${HOSTKEY_TAG}${Buffer.from(key.fingerprint.slice(7), 'base64').toString('hex')}`,
  )
  const droplet = await createDroplet(client, req)
  print(`      droplet ${droplet.id} (${name}) created; host key ${key.fingerprint} (generated here)`)
  return { droplet, fingerprint: key.fingerprint }
}

/** Waits until the droplet is active, printing each status it passes through. */
export async function untilActive(
  client: DoClient,
  config: DropletConfig,
  id: number,
): Promise<DropletInfo & { ip: string }> {
  let last = ''
  return waitActive(client, id, config.activeTimeoutS, 2000, (d) => {
    if (d.status !== last) print(`      droplet ${d.id}: ${d.status}`)
    last = d.status
  })
}

/**
 * The host key went to the droplet in cloud-init's user_data, which the metadata service
 * (169.254.169.254) serves to any process on the droplet for its whole life. Over the first connection,
 * pinned to that key, a new key is made on the droplet; its fingerprint is pinned from then on (the
 * state file, the env-file change of the report). A run killed between the two leaves the old pin:
 * the next run's connection then names the key it met, to compare on the droplet's console.
 */
async function replaceCloudInitHostKey(ctx: Context): Promise<void> {
  const s = st(ctx)
  const h = s.host
  if (!h || h.hostKeyRotated) return
  const host = { name: h.name, address: h.address, sshPort: h.sshPort, hostKey: h.hostKey, roles: [] }
  const session = await connectHost(ctx, host, readPrivateKey(ctx.env, ctx.secrets), 'bootstrap')
  try {
    const out = await session.exec(rotateHostKey(`${h.name} (make emergency, after first login)`), {
      echo: false,
    })
    const fingerprint = out.stdout.trim().split('\n')[0] ?? ''
    if (!FINGERPRINT.test(fingerprint))
      throw new PreconditionError(
        `${h.name}: the new host key's fingerprint came back as "${fingerprint}"`,
        `Read it on the console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run again with HOST=${h.address} HOST_KEY=<it>.`,
      )
    s.host = { ...h, hostKey: fingerprint, hostKeyRotated: true }
    save(ctx)
    print(
      `      host key replaced after the first pinned login (cloud-init's stays in the metadata): ${fingerprint}`,
    )
  } finally {
    session.close()
  }
}

/** Until the host's SSH port answers with an SSH banner (cloud-init installs our key, then sshd starts). */
export async function waitForSsh(address: string, port: number, timeoutS: number): Promise<void> {
  const deadline = Date.now() + timeoutS * 1000
  for (;;) {
    const banner = await new Promise<string>((resolve) => {
      const sock = createConnection({ host: address, port, timeout: 3000 })
      let got = ''
      sock.on('data', (b) => {
        got += b.toString()
        if (got.includes('\n')) sock.destroy()
      })
      sock.on('timeout', () => sock.destroy())
      sock.on('error', () => resolve(''))
      sock.on('close', () => resolve(got))
    })
    if (banner.startsWith('SSH-')) return
    if (Date.now() > deadline)
      throw new PreconditionError(
        `${address}:${port} does not answer SSH after ${timeoutS} s`,
        'Check the droplet in the DigitalOcean console (is it booting? a firewall?), then run again.',
      )
    await new Promise((r) => setTimeout(r, 1000))
  }
}

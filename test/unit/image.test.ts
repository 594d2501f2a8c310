import * as assert from 'uvu/assert'
import { sealForImage } from '../../lib/commands/image.ts'
import {
  createDroplet,
  createRequest,
  doClient,
  getDroplet,
  waitActive,
} from '../../lib/emergency/digitalocean.ts'
import {
  deleteSnapshot,
  dropletAction,
  goldenImages,
  goldenName,
  goldenToPrune,
  listSnapshots,
  type Snapshot,
  waitAction,
} from '../../lib/emergency/do-images.ts'
import type { DropletConfig } from '../../lib/env/droplet.ts'
import { InputError } from '../../lib/report/errors.ts'
import { suite } from '../harness.ts'
import { startDigitalOceanApi } from '../sandbox/cloud/digitalocean-api.ts'

// make image: the golden image's name and choice (pure), what the builder sheds (a string), and the
// DigitalOcean calls against the local stand-in: shutdown, snapshot, a droplet from it, delete.
const test = suite('make image: golden images, the seal, snapshot actions', { timeoutS: 60 })
const TOKEN = 'dop_v1_image0123456789abcdef0123456789abcdef0123456789abcdef012345678'
const PUB = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMkoayiSR6OjDO0KqyFDNGgH9jJGJnz3f1jko/vri05n ana@laptop'

const config = (over: Partial<DropletConfig> = {}): DropletConfig => ({
  tokenSecret: 'DIGITALOCEAN_TOKEN',
  apiBase: 'http://127.0.0.1:1',
  namePrefix: 'ce-production',
  region: 'nyc3',
  size: 's-2vcpu-4gb',
  image: 'debian-12-x64',
  sshKeys: ['512189'],
  tags: ['conciliaextrato'],
  ipv6: false,
  monitoring: true,
  activeTimeoutS: 10,
  imagesKeep: 2,
  ...over,
})

const snap = (id: number, name: string, createdAt: string, regions = ['nyc3']): Snapshot => ({
  id,
  name,
  createdAt,
  regions,
  sizeGb: 2,
})

test('golden names sort by time; the newest in the region is chosen; the oldest beyond keep go', () => {
  assert.is(goldenName(config(), new Date('2026-12-07T04:05:59Z')), 'ce-production-golden-20261207-0405')
  const all = [
    snap(1, 'ce-production-golden-20261101-0300', '2026-11-01T03:00:00Z'),
    snap(2, 'ce-production-golden-20261201-0300', '2026-12-01T03:00:00Z', ['sfo3']),
    snap(3, 'ce-production-golden-20261115-0300', '2026-11-15T03:00:00Z'),
    snap(4, 'ce-staging-golden-20261206-0300', '2026-12-06T03:00:00Z'),
    snap(5, 'web-1-manual', '2026-12-06T04:00:00Z'),
  ]
  // Another env's image, a manual snapshot and one in another region are never chosen.
  assert.equal(
    goldenImages(all, config()).map((s) => s.id),
    [3, 1],
  )
  assert.equal(goldenImages(all, config({ region: 'fra1' })), [])
  // Pruning counts every region of this env's images, and nothing of another env's.
  assert.equal(
    goldenToPrune(all, config(), 2).map((s) => s.id),
    [1],
  )
  assert.equal(goldenToPrune(all, config(), 3), [])
})

test('the seal removes host keys, machine id, logs and the secret-bearing configs, and keeps setup-server work', () => {
  const s = sealForImage('production')
  assert.match(s, /^set -eu\n/)
  for (const part of [
    'rm -f /etc/conciliaextrato/watchdog-production.json /srv/conciliaextrato/production/wal-shipper.json',
    'rm -f /etc/ssh/ssh_host_* /root/.ssh/authorized_keys /var/lib/fail2ban/fail2ban.sqlite3',
    ': > /etc/machine-id',
    'rm -rf /var/lib/docker /var/lib/containerd',
    'cloud-init clean --logs',
    'find /var/log -type f ! -path /var/log/conciliaextrato/audit.log -exec truncate -s 0 {} +',
  ])
    assert.ok(s.includes(part), `missing: ${part}\n${s}`)
  assert.ok(s.trim().endsWith('echo sealed'))
  // Nothing of what setup-server made goes: no user, no package, no unit, no sshd or firewall config.
  assert.not.match(s, /userdel|apt-get (remove|purge)|sshd_config|ufw|systemctl disable|\/etc\/systemd/)
})

test('DigitalOcean: shutdown, snapshot, a droplet from the snapshot in its region only, delete', async () => {
  const api = await startDigitalOceanApi({
    tokens: [TOKEN],
    sshKeys: [{ name: 'oncall', publicKey: PUB }],
    onCreate: async (spec) => ({ ip: `198.51.100.${(spec.id % 200) + 1}` }),
  })
  try {
    const c = doClient(config({ apiBase: api.url }), { DIGITALOCEAN_TOKEN: TOKEN }, 10)
    const keys = [String(api.sshKeys[0]?.id)]
    const builder = await createDroplet(
      c,
      createRequest(config({ apiBase: api.url, sshKeys: keys }), 'ce-production-image-1', 'ce-image-1', ''),
    )
    await waitActive(c, builder.id, 10, 20)
    await waitAction(c, await dropletAction(c, builder.id, { type: 'shutdown' }), 10, 20)
    assert.is((await getDroplet(c, builder.id))?.status, 'off')
    // An off droplet cannot be shut down again: DigitalOcean's 422, an input error naming the call.
    const again = await dropletAction(c, builder.id, { type: 'shutdown' }).catch((e: Error) => e)
    assert.instance(again, InputError)
    assert.match((again as Error).message, `shutdown droplet ${builder.id} (422)`)
    await waitAction(
      c,
      await dropletAction(c, builder.id, { type: 'snapshot', name: 'ce-production-golden-20261207-0405' }),
      10,
      20,
    )
    const [made] = await listSnapshots(c)
    assert.ok(made)
    assert.is(made.name, 'ce-production-golden-20261207-0405')
    assert.equal(made.regions, ['nyc3'])
    assert.equal(goldenImages([made], config()), [made])

    // A droplet from it (by its numeric id), in its region; elsewhere DigitalOcean refuses.
    const fromImage = await createDroplet(
      c,
      createRequest(
        config({ apiBase: api.url, sshKeys: keys }),
        'ce-production-b',
        'ce-emergency-1',
        '',
        made.id,
      ),
    )
    await waitActive(c, fromImage.id, 10, 20)
    const body = api.requests.find(
      (r) =>
        r.method === 'POST' &&
        r.path === '/v2/droplets' &&
        r.status === 202 &&
        (r.body as { name: string }).name === 'ce-production-b',
    )
    assert.is((body?.body as { image?: unknown } | undefined)?.image, made.id)
    const elsewhere = await createDroplet(
      c,
      createRequest(config({ apiBase: api.url, sshKeys: keys, region: 'fra1' }), 'ce-x', 'ce-x', '', made.id),
    ).catch((e: Error) => e)
    assert.instance(elsewhere, InputError)
    assert.match((elsewhere as Error).message, 'is not available in the region fra1')

    await deleteSnapshot(c, made.id)
    assert.equal(await listSnapshots(c), [])
    const gone = await createDroplet(
      c,
      createRequest(config({ apiBase: api.url, sshKeys: keys }), 'ce-y', 'ce-y', '', made.id),
    ).catch((e: Error) => e)
    assert.match((gone as Error).message, 'invalid image')
    assert.equal(api.hookErrors, [])
  } finally {
    await api.idle()
    await api.close()
  }
})

test.run()

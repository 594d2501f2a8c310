/**
 * The emergency drill's world (make drill-emergency and the integration test): a production-like env
 * on sandbox droplet A with data, a deployed release, a backup and its records at the local Cloudflare
 * API; a local DigitalOcean API whose droplets are new sandbox droplets. Droplets are addressed by their
 * container IP on the test's own network (port 22, 80, 443), so the DNS switch is visible as an address.
 */
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { generateBackupKey } from '../../lib/backup/keys.ts'
import { archivedWal } from '../../lib/backup/wal-archive.ts'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { openStore } from '../../lib/store/storage.ts'
import type { BackupStore } from '../../lib/store/store.ts'
import { backup } from '../../runbooks/backup.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { dns } from '../../runbooks/dns.ts'
import { image as imageRunbook } from '../../runbooks/image.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import {
  createTestBed,
  destroyTestBed,
  onDroplet,
  runCaptured,
  s3StoreConfig,
  spawnScript,
  type TestBed,
  writeManagedEnv,
} from '../support/test-bed.ts'
import { type CloudflareApi, startCloudflareApi } from './cloud/cloudflare-api.ts'
import { type DigitalOceanApi, type DropletSpec, startDigitalOceanApi } from './cloud/digitalocean-api.ts'
import { LABEL, startDroplet } from './droplets.ts'
import { sh } from './engine.ts'
import { buildFixtureImages } from './fixtures.ts'
import { buildDropletImage } from './images.ts'
import { S3RVER_SECRETS, type S3Server, startS3Server } from './s3.ts'
import { type Receiver, startReceiver } from './webhook-receiver.ts'

export const DRILL_ENV = 'drill'
export const ZONE = 'conciliaextrato.com'
const DOMAINS = { site: ZONE, saas: `app.${ZONE}`, api: `api.${ZONE}` }
const CF_TOKEN = 'cfDRILL_token_0123456789abcdefghijklmnopqrstuvwxyz'
const DO_TOKEN = 'dop_v1_drill0123456789abcdef0123456789abcdef0123456789abcdef01234567'

export interface Drill {
  bed: TestBed
  /** The droplet image (Debian 12 with systemd and sshd). */
  image: string
  a: SandboxDroplet
  cf: CloudflareApi
  doApi: DigitalOceanApi
  /** Droplets the DigitalOcean stand-in made, by droplet id. */
  made: Map<number, SandboxDroplet>
  /** Rows per table in droplet A's database when the backup was taken, and the backup's id. */
  backup: { id: string; rows: number }
  /** bank_lines's rows when the backup was taken (ids 1..bankLines). */
  bankLines: number
  /** Rows A committed after the backup, whose WAL reached the store before A was lost. */
  walRows: number
  /** The backup store (s3rver on the droplets' gateway: A's WAL shipper reaches it). */
  store: BackupStore
  pg(d: SandboxDroplet, sql: string): Promise<string>
  /** make image's summary when the drill made a golden image (its name, id, size, build time). */
  golden: { name: string; id: number; size_gb: number; build_s: number } | null
  /** The Docker image a DigitalOcean snapshot id stands for here. */
  snapshotTag(id: string): string
  /** The on-call webhook: emergency's notifications arrive here. */
  webhook: Receiver
  /** A/AAAA record contents per name at the local Cloudflare API. */
  records(): Record<string, string[]>
  close(): Promise<void>
}

/**
 * What cloud-init does with the user_data emergency sends: installs the given ed25519 host key and no
 * other (ssh_keys, ssh_deletekeys, ssh_genkeytypes: []), and the account's keys for root.
 */
async function cloudInit(d: SandboxDroplet, spec: DropletSpec): Promise<void> {
  const config = parseYaml(spec.userData ?? '') as {
    ssh_keys?: { ed25519_private?: string; ed25519_public?: string }
  } | null
  const keys = config?.ssh_keys
  if (keys?.ed25519_private && keys.ed25519_public) {
    const script = [
      'set -e',
      'rm -f /etc/ssh/ssh_host_*',
      'umask 077',
      `printf '%s' "$PRIV" > /etc/ssh/ssh_host_ed25519_key`,
      `printf '%s\\n' "$PUB" > /etc/ssh/ssh_host_ed25519_key.pub`,
      'chmod 644 /etc/ssh/ssh_host_ed25519_key.pub',
      'systemctl restart ssh',
    ].join('\n')
    await sh`docker exec -e PRIV=${keys.ed25519_private} -e PUB=${keys.ed25519_public} ${d.container} bash -c ${script}`
  }
  const authorized = spec.sshKeys.map((k) => k.public_key).join('\n')
  await sh({
    input: `${authorized}\n`,
  })`docker exec -i ${d.container} sh -c ${'cat > /root/.ssh/authorized_keys'}`
}

export async function startDrill(opts: {
  rows: number
  /**
   * Grow bank_lines in batches of `rows` until the database is at least this big (make drill-emergency
   * DB_GB=10); without it, bank_lines has `rows` rows.
   */
  minDbBytes?: number
  log?: (line: string) => void
  /** make image after A is set up, so emergency starts from the golden image (default true). */
  golden?: boolean
}): Promise<Drill> {
  const log = opts.log ?? (() => {})
  await buildFixtureImages()
  const image = await buildDropletImage()
  const bed = await createTestBed('emergency', ['web-a'], { image: 'provisioned' })
  const a = bed.droplets[0] as SandboxDroplet
  const made = new Map<number, SandboxDroplet>()
  const snapshots = new Set<string>()
  const snapshotTag = (id: string) => `conciliaextrato-sandbox/snapshot:${bed.group.id}-${id}`
  // A set-up that fails part way removes what it started (else droplet A runs on, loading the machine).
  const undo: Array<() => Promise<unknown>> = []
  try {
    // On the droplets' network gateway: A's WAL shipper (and later B's) reaches the store itself.
    const s3: S3Server = await startS3Server({ buckets: ['ce-backups'], address: bed.gateway })
    undo.push(() => s3.close())
    const storeConfig = s3StoreConfig(s3, 'drill')
    const cf = await startCloudflareApi({
      tokens: [CF_TOKEN],
      zones: [ZONE],
      allowPrivateProxiedTargets: true,
    })
    undo.push(() => cf.close())
    const publicKey = (await sh`cat ${`${bed.keyPath}.pub`}`).stdout.trim()
    const doApi = await startDigitalOceanApi({
      tokens: [DO_TOKEN],
      sshKeys: [{ name: 'oncall', publicKey }],
      // A droplet from a snapshot (make image) starts from the image its snapshot hook committed.
      onCreate: async (spec) => {
        const from = /^\d+$/.test(spec.image) ? snapshotTag(spec.image) : image
        const d = await startDroplet(bed.group, spec.name, from)
        await cloudInit(d, spec)
        made.set(spec.id, d)
        return { ip: d.ip }
      },
      onDelete: async (spec) => {
        const d = made.get(spec.id)
        // Gone from the map too: Docker hands its address to the next droplet (make image's builder's to B).
        made.delete(spec.id)
        if (d) await sh`docker rm -f -v ${d.container}`.nothrow()
      },
      // DigitalOcean's shutdown action is an ACPI power button: systemd powers off, the container stops.
      onPowerOff: async (spec) => {
        const d = made.get(spec.id)
        if (!d) throw new Error(`droplet ${spec.id} is not one this drill made`)
        await sh`docker exec ${d.container} systemctl poweroff`.nothrow()
        const stopped = await sh`timeout 90 docker wait ${d.container}`.nothrow()
        if (stopped.exitCode !== 0) await sh`docker stop -t 10 ${d.container}`
      },
      onSnapshot: async (spec, snap) => {
        const d = made.get(spec.id)
        if (!d) throw new Error(`droplet ${spec.id} is not one this drill made`)
        const tag = snapshotTag(String(snap.id))
        await sh`docker commit ${d.container} ${tag}`
        snapshots.add(tag)
        const bytes = Number((await sh`docker image inspect -f ${'{{.Size}}'} ${tag}`).stdout.trim())
        return { sizeGb: Math.round((bytes / 1024 ** 3) * 100) / 100 }
      },
      onSnapshotDelete: async (snap) => {
        const tag = snapshotTag(String(snap.id))
        await sh`docker rmi ${tag}`.nothrow()
        snapshots.delete(tag)
      },
    })
    undo.push(async () => {
      await doApi.idle().catch(() => {})
      await doApi.close()
    })
    const keyFingerprint = doApi.sshKeys[0]?.fingerprint ?? ''
    const webhook = await startReceiver()
    undo.push(() => webhook.close())
    Object.assign(process.env, {
      CLOUDFLARE_API_TOKEN: CF_TOKEN,
      DIGITALOCEAN_TOKEN: DO_TOKEN,
      BACKUP_KEY: process.env.BACKUP_KEY ?? generateBackupKey(),
      ONCALL_WEBHOOK_URL: `${webhook.url}/hooks/oncall`,
      CE_STATE_DIR: join(bed.envDir, '..', 'state'),
      CE_CACHE_DIR: join(bed.envDir, '..', 'cache'),
      ...S3RVER_SECRETS,
    })
    // kind local (asks for confirmation all the same): a production env's edge needs the sandbox's
    // Cloudflare edge stand-in for its checks through the edge, which the rehearsal brings.
    writeManagedEnv(bed, DRILL_ENV, {
      kind: 'local',
      confirm: true,
      hosts: [{ name: 'web-a', address: a.ip, ssh_port: 22, host_key: a.hostKey }],
      domains: DOMAINS,
      health: { path: '/health', timeout_s: 30 },
      secrets: [
        'POSTGRES_PASSWORD',
        'REDIS_PASSWORD',
        'CLOUDFLARE_API_TOKEN',
        'DIGITALOCEAN_TOKEN',
        'BACKUP_KEY',
        'SPACES_ACCESS_KEY_ID',
        'SPACES_SECRET_ACCESS_KEY',
        'ONCALL_WEBHOOK_URL',
      ],
      notify: [{ name: 'oncall', type: 'json', url_secret: 'ONCALL_WEBHOOK_URL', events: ['emergency'] }],
      edge: { zone: ZONE, api_base: cf.apiBase, origin_pulls: 'optional' },
      backup: {
        store: storeConfig,
        keep: { daily: 7, weekly: 4, monthly: 12 },
      },
      droplet: {
        api_base: doApi.url,
        region: 'nyc3',
        size: 's-2vcpu-4gb',
        image: 'debian-12-x64',
        ssh_keys: [keyFingerprint],
        tags: ['conciliaextrato', 'drill'],
      },
    })
    const step = async (what: string, run: Promise<{ code: number; out: string }>) => {
      const t0 = Date.now()
      const { code, out } = await run
      if (code !== 0) throw new Error(`drill set-up: ${what} failed:\n${out}`)
      log(`  ${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    }
    await step('setup-server on A', runCaptured(setupServer, ['--env', DRILL_ENV, '--yes']))
    await step('deploy v1 on A', runCaptured(deploy, ['--env', DRILL_ENV, '--release', 'v1', '--yes']))
    await step('dns on A', runCaptured(dns, ['--env', DRILL_ENV, '--apply', '--yes']))
    let golden: Drill['golden'] = null
    if (opts.golden !== false) {
      const t0 = Date.now()
      const built = await runCaptured(imageRunbook, ['--env', DRILL_ENV, '--yes'])
      const summary = /image-summary (\{.*\})/.exec(built.out)?.[1]
      if (built.code !== 0 || !summary) throw new Error(`drill set-up: make image failed:\n${built.out}`)
      golden = JSON.parse(summary) as Drill['golden']
      log(
        `  make image (the golden image emergency starts from): ${((Date.now() - t0) / 1000).toFixed(1)} s ${summary}`,
      )
    }

    const pg = (d: SandboxDroplet, sql: string) =>
      onDroplet(
        d,
        `docker exec -i $(docker ps -q --filter label=com.docker.compose.project=ce-${DRILL_ENV}-data --filter label=com.docker.compose.service=postgres) psql -XAtq -v ON_ERROR_STOP=1 -U conciliaextrato -d conciliaextrato -c ${JSON.stringify(sql)}`,
      )
    const lines = (from: number, n: number) =>
      `insert into bank_lines select g, (g * 7 % 100000) / 100.0, md5(g::text) from generate_series(${from}, ${from + n - 1}) g`
    await pg(
      a,
      [
        'create table bank_lines(id bigint primary key, amount numeric(12,2), memo text)',
        lines(1, opts.rows),
      ].join('; '),
    )
    let bankLines = opts.rows
    if (opts.minDbBytes) {
      const t = Date.now()
      const size = async () => Number((await pg(a, 'select pg_database_size(current_database())')).trim())
      while ((await size()) < opts.minDbBytes) {
        await pg(a, lines(bankLines + 1, opts.rows))
        bankLines += opts.rows
      }
      await pg(a, 'checkpoint')
      log(
        `  bank_lines: ${bankLines} rows, the database ${((await size()) / 1024 ** 3).toFixed(2)} GiB, in ${((Date.now() - t) / 1000).toFixed(0)} s`,
      )
    }
    const t0 = Date.now()
    const taken = await runCaptured(backup, ['--env', DRILL_ENV, '--yes'])
    if (taken.code !== 0) throw new Error(`drill set-up: backup failed:\n${taken.out}`)
    const counted = /(\d+) rows; canary (\d{8}T\d{6}Z)/.exec(taken.out)
    if (!counted) throw new Error(`drill set-up: the backup did not report its rows and id:\n${taken.out}`)
    const rows = Number(counted[1])
    const id = counted[2] ?? ''
    log(`  backup ${id} on A (${rows} rows): ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    // Work after the backup: rows only the archived WAL holds. The WAL switched (archive_timeout would
    // within a minute) and the segment seen in the store before A is lost.
    const store = openStore(storeConfig, S3RVER_SECRETS)
    const walRows = Math.max(1, Math.round(opts.rows / 20))
    await pg(a, lines(bankLines + 1, walRows))
    const segment = (await pg(a, 'select pg_walfile_name(pg_switch_wal())')).trim()
    const t1 = Date.now()
    while (!(await archivedWal(store, DRILL_ENV)).some((w) => w.name === segment)) {
      if (Date.now() - t1 > 180_000) throw new Error(`drill set-up: ${segment} was not archived within 180 s`)
      await new Promise((r) => setTimeout(r, 1000))
    }
    log(
      `  ${walRows} rows after the backup; their WAL segment ${segment} archived in ${((Date.now() - t1) / 1000).toFixed(1)} s`,
    )

    const records = () => {
      const out: Record<string, string[]> = {}
      const zone = [...cf.state.zones.values()].find((z) => z.name === ZONE)
      for (const r of zone?.records.values() ?? [])
        if (r.type === 'A' || r.type === 'AAAA') out[r.name] = [...(out[r.name] ?? []), r.content]
      return out
    }
    return {
      bed,
      image,
      a,
      cf,
      doApi,
      made,
      backup: { id, rows },
      bankLines,
      walRows,
      store,
      pg,
      records,
      webhook,
      golden,
      snapshotTag,
      async close() {
        await webhook.close()
        await doApi.idle().catch(() => {})
        await doApi.close()
        await cf.close()
        await s3.close()
        await destroyTestBed(bed)
        for (const tag of snapshots) await sh`docker rmi ${tag}`.nothrow()
      },
    }
  } catch (err) {
    for (const step of undo.reverse()) await step().catch(() => {})
    await destroyTestBed(bed).catch(() => {})
    for (const tag of snapshots) await sh`docker rmi ${tag}`.nothrow()
    throw err
  }
}

/**
 * Droplet A is gone: its container removed, as a droplet that died with its disk. A tombstone takes
 * its address at once (DigitalOcean does not hand a dead droplet's IP to the next one), so the DNS
 * switch to the new droplet shows as a new address.
 */
export async function destroyDroplet(drill: Drill, image: string): Promise<string> {
  const { a, bed } = drill
  await sh`docker rm -f -v ${a.container}`
  await sh`docker run -d --name ${`${a.container}-tombstone`} --label ${`${LABEL}=${bed.group.id}`} --network ${bed.group.network} --entrypoint sleep ${image} infinity`
  return (
    await sh`docker inspect -f ${'{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'} ${`${a.container}-tombstone`}`
  ).stdout.trim()
}

export interface EmergencySummary {
  host: string
  image: string | null
  phases: Record<string, number>
  rows_verified: number
  data_lost: number
  replayed_to: string | null
}

/**
 * `make emergency CREATE=1` as its own process, as the on-call runs it, its output shown: its summary
 * line, its wall time, and droplet B it made. Throws when it fails.
 */
export async function runEmergency(
  drill: Drill,
): Promise<{ summary: EmergencySummary; wallS: number; b: SandboxDroplet }> {
  const t0 = performance.now()
  const run = spawnScript('runbooks/emergency.ts', ['--env', DRILL_ENV, '--create', '--yes'])
  run.child.stdout?.pipe(process.stdout)
  run.child.stderr?.pipe(process.stderr)
  const code = await run.exit
  const wallS = (performance.now() - t0) / 1000
  const line = /emergency-summary (\{.*\})/.exec(run.output())?.[1]
  if (code !== 0 || !line) throw new Error(`make emergency failed (exit ${code})`)
  const summary = JSON.parse(line) as EmergencySummary
  const b = [...drill.made.values()].find((d) => d.ip === summary.host)
  if (!b) throw new Error(`make emergency names ${summary.host}, not a droplet it made`)
  return { summary, wallS, b }
}

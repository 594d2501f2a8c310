import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import * as assert from 'uvu/assert'
import { parse } from 'yaml'
import { generateBackupKey, Keyring } from '../../lib/backup/keys.ts'
import {
  type ArchivedWal,
  archivedWal,
  fetchWalFile,
  parseWalKey,
  segmentSystem,
  shipWalFile,
  walChains,
  walKey,
} from '../../lib/backup/wal-archive.ts'
import { nextStatus, type ShipperStatus, shipPass } from '../../lib/backup/wal-shipper.ts'
import { runShipper } from '../../lib/backup/wal-shipper-main.ts'
import {
  archiveArgs,
  archiveCommand,
  enableSpool,
  parseArchiverState,
  spoolEnabledProbe,
  walShipperConfigContent,
  walShipperService,
} from '../../lib/commands/wal.ts'
import { walShipperResult } from '../../lib/health/checks.ts'
import { IntegrityError } from '../../lib/report/errors.ts'
import { walShipperBundle } from '../../lib/setup/wal-shipper.ts'
import { openStore } from '../../lib/store/storage.ts'
import type { BackupStore } from '../../lib/store/store.ts'
import { suite } from '../harness.ts'
import { S3RVER_SECRETS, type S3Server, startS3Server } from '../sandbox/s3.ts'

const ROOT = resolve(import.meta.dirname, '..', '..')
const SEG = (n: number) => `0000000100000000000000${n.toString(16).toUpperCase().padStart(2, '0')}`
const SYS = 7312345678901234567n
/** A segment as Postgres writes it, as far as the shipper reads: the first page's long header, then data. */
function fakeSegment(size = 300_000, system = SYS): Buffer {
  const b = randomBytes(size)
  b.writeUInt16LE(0xd113, 0) // xlp_magic (PG 16; not checked)
  b.writeUInt16LE(0x0002, 2) // xlp_info: XLP_LONG_HEADER
  b.writeBigUInt64LE(system, 24) // xlp_sysid
  b.writeUInt32LE(size, 32) // xlp_seg_size
  b.writeUInt32LE(8192, 36) // xlp_xlog_blcksz
  return b
}

const commands = suite('WAL archiving: the host commands')

commands('compose/data.yaml starts Postgres with archiveArgs(), and mounts the spool', () => {
  const data = parse(readFileSync(join(ROOT, 'compose/data.yaml'), 'utf8'))
  assert.equal(data.services.postgres.command, archiveArgs())
  assert.ok(data.services.postgres.volumes.includes(`$\{WAL_SPOOL}:/wal-spool`))
  assert.ok(archiveArgs().includes('archive_mode=on'))
  assert.ok(archiveArgs().includes('archive_timeout=30'))
})

commands('archive_command: copy under a temporary name, flush, rename; a no-op without the marker', () => {
  assert.is(
    archiveCommand(),
    'test ! -f /wal-spool/ENABLED || { cp %p /wal-spool/.%f.tmp && sync /wal-spool/.%f.tmp && mv /wal-spool/.%f.tmp /wal-spool/%f; }',
  )
})

commands(
  'enableSpool: inside the Postgres container, as its root, the spool goes to postgres, then the marker',
  () => {
    const c = enableSpool('ce-production-data')
    assert.match(c, 'docker exec -u root $(docker ps -q')
    assert.match(c, 'label=com.docker.compose.project=ce-production-data')
    assert.match(
      c,
      "sh -c 'chown postgres:postgres /wal-spool && chmod 0700 /wal-spool && touch /wal-spool/ENABLED && chown postgres:postgres /wal-spool/ENABLED'",
    )
    assert.not.match(c, 'sudo')
    assert.match(spoolEnabledProbe('ce-production-data'), 'test -f /wal-spool/ENABLED && echo on || echo off')
  },
)

commands(
  'the shipper unit restarts always, runs the bundle on its config, writes only its own directory',
  () => {
    const u = walShipperService('staging')
    assert.match(u, 'ExecStart=/usr/bin/node /usr/local/lib/conciliaextrato/wal-shipper.mjs staging\n')
    assert.match(u, 'Restart=always')
    assert.match(u, 'ReadWritePaths=-/var/lib/conciliaextrato/wal/staging\n')
    assert.match(u, 'ProtectSystem=strict')
    assert.match(u, 'WantedBy=multi-user.target')
  },
)

commands("pg_stat_archiver's line is parsed; anything else is undefined", () => {
  assert.equal(
    parseArchiverState(
      'on|000000010000000000000003|2026-12-06T10:00:00Z|2|000000010000000000000004|2026-12-06T10:01:00Z|30\n',
    ),
    {
      mode: 'on',
      lastArchived: '000000010000000000000003',
      lastArchivedAt: '2026-12-06T10:00:00Z',
      failedCount: 2,
      lastFailed: '000000010000000000000004',
      lastFailedAt: '2026-12-06T10:01:00Z',
      timeoutS: 30,
    },
  )
  assert.equal(parseArchiverState('off|||0|||60'), {
    mode: 'off',
    lastArchived: undefined,
    lastArchivedAt: undefined,
    failedCount: 0,
    lastFailed: undefined,
    lastFailedAt: undefined,
    timeoutS: 60,
  })
  // The probe from before archive_timeout was read (6 fields) is not taken for a state.
  assert.is(parseArchiverState('on|||0||'), undefined)
  assert.is(parseArchiverState('psql: error: connection refused'), undefined)
})

commands('object keys carry the cluster, the name and the plaintext hash; strays are not WAL', () => {
  const k = walKey('production', '7312', SEG(3), Buffer.from('x'))
  assert.match(k, /^wal\/production\/7312\/000000010000000000000003\.[0-9a-f]{16}\.gz\.enc$/)
  assert.equal(parseWalKey('production', k)?.name, SEG(3))
  assert.equal(parseWalKey('production', k)?.system, '7312')
  assert.match(
    walKey('production', '7312', '00000002.history', Buffer.from('h')),
    /^wal\/production\/7312\/00000002\.history\./,
  )
  assert.is(parseWalKey('production', 'wal/production/notes.txt'), undefined)
  assert.is(parseWalKey('production', `wal/production/${SEG(3)}.0123456789abcdef.gz.enc`), undefined)
  assert.is(parseWalKey('staging', k), undefined)
  assert.throws(
    () => walKey('production', '7312', `${SEG(3)}.partial`, Buffer.from('x')),
    /not a WAL file name/,
  )
  assert.throws(
    () => walKey('production', 'a/b', SEG(3), Buffer.from('x')),
    /not a Postgres system identifier/,
  )
})

commands("a segment's cluster is read from its first page; a file without that header is refused", () => {
  assert.is(segmentSystem(SEG(1), fakeSegment(4096)), SYS.toString())
  assert.is(segmentSystem(SEG(1), fakeSegment(4096, 1n)), '1')
  const plain = Buffer.alloc(4096)
  assert.throws(() => segmentSystem(SEG(1), plain), /does not start with a WAL segment's long page header/)
  const cut = fakeSegment(4096).subarray(0, 2048)
  assert.throws(() => segmentSystem(SEG(1), cut), /its header says 4096 bytes, the file has 2048/)
})

commands('the chain is checked per cluster: a new cluster starting again at segment 1 is no gap', () => {
  const w = (system: string, n: number) => ({
    key: `wal/p/${system}/${SEG(n)}.0123456789abcdef.gz.enc`,
    system,
    name: SEG(n),
    hash: '0123456789abcdef',
    bytes: 10,
  })
  const chains = walChains([w('5', 7), w('5', 8), w('9', 1), w('9', 3)])
  assert.equal(
    chains.map((c) => [c.system, c.chain.first, c.chain.last, c.gaps]),
    [
      ['5', SEG(7), SEG(8), ''],
      ['9', SEG(1), SEG(3), `1 gap (1 segment missing): after ${SEG(1)} up to ${SEG(3)}`],
    ],
  )
  assert.is(chains[0]?.bytes, 20)
})

commands('health: a segment waiting or a shipper failing over 180 s fails; a fresh status passes', () => {
  const now = Date.parse('2026-12-06T12:00:00Z')
  const st = (over: Partial<ShipperStatus>) =>
    JSON.stringify({
      version: 1,
      env: 'p',
      at: '2026-12-06T11:59:58Z',
      shipped: 4,
      backlog: 0,
      oldestWaitingS: 0,
      last: SEG(4),
      lastAt: '2026-12-06T11:59:00Z',
      ...over,
    })
  assert.is(walShipperResult('web-1', st({}), now).ok, true)
  assert.is(walShipperResult('web-1', st({ backlog: 3, oldestWaitingS: 200 }), now).ok, false)
  const failing = walShipperResult(
    'web-1',
    st({ error: 'x: ECONNREFUSED', failingSince: '2026-12-06T11:55:00Z' }),
    now,
  )
  assert.is(failing.ok, false)
  assert.match(failing.value, 'failing for 300 s: x: ECONNREFUSED')
  assert.is(walShipperResult('web-1', st({ at: '2026-12-06T11:50:00Z' }), now).ok, false)
  assert.is(walShipperResult('web-1', '', now).ok, false)
})

const ship = suite('WAL archiving: the shipper against an S3 server', { timeoutS: 120 })
let s3: S3Server
let store: BackupStore
let spool: string
const keyring = Keyring.fromSecrets({ BACKUP_KEY: generateBackupKey() })
const recipient = keyring.current.x25519.recipient
const segments = [SEG(1), SEG(2), SEG(3)].map((name) => ({ name, bytes: fakeSegment() }))

ship.before(async () => {
  s3 = await startS3Server({ buckets: ['wal'] })
  store = openStore(
    { type: 's3', endpoint: s3.endpoint, region: 'us-east-1', bucket: 'wal', prefix: 'p' },
    S3RVER_SECRETS,
    {
      maxAttempts: 1,
    },
  )
  spool = await mkdtemp(join(tmpdir(), 'ce-spool-'))
})
ship.after(async () => {
  await s3?.close()
  await rm(spool, { recursive: true, force: true })
})

ship(
  'a pass ships every finished segment in order, then empties the spool (not the marker or a temp file)',
  async () => {
    for (const s of segments) await writeFile(join(spool, s.name), s.bytes)
    await writeFile(join(spool, 'ENABLED'), '')
    await writeFile(join(spool, `.${SEG(4)}.tmp`), 'half')
    const pass = await shipPass({ spool, store, recipient, env: 'prod' })
    assert.equal(
      pass.shipped.map((s) => [s.name, s.status]),
      segments.map((s) => [s.name, 'shipped']),
    )
    assert.is(pass.backlog, 0)
    assert.is(pass.error, undefined)
    assert.equal((await readdir(spool)).sort(), [`.${SEG(4)}.tmp`, 'ENABLED'])
    const archived = await archivedWal(store, 'prod')
    assert.equal(
      archived.map((w) => w.name),
      segments.map((s) => s.name),
    )
  },
)

ship(
  'what is archived opens with BACKUP_KEY to the very bytes; it is not plaintext in the store',
  async () => {
    const archived = await archivedWal(store, 'prod')
    for (const [i, w] of archived.entries()) {
      const plain = await fetchWalFile(store, keyring, w)
      assert.ok(plain.equals(segments[i]?.bytes as Buffer))
    }
    const raw = readFileSync(join(s3.dir, 'wal', `p/${archived[0]?.key}._S3rver_object`))
    assert.not.ok(raw.includes((segments[0] as (typeof segments)[0]).bytes.subarray(0, 64)))
    // Another key cannot open it.
    const other = Keyring.fromSecrets({ BACKUP_KEY: generateBackupKey() })
    await fetchWalFile(store, other, archived[0] as (typeof archived)[0]).then(
      () => assert.unreachable('opened with another key'),
      (err) => assert.instance(err, IntegrityError),
    )
  },
)

ship(
  'a segment switched early (mostly zeros, as archive_timeout leaves it) is stored gzipped: a few KiB',
  async () => {
    const early = Buffer.alloc(16 * 1024 * 1024)
    fakeSegment(8192).copy(early)
    early.writeUInt32LE(early.length, 32)
    const out = await shipWalFile(store, recipient, 'prod', SYS.toString(), SEG(12), early)
    assert.ok(out.bytes < 64 * 1024, `${out.bytes} bytes stored`)
    const w = (await archivedWal(store, 'prod')).find((a) => a.name === SEG(12)) as ArchivedWal
    assert.ok((await fetchWalFile(store, keyring, w)).equals(early))
    await store.delete([w.key])
  },
)

ship(
  'the same segment again is already there; different bytes under its name are refused and kept',
  async () => {
    const again = await shipWalFile(
      store,
      recipient,
      'prod',
      SYS.toString(),
      SEG(2),
      segments[1]?.bytes as Buffer,
    )
    assert.is(again.status, 'already there')
    await writeFile(join(spool, SEG(2)), fakeSegment(1000))
    const pass = await shipPass({ spool, store, recipient, env: 'prod' })
    assert.equal(pass.shipped, [])
    assert.match(pass.error ?? '', `${SEG(2)}: ${SEG(2)} is already archived with different content`)
    assert.ok(existsSync(join(spool, SEG(2))))
    const st = nextStatus(undefined, 'prod', pass, new Date('2026-12-06T12:00:00Z'))
    assert.is(st.backlog, 1)
    assert.is(st.failingSince, '2026-12-06T12:00:00.000Z')
    const later = nextStatus(st, 'prod', pass, new Date('2026-12-06T12:05:00Z'))
    assert.is(later.failingSince, '2026-12-06T12:00:00.000Z')
    await rm(join(spool, SEG(2)))
  },
)

ship(
  'a new cluster (an emergency droplet) reuses segment names in a chain of its own; its history file goes with it',
  async () => {
    const other = fakeSegment(2000, 42n)
    await writeFile(join(spool, SEG(1)), other)
    await writeFile(join(spool, '00000002.history'), '1\t0/3000000\tno recovery target specified\n')
    await writeFile(join(spool, '000000020000000000000002'), fakeSegment(2000, 42n))
    const pass = await shipPass({ spool, store, recipient, env: 'prod' })
    assert.is(pass.error, undefined)
    assert.equal(
      pass.shipped.map((s) => [s.name, s.system, s.status]),
      [
        [SEG(1), '42', 'shipped'],
        ['00000002.history', '42', 'shipped'],
        ['000000020000000000000002', '42', 'shipped'],
      ],
    )
    const mine = (await archivedWal(store, 'prod')).filter((w) => w.system === '42')
    assert.ok((await fetchWalFile(store, keyring, mine[0] as (typeof mine)[0])).equals(other))
    // A history file alone waits for its cluster to be known, unless the last one shipped says it.
    await writeFile(join(spool, '00000003.history'), 'h\n')
    const alone = await shipPass({ spool, store, recipient, env: 'prod' })
    assert.equal([alone.shipped, alone.backlog, alone.error], [[], 1, undefined])
    const told = await shipPass({ spool, store, recipient, env: 'prod', lastSystem: '42' })
    assert.equal(
      told.shipped.map((s) => [s.name, s.system]),
      [['00000003.history', '42']],
    )
    // A file under a segment's name that is not one stays in the spool, named in the error.
    await writeFile(join(spool, SEG(9)), Buffer.alloc(1000, 'not wal '))
    const bad = await shipPass({ spool, store, recipient, env: 'prod' }).finally(() =>
      rm(join(spool, SEG(9))),
    )
    assert.match(bad.error ?? '', `${SEG(9)}: ${SEG(9)} does not start with a WAL segment's long page header`)
  },
)

ship('the service: runShipper ships and writes its status; the secret never reaches it', async () => {
  await writeFile(join(spool, SEG(5)), fakeSegment(1000))
  const statusFile = join(spool, '..', `${spool.split('/').at(-1)}-status.json`)
  const configFile = `${statusFile}.config.json`
  // Before make backup wrote the config: a failing pass, in the status, naming the file; what waits in
  // the spool is still counted (it was -1), with its age, so health's "wal shipping" sees it waiting.
  await utimes(join(spool, SEG(5)), new Date(Date.now() - 300_000), new Date(Date.now() - 300_000))
  const listeners = process.listenerCount('SIGTERM')
  await runShipper({ env: 'prod', spool, statusFile, configFile }, { passes: 3, pollS: 0.01 })
  const before = JSON.parse(readFileSync(statusFile, 'utf8')) as ShipperStatus
  assert.match(before.error ?? '', `no config at ${configFile}: make backup ENV=prod writes it`)
  assert.is(before.backlog, 1)
  assert.ok(before.oldestWaitingS >= 299, String(before.oldestWaitingS))
  // Each pause's stop listener goes with it: a pass every few seconds must not pile them up.
  assert.is(process.listenerCount('SIGTERM'), listeners)
  await writeFile(
    configFile,
    walShipperConfigContent({
      version: 1,
      env: 'prod',
      store: { endpoint: s3.endpoint, region: 'us-east-1', bucket: 'wal', prefix: 'p' },
      accessKeyId: S3RVER_SECRETS.SPACES_ACCESS_KEY_ID,
      secretAccessKey: S3RVER_SECRETS.SPACES_SECRET_ACCESS_KEY,
      recipient: `cebk-recipient:${recipient.id}:${recipient.publicKey.toString('base64url')}`,
    }),
  )
  await runShipper({ env: 'prod', spool, statusFile, configFile }, { passes: 1, pollS: 1 })
  const st = JSON.parse(readFileSync(statusFile, 'utf8')) as ShipperStatus
  assert.is(st.last, SEG(5))
  assert.is(st.system, SYS.toString())
  assert.is(st.shipped, 1)
  assert.is(st.backlog, 0)
  assert.is(st.error, undefined)
  assert.not.match(readFileSync(statusFile, 'utf8'), S3RVER_SECRETS.SPACES_SECRET_ACCESS_KEY)
  await rm(statusFile)
  await rm(configFile)
})

ship(
  'the bundle (what the host runs) ships a segment, and a failing store is in its status, not a crash',
  async () => {
    const bundle = join(spool, '..', `${spool.split('/').at(-1)}-shipper.mjs`)
    await writeFile(bundle, await walShipperBundle())
    const statusFile = `${bundle}.status.json`
    const cfgFile = `${bundle}.json`
    const config = (endpoint: string) =>
      walShipperConfigContent({
        version: 1,
        env: 'prod',
        store: { endpoint, region: 'us-east-1', bucket: 'wal', prefix: 'p' },
        accessKeyId: S3RVER_SECRETS.SPACES_ACCESS_KEY_ID,
        secretAccessKey: S3RVER_SECRETS.SPACES_SECRET_ACCESS_KEY,
        recipient: `cebk-recipient:${recipient.id}:${recipient.publicKey.toString('base64url')}`,
      })
    const runFor = async (endpoint: string, until: (st: ShipperStatus) => boolean) => {
      await writeFile(cfgFile, config(endpoint))
      const child = spawn(process.execPath, [bundle, 'prod', spool, statusFile, cfgFile], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let out = ''
      child.stdout.on('data', (c: Buffer) => (out += c))
      child.stderr.on('data', (c: Buffer) => (out += c))
      try {
        for (let i = 0; i < 150; i++) {
          await new Promise((r) => setTimeout(r, 200))
          if (existsSync(statusFile) && until(JSON.parse(readFileSync(statusFile, 'utf8')))) return out
        }
        throw new Error(`the shipper did not get there in 30 s:\n${out}`)
      } finally {
        child.kill('SIGTERM')
        await new Promise((r) => child.once('exit', r))
      }
    }
    await writeFile(join(spool, SEG(6)), fakeSegment(1000))
    const out = await runFor(s3.endpoint, (st) => st.last === SEG(6))
    assert.match(out, `${SEG(6)}: shipped`)
    await writeFile(join(spool, SEG(7)), fakeSegment(1000))
    const down = await runFor('http://127.0.0.1:9', (st) => st.error !== undefined)
    const st = JSON.parse(readFileSync(statusFile, 'utf8')) as ShipperStatus
    assert.match(st.error ?? '', SEG(7))
    assert.is(st.backlog, 1)
    assert.match(down, 'ECONNREFUSED')
    assert.ok(existsSync(join(spool, SEG(7))))
    for (const f of [bundle, statusFile, cfgFile, join(spool, SEG(7))]) await rm(f, { force: true })
  },
)

commands.run()
ship.run()

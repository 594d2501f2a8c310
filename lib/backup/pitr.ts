/**
 * Restore to a point in time (make restore AT=<time>): the newest backup whose base backup finished
 * before the time, and its cluster's archived WAL from the base's first segment on, replayed by a
 * throwaway Postgres server on the data host (lib/commands/pitr.ts) up to the time, then copied into
 * the live server's scratch database. From there restore verifies and swaps as for a dump. The WAL is
 * opened here with BACKUP_KEY and streamed to the host; no plaintext touches this machine's disk.
 */
import { Readable } from 'node:stream'
import { COUNTS_SQL, parsePgVerify, pgVerify } from '../commands/backup.ts'
import {
  pitrCopy,
  pitrLoadBase,
  pitrLoadWal,
  pitrRemove,
  pitrStart,
  pitrVolume,
  pitrWait,
} from '../commands/pitr.ts'
import type { HostSession } from '../host/session.ts'
import { InputError, IntegrityError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import type { Context } from '../run/runbook.ts'
import type { BackupStore } from '../store/store.ts'
import { BASE_PART, type BaseInfo, walSegmentOf } from './base-backup.ts'
import { listBackups, partKey } from './catalog.ts'
import type { Keyring } from './keys.ts'
import { compareCounts, totalRows } from './manifest.ts'
import { checkDrillCanary, drillPoint } from './pitr-drill.ts'
import type { PitrPlan } from './pitr-plan.ts'
import {
  chooseBackup,
  dropScratch,
  type RestoreRun,
  readBackupManifest,
  restoreScratch,
  timedPhase,
} from './restore.ts'
import { isDrill } from './restore-report.ts'
import { openBackupTarget } from './take.ts'
import { tarEnd, tarEntry } from './tar.ts'
import { restoreFromFile } from './transfer.ts'
import { type ArchivedWal, archivedWal, isSegmentName, openWalFile } from './wal-archive.ts'
import { checkChain, describeGaps, nextSegment, parseSegment } from './wal-chain.ts'

const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z$/
const REPLAY_TIMEOUT_S = 6 * 3600
/** Segments fetched and opened ahead of the one being sent to the host. */
const PREFETCH = 4

/** AT=: a UTC time (2026-12-02T10:31:07Z) not in the future, or 'latest'. */
export function parseTarget(at: string, now = new Date()): string {
  if (at === 'latest') return at
  if (!TIME.test(at) || Number.isNaN(Date.parse(at)))
    throw new InputError(
      `AT=${at} is not a point in time`,
      [],
      'Give it in UTC with a Z, like AT=2026-12-02T10:31:07Z, or AT=latest for everything archived.',
    )
  if (Date.parse(at) > now.getTime())
    throw new InputError(
      `AT=${at} is in the future (now ${now.toISOString()})`,
      [],
      'Give a time in the past, or AT=latest.',
    )
  return at
}

/**
 * Whether a base can serve `target`: it must have finished (become consistent) before the time. Its
 * finish time is whole seconds, read after pg_basebackup ended: a second of margin.
 */
export function baseServes(base: BaseInfo, target: string): boolean {
  return target === 'latest' || Date.parse(base.finished_at) + 1000 <= Date.parse(target)
}

/**
 * The WAL to replay after `base`: its cluster's history files, and its timeline's segments from the
 * base's first one on, up to the first hole (replay cannot cross it: `gap` says where it is). The
 * base's tar holds the WAL up to its end point, so a chain that starts no later than the segment after
 * that is whole.
 */
export function walToReplay(archived: ArchivedWal[], base: BaseInfo): { wal: ArchivedWal[]; gap: string } {
  const mine = archived.filter((w) => w.system === base.system)
  const history = mine.filter((w) => !isSegmentName(w.name))
  const segments = mine.filter(
    (w) => parseSegment(w.name)?.timeline === base.timeline && w.name >= base.start_wal,
  )
  const afterEnd = nextSegment(
    parseSegment(walSegmentOf(base.timeline, base.end_lsn)) as NonNullable<ReturnType<typeof parseSegment>>,
  ).name
  const chain = checkChain(
    segments.map((w) => w.name),
    {},
  )
  const first = chain.first
  if (first === undefined || first > afterEnd)
    return {
      wal: history,
      gap: first === undefined ? '' : `nothing archived between ${base.start_wal} and ${first}`,
    }
  const cut = chain.gaps[0]
  const kept = segments.filter((w) => !cut || w.name <= cut.after)
  return { wal: [...history, ...kept], gap: cut ? describeGaps(chain) : '' }
}

/** The base to replay from, and what to replay: the newest backup whose base serves the target. */
export async function choosePitr(
  ctx: Context,
  host: HostSession,
  at: string,
  requested?: string,
): Promise<RestoreRun> {
  const target = parseTarget(at)
  const { store, keyring } = openBackupTarget(ctx)
  const entries = (await listBackups(store, ctx.env.name, { keyring }))
    .filter((e) => e.complete && e.parts.includes(BASE_PART) && (!requested || e.id === requested))
    .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
  let oldest: BaseInfo | undefined
  for (const entry of entries) {
    const { manifest } = await readBackupManifest(ctx, entry.id)
    if (!manifest.base) continue
    oldest = manifest.base
    if (!baseServes(manifest.base, target)) continue
    const { wal, gap } = walToReplay(await archivedWal(store, ctx.env.name), manifest.base)
    const r = await chooseBackup(ctx, host, entry.id)
    r.pitr = { target, base: manifest.base, wal, gap }
    return r
  }
  throw new InputError(
    `no ${requested ? `base backup in backup ${requested}` : 'base backup'} of ${ctx.env.name} finished before AT=${target}${oldest ? ` (the oldest finished ${oldest.finished_at})` : ' (no backup has one: WAL archiving was never on when make backup ran)'}`,
    [],
    'Pick a later AT, or restore a whole backup (make restore BACKUP=<id>; make backups lists them).',
  )
}

export function describePitr(p: PitrPlan): string[] {
  const segments = p.wal.filter((w) => isSegmentName(w.name))
  const mb = (segments.reduce((sum, w) => sum + w.bytes, 0) / 1048576).toFixed(1)
  return [
    `point in time ${p.target}: the base backup of cluster ${p.base.system} (finished ${p.base.finished_at}), then ${segments.length} archived WAL segment(s)${segments.length ? ` ${segments[0]?.name} to ${segments.at(-1)?.name}` : ''} (${mb} MB stored)`,
    ...(p.gap ? [`the archive has a hole after the base: ${p.gap}; replay cannot go past it`] : []),
    'Redis comes back as it was in this backup (Redis has no log to replay)',
  ]
}

/** The WAL as a tar of ce-wal/<name>.gz entries, fetched and opened PREFETCH ahead. */
function walTar(store: BackupStore, keyring: Keyring, wal: ArchivedWal[]): Readable {
  async function* entries() {
    const pending: Promise<Buffer>[] = []
    let next = 0
    const fill = () => {
      while (pending.length < PREFETCH && next < wal.length) {
        const p = openWalFile(store, keyring, wal[next++] as ArchivedWal).then((f) => f.gz)
        p.catch(() => undefined)
        pending.push(p)
      }
    }
    for (const w of wal) {
      fill()
      const gz = await (pending.shift() as Promise<Buffer>)
      yield* tarEntry(`ce-wal/${w.name}.gz`, gz)
    }
    yield tarEnd()
  }
  return Readable.from(entries())
}

/**
 * The recovery server: the base unpacked, the WAL streamed beside it, replay to the target, promote;
 * then the recovered database copied into the live server's scratch database, the row counts of both
 * compared, and the backup's canary found. Nothing live is touched.
 */
export async function restorePitrScratch(r: RestoreRun): Promise<void> {
  const p = r.pitr
  if (!p) throw new IntegrityError('not a point-in-time restore')
  const file = r.files[BASE_PART]
  const info = r.manifest.parts[BASE_PART]
  if (!file || !info) throw new IntegrityError(`${BASE_PART} was not downloaded and verified`)
  const key = partKey(r.manifest.env, r.entry.id, BASE_PART)
  // The base (opened from its verified download) and the WAL (fetched and opened from the store) go
  // into the volume at the same time: one is mostly this machine's CPU, the other the store's latency.
  await timedPhase(r, 'pitr-load', async () => {
    await r.host.exec(pitrVolume(r.data.env), { echo: false })
    const loads = await Promise.allSettled([
      restoreFromFile(
        r.host,
        pitrLoadBase(r.data, info.bytes, walBytes(p), p.base),
        file,
        key,
        r.keyring,
        BASE_PART,
        REPLAY_TIMEOUT_S,
      ),
      r.host.exec(pitrLoadWal(r.data), {
        stdin: walTar(r.store, r.keyring, p.wal),
        echo: false,
        timeoutS: REPLAY_TIMEOUT_S,
      }),
    ])
    for (const l of loads) if (l.status === 'rejected') throw l.reason
  })
  print(`      base and ${p.wal.length} WAL file(s) on ${r.host.name}; replaying to ${p.target}`)
  const out = await timedPhase(r, 'pitr-replay', async () => {
    await r.host.exec(pitrStart(r.data, p.target), { echo: false })
    return (
      await r.host.exec(pitrWait(r.data, REPLAY_TIMEOUT_S), { echo: false, timeoutS: REPLAY_TIMEOUT_S + 60 })
    ).stdout
  })
  const lines = out.trim().split('\n')
  p.replayedTo = lines.find((l) => !l.startsWith('ce-pitr-log '))?.trim() ?? ''
  for (const l of lines.filter((l) => l.startsWith('ce-pitr-log ')))
    print(`      postgres: ${l.slice(12).trim()}`)
  if (p.target !== 'latest' && p.replayedTo && Date.parse(p.replayedTo) > Date.parse(p.target))
    throw new IntegrityError(
      `replay went past AT=${p.target}: its last transaction committed at ${p.replayedTo}`,
    )
  const counts = await timedPhase(
    r,
    'pitr-copy',
    async () =>
      (
        await r.host.exec(pitrCopy(r.data, r.scratch, COUNTS_SQL), {
          echo: false,
          timeoutS: REPLAY_TIMEOUT_S,
        })
      ).stdout,
  )
  const [recovered = '{}', copied = '{}'] = counts.trim().split('\n').slice(-2)
  const diff = compareCounts(JSON.parse(recovered), JSON.parse(copied))
  if (diff.length)
    throw new IntegrityError(`the scratch database does not match the recovered one:\n  ${diff.join('\n  ')}`)
  const got = parsePgVerify(
    (await r.host.exec(pgVerify(r.data, r.scratch, r.manifest.id), { echo: false })).stdout,
  )
  if (got.canary !== r.manifest.postgres.canary.token)
    throw new IntegrityError(`the recovered database lacks the canary row of backup ${r.manifest.id}`)
  const rows = JSON.parse(copied) as Record<string, number>
  p.rows = totalRows(rows)
  p.tables = rows
  print(
    `      replayed to ${p.replayedTo || 'the base (no transaction after it)'}; scratch database ${r.scratch}: ${p.rows} rows in ${Object.keys(rows).length} tables match the recovered server; canary of ${r.manifest.id} found`,
  )
  if (p.drill) await checkDrillCanary(r, p)
}

/** The WAL's size once unpacked on the host: 16 MiB a segment (the disk check's estimate). */
const walBytes = (p: PitrPlan) => p.wal.filter((w) => isSegmentName(w.name)).length * 16 * 1024 * 1024

/** What restorePitrScratch runs on the host, in order (for --dry-run). */
export function pitrCommands(r: RestoreRun): string[] {
  const p = r.pitr
  if (!p) return []
  const base = r.manifest.parts[BASE_PART]?.bytes ?? 0
  return [
    pitrVolume(r.data.env),
    `${pitrLoadBase(r.data, base, walBytes(p), p.base)}\n# stdin: ${BASE_PART}, opened here with BACKUP_KEY`,
    `${pitrLoadWal(r.data)}\n# stdin: a tar of the ${p.wal.length} WAL file(s), opened here with BACKUP_KEY; beside the base, at the same time`,
    pitrStart(r.data, p.target),
    pitrWait(r.data, REPLAY_TIMEOUT_S),
    pitrCopy(r.data, r.scratch, COUNTS_SQL),
    pitrRemove(r.data.env),
  ]
}

/** The recovery server and its volume removed (however the run ended). */
async function removePitrServer(r: RestoreRun): Promise<void> {
  await r.host.exec(pitrRemove(r.data.env), { echo: false, allowFail: true })
}

/**
 * The restore's run: a point in time (AT=) or a whole backup (BACKUP=, or the latest). A drill with
 * neither, on an env with base backups, takes a random point in the recovery window (pitr-drill.ts).
 */
export async function chooseRestore(ctx: Context, host: HostSession, at?: string, requested?: string) {
  const drill = isDrill(ctx)
  const point = at ?? (drill && !requested ? await drillPoint(ctx, host) : undefined)
  if (!point) return chooseBackup(ctx, host, requested)
  const r = await choosePitr(ctx, host, point, requested)
  if (r.pitr && drill && r.pitr.target !== 'latest') r.pitr.drill = true
  return r
}

/**
 * The scratch database filled, from the dump or by the recovery server, and verified; the scratch
 * database (unless swapped) and the recovery server are removed however the run ends.
 */
export async function restoreToScratch(ctx: Context, r: RestoreRun): Promise<void> {
  ctx.onCleanup(async () => {
    if (!r.swapped) await dropScratch(r)
  })
  if (!r.pitr) return restoreScratch(r)
  ctx.onCleanup(async () => removePitrServer(r))
  await restorePitrScratch(r)
}

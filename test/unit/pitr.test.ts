import * as assert from 'uvu/assert'
import type { BaseInfo } from '../../lib/backup/base-backup.ts'
import { baseServes, parseTarget, walToReplay } from '../../lib/backup/pitr.ts'
import { canaryVerdict, drillWindow, pickPoint } from '../../lib/backup/pitr-drill.ts'
import { judgeSafetyPoint, segmentDistance } from '../../lib/backup/restore-safety.ts'
import type { ArchivedWal } from '../../lib/backup/wal-archive.ts'
import { COUNTS_SQL } from '../../lib/commands/backup.ts'
import {
  pitrCopy,
  pitrLoadBase,
  pitrLoadWal,
  pitrRemove,
  pitrRestoreCommand,
  pitrServerArgs,
  pitrStart,
  pitrVolume,
  pitrWait,
} from '../../lib/commands/pitr.ts'
import {
  canaryProbe,
  canaryWriteSql,
  parseCanaryProbe,
  pitrCanaryWrite,
  walSwitch,
} from '../../lib/commands/pitr-canary.ts'
import { suite } from '../harness.ts'

const test = suite('pitr: restore to a point in time, its choices and host commands')
const NOW = new Date('2026-12-06T12:00:00Z')
const T = { env: 'staging', user: 'app', db: 'conciliaextrato' }

test('AT=: a UTC time with a Z, not in the future, or latest; anything else names the form to use', () => {
  assert.is(parseTarget('2026-12-02T10:31:07Z', NOW), '2026-12-02T10:31:07Z')
  assert.is(parseTarget('2026-12-02T10:31:07.123456Z', NOW), '2026-12-02T10:31:07.123456Z')
  assert.is(parseTarget('latest', NOW), 'latest')
  for (const bad of [
    '2026-12-02 10:31:07',
    '2026-12-02T10:31:07',
    '2026-12-02T10:31:07+01:00',
    'yesterday',
    '',
    '2026-13-02T10:31:07Z',
  ])
    assert.throws(
      () => parseTarget(bad, NOW),
      (e: Error) => e.message.includes(`AT=${bad} is not a point in time`),
      bad,
    )
  assert.throws(
    () => parseTarget('2026-12-06T12:00:01Z', NOW),
    /is in the future \(now 2026-12-06T12:00:00.000Z\)/,
  )
})

const BASE: BaseInfo = {
  system: '7716308934859669530',
  timeline: 1,
  start_lsn: '0/2000028',
  start_wal: '000000010000000000000002',
  end_lsn: '0/3000100',
  finished_at: '2026-12-06T10:00:00Z',
}

test('a base serves a time at least a second after it finished (its time is whole seconds), and latest', () => {
  assert.ok(baseServes(BASE, '2026-12-06T10:00:01Z'))
  assert.ok(baseServes(BASE, 'latest'))
  assert.not.ok(baseServes(BASE, '2026-12-06T10:00:00.999Z'))
  assert.not.ok(baseServes(BASE, '2026-12-06T09:00:00Z'))
})

const w = (name: string, system = BASE.system): ArchivedWal => ({
  key: `wal/staging/${system}/${name}.0123456789abcdef.gz.enc`,
  system,
  name,
  hash: '0123456789abcdef',
  bytes: 100,
})
const seg = (n: number, tl = 1) =>
  `${tl.toString(16).padStart(8, '0').toUpperCase()}00000000${n.toString(16).padStart(8, '0').toUpperCase()}`

test("the WAL to replay: the base's cluster and timeline, from its first segment, up to the first hole", () => {
  const archived = [
    w(seg(1)),
    w(seg(2)),
    w(seg(3)),
    w(seg(4)),
    w(seg(5), '42'), // another cluster (an emergency droplet): never mixed in
    w('00000002.history'),
    w(seg(6, 2)), // another timeline
  ]
  const r = walToReplay(archived, BASE)
  assert.equal(
    r.wal.map((x) => x.name),
    ['00000002.history', seg(2), seg(3), seg(4)],
  )
  assert.is(r.gap, '')
  // A hole: replay stops before it, and says where.
  const holed = walToReplay([w(seg(2)), w(seg(3)), w(seg(6)), w(seg(7))], BASE)
  assert.equal(
    holed.wal.map((x) => x.name),
    [seg(2), seg(3)],
  )
  assert.match(holed.gap, `after ${seg(3)} up to ${seg(6)}`)
  // The base's tar holds its own WAL (up to its end point, segment 3): the chain may start at 4.
  assert.equal(
    walToReplay([w(seg(4)), w(seg(5))], BASE).wal.map((x) => x.name),
    [seg(4), seg(5)],
  )
  // Nothing archived until well after it: nothing to replay, and the hole named.
  const late = walToReplay([w(seg(9))], BASE)
  assert.equal(late.wal, [])
  assert.match(late.gap, `nothing archived between ${seg(2)} and ${seg(9)}`)
  assert.equal(walToReplay([], BASE), { wal: [], gap: '' })
})

test('host commands: a fresh volume checked for room before the base is unpacked; the WAL beside it', () => {
  // Earlier leftovers removed, then a labelled volume: no container needed for either.
  const volume = pitrVolume('staging')
  assert.ok(volume.indexOf(pitrRemove('staging')) < volume.indexOf('docker volume create'))
  assert.match(volume, 'docker volume create --label conciliaextrato.pitr=staging ce-staging-pitr')
  assert.not.match(volume, 'docker run')
  const load = pitrLoadBase(T, 10 * 1048576, 32 * 1048576)
  assert.match(load, 'img=$(docker inspect -f \'{{.Config.Image}}\' "$pg")')
  // (10 + 32) MiB with 10% to spare, in KiB, checked before tar writes anything.
  assert.match(load, `-lt ${Math.ceil((42 * 1048576 * 1.1) / 1024)} ]`)
  assert.match(load, 'docker run --rm -i --network none -v ce-staging-pitr:/pgdata --entrypoint sh "$img"')
  assert.ok(load.indexOf('df -Pk /pgdata') < load.indexOf('tar -x -C /pgdata'))
  // Then recovery.signal, so the server starts in archive recovery.
  assert.ok(load.indexOf('tar -x -C /pgdata') < load.indexOf('touch /pgdata/recovery.signal'))
  assert.match(pitrLoadWal(T), '--entrypoint tar "$img" -x -C /pgdata')
  // A gzipped base: tar -xz, and the room it unpacks to (the databases' size it recorded, 100 MiB).
  const packed = pitrLoadBase(T, 10 * 1048576, 32 * 1048576, {
    compression: 'gzip',
    data_bytes: 100 * 1048576,
  })
  assert.match(packed, 'tar -xz -C /pgdata')
  assert.match(packed, `-lt ${Math.ceil((132 * 1048576 * 1.1) / 1024)} ]`)
  // Without a recorded size, at least 4 times its bytes.
  const guessed = pitrLoadBase(T, 10 * 1048576, 32 * 1048576, { compression: 'gzip' })
  assert.match(guessed, `-lt ${Math.ceil((72 * 1048576 * 1.1) / 1024)} ]`)
  // A zstd base: tar --zstd, after checking the image has zstd (a clear exit 3 if not).
  const zstd = pitrLoadBase(T, 10 * 1048576, 32 * 1048576, { compression: 'zstd', data_bytes: 1 })
  assert.match(zstd, 'tar --zstd -x -C /pgdata')
  assert.match(zstd, 'command -v zstd >/dev/null || {')
  assert.match(zstd, 'the Postgres image has no zstd')
  assert.ok(zstd.indexOf('command -v zstd') < zstd.indexOf('tar --zstd'))
  assert.is(
    pitrRemove('staging'),
    'docker rm -f ce-staging-pitr >/dev/null 2>&1 || true\ndocker volume rm ce-staging-pitr >/dev/null 2>&1 || true',
  )
})

test("the recovery server: Postgres's time form, promote at the target, no network, no archiving; latest replays everything", () => {
  assert.is(
    pitrRestoreCommand(),
    'test -f /var/lib/postgresql/data/ce-wal/%f.gz && gunzip -c /var/lib/postgresql/data/ce-wal/%f.gz > %p',
  )
  assert.equal(pitrServerArgs('2026-12-02T10:31:07.5Z'), [
    'postgres',
    '-c',
    'listen_addresses=',
    '-c',
    'archive_mode=off',
    '-c',
    `restore_command=${pitrRestoreCommand()}`,
    '-c',
    'recovery_target_time=2026-12-02 10:31:07.5+00',
    '-c',
    'recovery_target_action=promote',
  ])
  assert.equal(pitrServerArgs('latest').slice(-2), ['-c', `restore_command=${pitrRestoreCommand()}`])
  const start = pitrStart(T, 'latest')
  // One container: recovery.signal was made as the base was unpacked.
  assert.is(start.match(/docker run/g)?.length, 1)
  assert.match(
    start,
    'docker run -d --name ce-staging-pitr --label conciliaextrato.pitr=staging --network none -v ce-staging-pitr:/var/lib/postgresql/data "$img" postgres',
  )
})

test('waiting: a stopped server or a timeout is exit 3 with its log; then the last replayed commit time', () => {
  const wait = pitrWait(T, 600)
  assert.match(
    wait,
    'if [ "$state" != running ]; then echo "the recovery server stopped ($state); the end of its log:" >&2; docker logs --tail 15 "$c" >&2 2>&1 || true; exit 3; fi',
  )
  assert.match(wait, 'if [ "$SECONDS" -ge 600 ]; then')
  assert.match(wait, "psql -XAtq -U app -d postgres -c 'SELECT pg_is_in_recovery()'")
  assert.match(wait, 'pg_last_xact_replay_timestamp()')
  assert.match(
    wait,
    "grep -E 'recovery stopping|last completed transaction|redo done|selected new timeline' | sed 's/^/ce-pitr-log /' || true",
  )
})

test("the copy: pg_dump from the recovery server into the live container's file, pg_restore -j into scratch, both counted", () => {
  const copy = pitrCopy(T, 'ce_restore_x', 'SELECT 1')
  const lines = copy.split('\n')
  assert.ok(
    lines.includes(
      'docker exec ce-staging-pitr pg_dump -Fc -Z0 -U app conciliaextrato | docker exec -i "$pg" sh -c \'cat > "$1"\' sh "$f"',
    ),
    copy,
  )
  assert.match(copy, `trap 'docker exec "$pg" rm -f "$f"' EXIT`)
  assert.match(copy, 'CREATE DATABASE "ce_restore_x"')
  assert.match(copy, /pg_restore --exit-on-error .* -d ce_restore_x -j "\$jobs" "\$f"/)
  assert.equal(
    lines.slice(-2).map((l) => l.endsWith("-c 'SELECT 1'")),
    [true, true],
  )
  assert.match(lines.at(-2) ?? '', 'docker exec ce-staging-pitr psql')
})

test('the drill window: from the oldest base (plus the canary slack) to a second before the drill canary; none when empty', () => {
  assert.equal(drillWindow(['2026-12-06T10:00:00Z', '2026-12-05T10:00:00Z'], '2026-12-06T11:00:00.500Z'), {
    from: '2026-12-05T10:00:06.000Z',
    to: '2026-12-06T10:59:59.500Z',
  })
  assert.is(drillWindow([], '2026-12-06T11:00:00Z'), undefined)
  // A base that finished moments before the canary leaves no room.
  assert.is(drillWindow(['2026-12-06T10:59:57Z'], '2026-12-06T11:00:00Z'), undefined)
  const w = { from: '2026-12-05T10:00:06.000Z', to: '2026-12-06T10:59:59.500Z' }
  assert.is(
    pickPoint(w, () => 0),
    w.from,
  )
  assert.is(
    pickPoint(w, () => 0.999999999),
    w.to,
  )
  assert.is(
    pickPoint(w, () => 0.5),
    '2026-12-05T22:30:02.750Z',
  )
  // Any pick is a point parseTarget takes, inside the window.
  for (let i = 0; i < 50; i++) {
    const p = pickPoint(w)
    assert.is(parseTarget(p, NOW), p)
    assert.ok(p >= w.from && p <= w.to, p)
  }
})

test('the drill canary verdict: nothing after the point, the newest live row before it present; each failure says why', () => {
  const at = '2026-12-06T10:30:00.000Z'
  assert.equal(
    canaryVerdict(at, { after: 0, newest: '2026-12-06T10:29:31.200000Z' }, '2026-12-06T10:29:31.200000Z'),
    {
      ok: true,
      line: 'canary row written at 2026-12-06T10:29:31.200000Z (28.8 s before the point) found, none after it',
    },
  )
  // A newer row than the live one's newest (the live database was replaced since): still found.
  assert.ok(canaryVerdict(at, { after: 0, newest: '2026-12-06T10:29:50Z' }, '2026-12-06T10:28:00Z').ok)
  const past = canaryVerdict(at, { after: 2, newest: '2026-12-06T10:29:50Z' }, '2026-12-06T10:29:50Z')
  assert.equal(past, {
    ok: false,
    line: `replay went past ${at}: the recovered database has 2 canary row(s) written after it`,
  })
  const short = canaryVerdict(at, { after: 0, newest: '2026-12-06T10:20:00Z' }, '2026-12-06T10:29:31Z')
  assert.is(short.ok, false)
  assert.is(
    short.line,
    `the canary row written at 2026-12-06T10:29:31Z is not in the recovered database (its newest: 2026-12-06T10:20:00Z): replay stopped before ${at}`,
  )
  assert.match(canaryVerdict(at, { after: 0, newest: '' }, '2026-12-06T10:29:31Z').line, '(its newest: none)')
  const none = canaryVerdict(at, { after: 0, newest: '' }, '')
  assert.is(none.ok, false)
  assert.match(none.line, `the live database has no canary row written before ${at} to look for`)
})

test('the canary on the host: one transaction that writes and prints its time; a probe that copes with no table', () => {
  const sql = canaryWriteSql("drill'x")
  assert.is(
    sql,
    "CREATE TABLE IF NOT EXISTS ce_pitr_canary (at timestamptz PRIMARY KEY DEFAULT clock_timestamp(), writer text NOT NULL); DELETE FROM ce_pitr_canary WHERE at < now() - interval '40 days'; INSERT INTO ce_pitr_canary (writer) VALUES ('drill''x') RETURNING to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"');",
  )
  const w = pitrCanaryWrite(T, 'restore-drill')
  assert.match(w, 'docker exec "$pg" psql -XAtq -v ON_ERROR_STOP=1 -U app -d conciliaextrato -c ')
  assert.match(w, "VALUES ('\\''restore-drill'\\'')")
  assert.match(walSwitch(T), 'pg_walfile_name(pg_switch_wal())')
  const probe = canaryProbe(T, 'ce_restore_x', '2026-12-06T10:30:00.000Z')
  assert.match(probe, "-d ce_restore_x -c 'SELECT to_regclass('\\''public.ce_pitr_canary'\\'') IS NOT NULL'")
  assert.match(probe, "count(*) FILTER (WHERE at > '\\''2026-12-06T10:30:00.000Z'\\''::timestamptz)")
  assert.match(probe, 'else echo absent; fi')
  assert.equal(parseCanaryProbe('0|2026-12-06T10:29:31.200000Z\n'), {
    after: 0,
    newest: '2026-12-06T10:29:31.200000Z',
  })
  assert.equal(parseCanaryProbe('3|\n'), { after: 3, newest: '' })
  assert.equal(parseCanaryProbe('absent'), { after: 0, newest: '' })
  assert.is(parseCanaryProbe('psql: error'), undefined)
  // Written every minute, so never counted: a backup's counts and a restore's comparison leave it out.
  assert.match(COUNTS_SQL, "FROM pg_stat_user_tables WHERE relname <> 'ce_pitr_canary'")
})

test("restore's safety net: a point the archive holds when the newest base's WAL reaches the switched segment, else why not", () => {
  const newest = { id: '20261206T100000Z', base: BASE }
  const at = '2026-12-06T11:00:00.123456Z'
  // Whole from the base through the segment switched after the canary: that canary's time is the point.
  assert.equal(judgeSafetyPoint(newest, [w(seg(2)), w(seg(3)), w(seg(4))], seg(4), at), { point: at })
  // A hole between the base and the switched segment: a safety backup instead, the hole named.
  const holed = judgeSafetyPoint(newest, [w(seg(2)), w(seg(4))], seg(4), at)
  assert.ok('why' in holed)
  assert.match(
    (holed as { why: string }).why,
    `the WAL of backup 20261206T100000Z's base does not reach ${seg(4)}`,
  )
  assert.match((holed as { why: string }).why, `after ${seg(2)} up to ${seg(4)}`)
  // The switched segment is of another cluster (the base is older than the live one): not trusted.
  const other = judgeSafetyPoint(newest, [w(seg(2)), w(seg(3), '42')], seg(3), at)
  assert.match((other as { why: string }).why, 'of another cluster')
  // A base that finished within the second before the canary cannot serve it yet.
  const fresh = judgeSafetyPoint(newest, [w(seg(2))], seg(2), '2026-12-06T10:00:00.500Z')
  assert.match((fresh as { why: string }).why, 'base finished moments ago (2026-12-06T10:00:00Z)')
  // How far behind the shipper is: segments between its newest archived and the switched one.
  assert.is(segmentDistance(seg(2), seg(12)), 10)
  assert.is(segmentDistance('0000000100000000000000FF', '000000010000000100000001'), 2)
  assert.is(segmentDistance(seg(5), seg(3)), 0)
  assert.is(segmentDistance(seg(2), seg(3, 2)), 0)
})

test.run()

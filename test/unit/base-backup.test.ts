import * as assert from 'uvu/assert'
import { parseBaseBackupLog, parseLsn, walSegmentOf } from '../../lib/backup/base-backup.ts'
import { pgBaseBackup } from '../../lib/commands/backup.ts'
import { suite } from '../harness.ts'

const test = suite('base-backup: pg_basebackup on the host, its report placed in the WAL chain')

test('an LSN is two 32-bit hex halves; anything else is refused', () => {
  assert.is(parseLsn('0/2000028'), 0x2000028n)
  assert.is(parseLsn('16/B374D848'), (0x16n << 32n) | 0xb374d848n)
  assert.is(parseLsn('ffffffff/ffffffff'), 0xffffffffffffffffn)
  for (const bad of ['', '0/', '/1', '0x1/2', '1/2/3', '123456789/0', '0/G'])
    assert.throws(() => parseLsn(bad), /not a WAL location/, bad)
})

test('the segment holding an LSN: 16 MiB segments, 256 a log; other sizes when told', () => {
  assert.is(walSegmentOf(1, '0/2000028'), '000000010000000000000002')
  assert.is(walSegmentOf(1, '0/FFFFFFFF'), '0000000100000000000000FF')
  assert.is(walSegmentOf(3, '16/B374D848'), '0000000300000016000000B3')
  // The first byte of a segment is in it; the byte before is in the previous one.
  assert.is(walSegmentOf(1, '1/1000000'), '000000010000000100000001')
  assert.is(walSegmentOf(1, '1/FFFFFF'), '000000010000000100000000')
  assert.is(walSegmentOf(1, '0/4000000', 64 * 1024 * 1024), '000000010000000000000001')
})

const LOG = [
  'ce-base system=7445137386412220439',
  'pg_basebackup: initiating base backup, waiting for checkpoint to complete',
  'pg_basebackup: checkpoint completed',
  'pg_basebackup: write-ahead log start point: 0/A000028 on timeline 1',
  'pg_basebackup: write-ahead log end point: 0/A000100',
  'pg_basebackup: base backup completed',
  'ce-base finished=2026-12-06T21:40:07Z',
].join('\n')

test("pg_basebackup -v's report: the cluster, where replay starts and where it is consistent, when it finished", () => {
  assert.equal(parseBaseBackupLog(LOG), {
    system: '7445137386412220439',
    timeline: 1,
    start_lsn: '0/A000028',
    start_wal: '00000001000000000000000A',
    end_lsn: '0/A000100',
    finished_at: '2026-12-06T21:40:07Z',
  })
  // A gzipped base says so, with what it unpacks to (the restore's disk check and its tar -xz).
  const packed = `ce-base size=1170210816 compression=gzip\n${LOG}`
  assert.equal(parseBaseBackupLog(packed), {
    ...parseBaseBackupLog(LOG),
    compression: 'gzip',
    data_bytes: 1170210816,
  })
  const zstd = `ce-base size=1170210816 compression=zstd\n${LOG}`
  assert.is(parseBaseBackupLog(zstd).compression, 'zstd')
})

test('a report missing a line is refused, naming what is missing', () => {
  const without = (needle: string) =>
    LOG.split('\n')
      .filter((l) => !l.includes(needle))
      .join('\n')
  assert.throws(() => parseBaseBackupLog(without('start point')), /did not report its start point$/)
  assert.throws(() => parseBaseBackupLog(without('end point')), /did not report its end point$/)
  assert.throws(() => parseBaseBackupLog(without('system=')), /system identifier/)
  assert.throws(() => parseBaseBackupLog(without('finished=')), /when it finished/)
  assert.throws(
    () => parseBaseBackupLog(''),
    /its start point, its end point, .*system identifier, when it finished/,
  )
})

test("the host command: the container found or exit 3, the cluster's identifier, then pg_basebackup's tar on stdout", () => {
  const cmd = pgBaseBackup({ env: 'staging', user: 'app', db: 'conciliaextrato' })
  const lines = cmd.split('\n')
  assert.is(lines[0], 'set -eu')
  assert.match(cmd, /pg=\$\(docker ps .*ce-staging-data.*postgres/)
  assert.match(cmd, /exit 3; \}/)
  assert.ok(
    lines.includes(
      'sys=$(docker exec "$pg" psql -XAtq -v ON_ERROR_STOP=1 -U app -d conciliaextrato -c \'SELECT system_identifier FROM pg_control_system()\')',
    ),
    cmd,
  )
  // Tar to stdout (one stream, sealed on the operator's side), the WAL it needs inside, a checkpoint now.
  // zstd level 1 on the host where the image has zstd to unpack it, else gzip level 1; the manifest kept
  // in the tar (client-side: server-side needs --no-manifest).
  assert.ok(
    lines.includes(
      `if docker exec "$pg" sh -c 'command -v zstd && command -v bash' >/dev/null 2>&1; then c=zstd; else c=gzip; fi`,
    ),
    cmd,
  )
  assert.ok(
    lines.includes(
      `docker exec "$pg" pg_basebackup -U app -D - -F tar -X fetch -c fast -v --compress=client-$c:1`,
    ),
    cmd,
  )
  assert.ok(
    lines.indexOf('echo "ce-base size=$size compression=$c" >&2') <
      lines.findIndex((l) => l.includes('pg_basebackup')),
  )
  // Its report goes to stderr, never into the tar on stdout.
  assert.ok(
    lines.indexOf('echo "ce-base system=$sys" >&2') < lines.findIndex((l) => l.includes('pg_basebackup')),
  )
  assert.is(lines.at(-1), 'echo "ce-base finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >&2')
  assert.not.match(cmd, /docker exec -t|-it /)
})

test.run()

import * as assert from 'uvu/assert'
import {
  checkChain,
  describeGaps,
  nextSegment,
  parseSegment,
  segmentIndex,
  segmentName,
  segmentsPerLog,
} from '../../lib/backup/wal-chain.ts'
import { suite } from '../harness.ts'

const test = suite('wal-chain: segment names and the continuity of an archived chain')

/** Timeline-1 (or `tl`) segment names for [log, seg] pairs. */
const names = (pairs: [number, number][], tl = 1) => pairs.map(([log, seg]) => segmentName(tl, log, seg))

test('parsing: 24 hex digits (any case, normalised to uppercase); not .partial, .history, .backup or a wrong length', () => {
  assert.equal(parseSegment('0000000200000003000000FE'), {
    timeline: 2,
    log: 3,
    seg: 0xfe,
    name: '0000000200000003000000FE',
  })
  assert.equal(parseSegment('0000000a00000003000000fe'), {
    timeline: 10,
    log: 3,
    seg: 0xfe,
    name: '0000000A00000003000000FE',
  })
  for (const bad of [
    '000000010000000000000003.partial',
    '00000002.history',
    '000000010000000000000003.00000028.backup',
    '00000001000000000000003',
    '0000000100000000000000003',
    '00000001000000000000000G',
    '',
  ])
    assert.is(parseSegment(bad), undefined, bad)
})

test('names, next and index: uppercase; seg FF rolls over to the next log', () => {
  assert.is(segmentName(1, 0xab, 0xc), '00000001000000AB0000000C')
  assert.throws(() => segmentName(1, -1, 0), RangeError)
  const ff = parseSegment('0000000100000000000000FF')
  assert.ok(ff)
  assert.is(nextSegment(ff).name, '000000010000000100000000')
  assert.is(nextSegment(nextSegment(ff)).name, '000000010000000100000001')
  assert.is(segmentIndex(ff), 0xff)
  assert.is(segmentIndex(nextSegment(ff)), 0x100)
  // 64 MiB segments: 64 per log, so seg 3F is a log's last.
  const last64 = parseSegment('00000001000000050000003F')
  assert.ok(last64)
  assert.is(nextSegment(last64, 64).name, '000000010000000600000000')
})

test('segmentsPerLog: 256 for 16 MiB, 64 for 64 MiB; a size not a power of two from 1 MiB to 1 GiB is refused', () => {
  assert.is(segmentsPerLog(), 256)
  assert.is(segmentsPerLog(16 * 1024 * 1024), 256)
  assert.is(segmentsPerLog(64 * 1024 * 1024), 64)
  assert.is(segmentsPerLog(1024 * 1024), 4096)
  assert.is(segmentsPerLog(1024 * 1024 * 1024), 4)
  for (const bad of [0, 512 * 1024, 24 * 1024 * 1024, 2 * 1024 * 1024 * 1024, 16.5 * 1024 * 1024, Number.NaN])
    assert.throws(() => segmentsPerLog(bad), RangeError, String(bad))
})

test('log rollover (…000000FF, then the next log’s …00000000) is not a gap; unparseable names are ignored', () => {
  const report = checkChain(
    [
      ...names([
        [0, 0xfd],
        [0, 0xfe],
        [0, 0xff],
        [1, 0],
        [1, 1],
      ]),
      '00000001.history',
      'garbage',
    ],
    {},
  )
  assert.equal(report, {
    first: '0000000100000000000000FD',
    last: '000000010000000100000001',
    count: 5,
    gaps: [],
    timelines: [1],
  })
  assert.is(describeGaps(report), '')
})

test('a one-segment gap, in any input order', () => {
  const report = checkChain(
    names([
      [0, 5],
      [0, 3],
      [0, 2],
    ]),
    {},
  )
  assert.equal(report.gaps, [
    { after: '000000010000000000000003', before: '000000010000000000000005', missing: 1 },
  ])
  assert.is(report.count, 3)
  assert.is(
    describeGaps(report),
    '1 gap (1 segment missing): after 000000010000000000000003 up to 000000010000000000000005',
  )
})

test('a multi-segment gap across a log boundary', () => {
  // Missing: 0/FE, 0/FF, 1/00, 1/01.
  const report = checkChain(
    names([
      [0, 0xfc],
      [0, 0xfd],
      [1, 2],
    ]),
    {},
  )
  assert.equal(report.gaps, [
    { after: '0000000100000000000000FD', before: '000000010000000100000002', missing: 4 },
  ])
  // With 64 MiB segments (64 per log), 0/3F is a log's last: missing 0/3F and 1/00.
  const big = checkChain(
    names([
      [0, 0x3e],
      [1, 1],
    ]),
    { perLog: 64 },
  )
  assert.equal(big.gaps, [
    { after: '00000001000000000000003E', before: '000000010000000100000001', missing: 2 },
  ])
})

test('duplicates (also in another case) count once', () => {
  const report = checkChain(
    [
      ...names([
        [0, 1],
        [0, 2],
        [0, 2],
        [0, 3],
      ]),
      '00000001000000000000000a',
      '00000001000000000000000A',
    ],
    {},
  )
  assert.is(report.count, 4)
  assert.is(report.last, '00000001000000000000000A')
  assert.equal(report.gaps, [
    { after: '000000010000000000000003', before: '00000001000000000000000A', missing: 6 },
  ])
})

test('from: earlier segments are ignored; a chain starting after from is a gap from the segment before it', () => {
  const present = names([
    [0, 0xf0],
    [0, 0xfe],
    [1, 3],
    [1, 4],
  ])
  const late = checkChain(present, { from: '0000000100000000000000FF' })
  assert.equal(late.gaps, [
    { after: '0000000100000000000000FE', before: '000000010000000100000003', missing: 4 },
  ])
  assert.is(late.first, '000000010000000100000003')
  assert.is(late.count, 2)
  // Starting right at a present segment: no gap, and the hole before from is not looked at.
  const onTime = checkChain(present, { from: '000000010000000100000003' })
  assert.equal(onTime.gaps, [])
  assert.is(onTime.first, '000000010000000100000003')
  // from the very first segment of all: nothing comes before it.
  const fromZero = checkChain(names([[0, 2]]), { from: '000000010000000000000000' })
  assert.equal(fromZero.gaps, [{ after: '', before: '000000010000000000000002', missing: 2 }])
  assert.is(describeGaps(fromZero), '1 gap (2 segments missing): up to 000000010000000000000002')
  // Nothing at or after from: nothing counted, no gap to bound.
  assert.equal(checkChain(present, { from: '000000010000000200000000' }), {
    count: 0,
    gaps: [],
    timelines: [1],
  })
  assert.throws(() => checkChain(present, { from: '00000001.history' }), RangeError)
})

test('timeline switch: only the highest timeline is checked, every timeline is listed', () => {
  // Timeline 1 has a hole (0/03, 0/04) and runs to 0/08; timeline 2 carries on from 0/08 unbroken.
  const report = checkChain(
    [
      ...names([
        [0, 1],
        [0, 2],
        [0, 5],
        [0, 6],
        [0, 7],
      ]),
      '000000010000000000000008.partial',
      '00000002.history',
      ...names(
        [
          [0, 8],
          [0, 9],
          [0, 10],
        ],
        2,
      ),
    ],
    {},
  )
  assert.equal(report, {
    first: '000000020000000000000008',
    last: '00000002000000000000000A',
    count: 3,
    gaps: [],
    timelines: [1, 2],
  })
  // A from on the older timeline does not make the newer timeline's start a gap.
  assert.equal(
    checkChain(names([[0, 1]]).concat(names([[0, 8]], 2)), { from: '000000010000000000000001' }).gaps,
    [],
  )
})

test('describeGaps lists at most max gaps, then how many more', () => {
  // Holes of 1, 2, 1, 3 and 1 segments.
  const report = checkChain(
    names([
      [0, 1],
      [0, 3],
      [0, 6],
      [0, 8],
      [0, 12],
      [0, 14],
    ]),
    {},
  )
  assert.is(report.gaps.length, 5)
  assert.is(
    describeGaps(report),
    '5 gaps (8 segments missing): after 000000010000000000000001 up to 000000010000000000000003; ' +
      'after 000000010000000000000003 up to 000000010000000000000006; ' +
      'after 000000010000000000000006 up to 000000010000000000000008; and 2 more',
  )
  assert.is(
    describeGaps(report, 1),
    '5 gaps (8 segments missing): after 000000010000000000000001 up to 000000010000000000000003; and 4 more',
  )
  assert.is(describeGaps(report, 5).includes('more'), false)
})

test.run()

import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { recordFiles, recordKey, runName } from '../../lib/backup/records.ts'
import { suite } from '../harness.ts'

const test = suite('ship-records: which files, under which keys')

test("the audit trail and the env's own state files, not another env's, not a half-written .tmp", () => {
  const root = mkdtempSync(join(tmpdir(), 'ce-records-'))
  const audit = join(root, 'audit')
  const state = join(root, 'state')
  mkdirSync(audit)
  mkdirSync(state)
  writeFileSync(join(audit, 'audit.jsonl'), '{}\n')
  for (const f of ['emergency-production.json', 'emergency-staging.json', 'emergency-production.json.tmp'])
    writeFileSync(join(state, f), '{}')
  assert.equal(
    recordFiles('production', { audit, state }, existsSync, readdirSync).map((f) => f.name),
    ['audit/audit.jsonl', 'state/emergency-production.json'],
  )
  // No directories at all (a laptop that never ran anything): nothing.
  assert.equal(
    recordFiles('production', { audit: join(root, 'x'), state: join(root, 'y') }, existsSync, readdirSync),
    [],
  )
})

test('keys: records/<env>/<day>/<run>/<name>; the run is RUN_ID, else the Actions run and attempt, else the time', () => {
  const now = new Date('2026-12-06T02:20:07.123Z')
  assert.is(runName('r1', {}), 'r1')
  assert.is(runName(undefined, { GITHUB_RUN_ID: '991', GITHUB_RUN_ATTEMPT: '2' }), '991-2')
  assert.is(runName(undefined, {}, now), '2026-12-06T02-20-07Z')
  assert.is(
    recordKey('production', '991-2', 'state/emergency-production.json', now),
    'records/production/2026-12-06/991-2/state/emergency-production.json',
  )
  assert.throws(() => recordKey('production', '..', 'audit/audit.jsonl', now), /has a \. or \.\. segment/)
})

test.run()

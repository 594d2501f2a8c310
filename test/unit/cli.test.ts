import * as assert from 'uvu/assert'
import { InputError } from '../../lib/report/errors.ts'
import { parseArgs } from '../../lib/run/cli.ts'
import { suite } from '../harness.ts'

const test = suite('arguments')
const specs = [{ name: 'release', makeVar: 'RELEASE', value: true, help: 'release id' }]

test('flags, values and both value forms', () => {
  assert.equal(parseArgs(['--env', 'qa', '--dry-run', '--release=abc'], specs), {
    env: 'qa',
    'dry-run': true,
    release: 'abc',
  })
})

test('unknown arguments and missing values are all reported, with usage', () => {
  try {
    parseArgs(['--evn', 'qa', '--release', '--yes=1', 'stray'], specs)
    assert.unreachable('should have thrown')
  } catch (err) {
    assert.instance(err, InputError)
    const msg = (err as Error).message
    assert.match(msg, 'unknown argument "--evn"')
    assert.match(msg, 'unknown argument "qa"')
    assert.match(msg, '--release needs a value')
    assert.match(msg, '--yes takes no value')
    assert.match(msg, 'unknown argument "stray"')
    assert.match(msg, 'usage: --release <value> (make: RELEASE): release id')
  }
})

test.run()

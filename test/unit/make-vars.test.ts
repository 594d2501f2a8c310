import * as assert from 'uvu/assert'
import { InputError } from '../../lib/report/errors.ts'
import { argvFromVars, varsFromWords } from '../../lib/run/make-vars.ts'
import { deploy } from '../../runbooks/deploy.ts'
import { emergency } from '../../runbooks/emergency.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { suite } from '../harness.ts'

const test = suite('make variables to runbook arguments (runbooks/run.ts)')

test('values become --name=value, whatever they hold: a value is never shell text', () => {
  const release = 'v1"; touch /tmp/x; echo "'
  assert.equal(argvFromVars(deploy.options ?? [], { ENV: 'staging', RELEASE: release }), [
    '--env=staging',
    `--release=${release}`,
  ])
})

test('flags: 1/yes/true set them, 0/no/false or empty leave them off, anything else is an error naming the variable', () => {
  assert.equal(argvFromVars([], { ENV: 'qa', DRY_RUN: '1', YES: 'yes' }), ['--env=qa', '--dry-run', '--yes'])
  assert.equal(argvFromVars([], { ENV: 'qa', DRY_RUN: '0', YES: '' }), ['--env=qa'])
  const err = (() => {
    try {
      argvFromVars([], { YES: 'maybe' })
    } catch (e) {
      return e
    }
  })()
  assert.instance(err, InputError)
  assert.match((err as Error).message, 'YES="maybe": expected YES=1')
})

test("each runbook's own variables: HOST is setup-server's --host but emergency's --address", () => {
  assert.equal(argvFromVars(setupServer.options ?? [], { ENV: 'p', HOST: 'web-2' }), [
    '--env=p',
    '--host=web-2',
  ])
  assert.equal(argvFromVars(emergency.options ?? [], { ENV: 'p', HOST: '10.0.0.9', CREATE: '' }), [
    '--env=p',
    '--address=10.0.0.9',
  ])
})

test('VAR=value words override the environment; a stray word is an error', () => {
  const vars = varsFromWords(['ENV=staging', 'RELEASE=a=b c'], { ENV: 'production', PATH: '/bin' })
  assert.is(vars.ENV, 'staging')
  assert.is(vars.RELEASE, 'a=b c')
  assert.throws(() => varsFromWords(['--env', 'x'], {}), /"--env" is not VAR=value/)
})

test.run()

import * as assert from 'uvu/assert'
import { execCommand, parseService, splitWords } from '../../lib/commands/exec.ts'
import { InputError } from '../../lib/report/errors.ts'
import { suite } from '../harness.ts'
import { withFakeDocker } from '../support/fake-docker.ts'

// make exec: what it accepts, and its host script run by bash against a stand-in for the docker CLI.
const test = suite('exec: request and host script')

test('CMD split into words like a shell, without expansion; unbalanced quotes and empty refused', () => {
  assert.equal(splitWords('api --version'), ['api', '--version'])
  assert.equal(splitWords(`  psql -c 'select 1; drop x' "a \\"b\\" c" d\\ e  `), [
    'psql',
    '-c',
    'select 1; drop x',
    'a "b" c',
    'd e',
  ])
  assert.equal(splitWords('echo $HOME `id` $(id) ; rm'), ['echo', '$HOME', '`id`', '$(id)', ';', 'rm'])
  assert.equal(splitWords("''"), [''])
  assert.throws(
    () => splitWords("echo 'oops"),
    (e: Error) => e instanceof InputError && /a ' is not closed/.test(e.message),
  )
  assert.throws(() => splitWords('echo "oops'), /a " is not closed/)
  assert.throws(() => splitWords('   '), /CMD is required/)
})

test('SERVICE: required, one of the stack', () => {
  assert.is(parseService('redis'), 'redis')
  assert.throws(() => parseService(undefined), /SERVICE is required/)
  assert.throws(() => parseService('nginx'), /SERVICE=nginx: not a service of the stack/)
})

// A stand-in for `docker`: the data project's postgres, and a swarm task of the api.
const run = withFakeDocker(`#!/bin/bash
case "$1" in
  ps) case "$*" in
        *project=ce-x-data*service=postgres*) echo pg1 ;;
        *swarm.service.name=ce-x_api*) echo task1 ;;
      esac ;;
  inspect) echo "/name-of-\${@: -1}" ;;
  exec) shift; printf '[%s]' "$@"; echo ;;
esac
`)

test('the host script: the right container, each word passed as one argument, exit 3 when none runs', () => {
  const pg = run(execCommand('x', 'postgres', ['psql', '-c', "select 'a b'; $(id)"]))
  assert.equal(pg, { code: 0, out: "[pg1][psql][-c][select 'a b'; $(id)]\n" })
  // An app service: the live colour's container, else (no colour: a swarm node) the stack's task.
  assert.equal(run(execCommand('x', 'api', ['api', '--version'])), {
    code: 0,
    out: '[task1][api][--version]\n',
  })
  const none = run(execCommand('x', 'redis', ['redis-cli', 'ping']))
  assert.is(none.code, 3)
  assert.match(none.out, 'no running redis container of x on this host')
  const cmd = execCommand('x', 'saas', ['saas'])
  assert.match(cmd, 'blue) c=$(docker ps -q --filter label=com.docker.compose.project=ce-x-blue')
  assert.match(cmd, 'green) c=$(docker ps -q --filter label=com.docker.compose.project=ce-x-green')
})

test.run()

import * as assert from 'uvu/assert'
import {
  breakLock,
  ownerText,
  parseOwner,
  readLock,
  releaseLock,
  takeLock,
  touchLock,
} from '../../lib/commands/lock.ts'
import { describeHolder, holderGone, pidAlive, STALE_AFTER_S } from '../../lib/run/lock.ts'
import { suite } from '../harness.ts'

const test = suite('deploy lock')
const DIR = '/srv/conciliaextrato/qa/deploy.lock'

test('take: mkdir is the atomic test; a held lock reports its owner and heartbeat age', () => {
  const cmd = takeLock(DIR)
  assert.match(cmd, 'mkdir -p /srv/conciliaextrato/qa\n')
  assert.match(
    cmd,
    `if mkdir ${DIR} 2>/dev/null; then cat > ${DIR}/owner && touch ${DIR}/heartbeat && echo taken`,
  )
  assert.match(cmd, `else cat > /dev/null; echo held; cat ${DIR}/owner 2>/dev/null; echo "heartbeat_age_s=`)
})

test('heartbeat and release act only on a lock that is still ours', () => {
  assert.is(touchLock(DIR, 'abc'), `grep -x token=abc ${DIR}/owner >/dev/null && touch ${DIR}/heartbeat`)
  assert.is(
    releaseLock(DIR, 'abc'),
    `if grep -x token=abc ${DIR}/owner >/dev/null 2>&1; then rm -rf ${DIR}; echo released; else echo not-ours; fi`,
  )
  assert.match(readLock(DIR), `if [ -d ${DIR} ]; then echo held;`)
  assert.match(breakLock(DIR), `; rm -rf ${DIR}`)
})

test('owner text round-trips, one field per line, newlines flattened', () => {
  const owner = {
    who: 'Ana Souza',
    runbook: 'deploy',
    release: 'abc123',
    pid: 4242,
    machine: 'laptop\nevil=1',
    boot_id: 'b00t',
    started_at: '2026-11-26T10:00:00.000Z',
    ci_run_url: '',
    token: 't0k',
  }
  const text = ownerText(owner)
  assert.is(text.split('\n').length, 10)
  const parsed = parseOwner(text)
  assert.is(parsed.who, 'Ana Souza')
  assert.is(parsed.machine, 'laptop evil=1')
  assert.is(parsed.pid, '4242')
  assert.is(parsed.evil, undefined)
})

test('the holder message says who, what, since when, and whether it looks alive', () => {
  const owner = {
    who: 'ana',
    runbook: 'deploy',
    release: 'abc123',
    pid: '7',
    machine: 'lap',
    started_at: 'T',
    ci_run_url: 'https://ci/run/1',
  }
  const alive = describeHolder('web-1', owner, 4, 'staging')
  assert.match(alive, 'The deploy lock on web-1 is held by ana (deploy of abc123, pid 7 on lap, since T).')
  assert.match(alive, 'CI run: https://ci/run/1')
  assert.match(alive, 'Its heartbeat is 4 s old: that run is alive. Wait for it to finish.')
  const stale = describeHolder('web-1', owner, STALE_AFTER_S + 1, 'staging')
  assert.match(stale, `Its heartbeat stopped ${STALE_AFTER_S + 1} s ago: it looks stale.`)
  assert.match(stale, '`make unlock ENV=staging`')
})

test('a holder that ran here, this boot, whose pid is gone, is stale at once; anything uncertain is not', () => {
  const self = { machine: 'lap', bootId: 'boot-1' }
  const owner = { pid: '4242', machine: 'lap', boot_id: 'boot-1', token: 't' }
  const dead = () => false
  const alive = () => true
  assert.is(holderGone(owner, self, dead), true)
  assert.is(holderGone(owner, self, alive), false, 'a live process (or a reused pid) holds it')
  assert.is(holderGone({ ...owner, machine: 'ci-runner' }, self, dead), false, 'another machine')
  assert.is(
    holderGone({ ...owner, boot_id: 'boot-0' }, self, dead),
    false,
    'another boot: the heartbeat decides',
  )
  assert.is(holderGone({ ...owner, boot_id: '' }, { ...self, bootId: '' }, dead), false, 'no boot id known')
  assert.is(
    holderGone({ pid: '4242', machine: 'lap', token: 't' }, self, dead),
    false,
    'an owner from before boot ids',
  )
  assert.is(holderGone({ ...owner, pid: 'x' }, self, dead), false)
  assert.is(holderGone({ ...owner, pid: String(process.pid) }, self, dead), false, 'never this very run')
})

test('pidAlive: this process is alive, an unused pid is not', () => {
  assert.is(pidAlive(process.pid), true)
  assert.is(pidAlive(2 ** 22 + 1), false)
})

test.run()

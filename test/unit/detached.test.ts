import * as assert from 'uvu/assert'
import {
  detachedCleanup,
  detachedLog,
  detachedState,
  detachedUnit,
  parseDetachedState,
  startDetached,
} from '../../lib/commands/detached.ts'
import { suite } from '../harness.ts'

const test = suite('detached root commands: a transient systemd unit that outlives the SSH session')

test('the commands, as strings', () => {
  assert.is(detachedUnit('security-updates', 1765130000000), 'ce-security-updates-1765130000000')
  assert.is(
    startDetached('ce-x-1', 'the security updates', "apt-get install -y 'openssl'"),
    `systemd-run --unit=ce-x-1 --description='the security updates' --property=RemainAfterExit=yes --quiet /bin/sh -c 'apt-get install -y '\\''openssl'\\'''`,
  )
  assert.is(
    detachedState('ce-x-1'),
    'systemctl show -p LoadState -p ActiveState -p SubState -p Result -p ExecMainStatus ce-x-1',
  )
  assert.is(detachedLog('ce-x-1'), 'journalctl -u ce-x-1 -n 20 --no-pager -o cat')
  assert.match(detachedCleanup('ce-x-1'), 'systemctl stop ce-x-1')
  assert.match(detachedCleanup('ce-x-1'), 'systemctl reset-failed ce-x-1')
})

test('its state: running, exited well, exited badly, failed; a unit not there yet is not done', () => {
  const show = (a: string, s: string, r: string, e: string) =>
    `ActiveState=${a}\nSubState=${s}\nResult=${r}\nExecMainStatus=${e}\n`
  assert.equal(parseDetachedState(show('active', 'running', 'success', '0')), { done: false })
  assert.equal(parseDetachedState(show('activating', 'start', 'success', '0')), { done: false })
  assert.equal(parseDetachedState(show('inactive', 'dead', 'success', '0')), { done: false })
  assert.equal(parseDetachedState(`LoadState=not-found\n${show('inactive', 'dead', 'success', '0')}`), {
    done: true,
    ok: false,
    status: 'the unit is gone (stopped, or the host rebooted)',
  })
  assert.equal(parseDetachedState(show('active', 'exited', 'success', '0')), {
    done: true,
    ok: true,
    status: 'exit 0',
  })
  assert.equal(parseDetachedState(show('failed', 'failed', 'exit-code', '100')), {
    done: true,
    ok: false,
    status: 'exit-code, exit 100',
  })
})

test.run()

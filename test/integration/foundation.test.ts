import { resolve } from 'node:path'
import * as assert from 'uvu/assert'
import { print } from '../../lib/report/output.ts'
import { clearSecrets } from '../../lib/report/redact.ts'
import { takeDeployLock } from '../../lib/run/lock.ts'
import type { RunbookSpec } from '../../lib/run/runbook.ts'
import { status } from '../../runbooks/status.ts'
import { unlock } from '../../runbooks/unlock.ts'
import { suite } from '../harness.ts'
import { group, LABEL, regenerateHostKeys, removeGroup, startDroplet } from '../sandbox/droplets.ts'
import { sh } from '../sandbox/engine.ts'
import { buildDropletImage } from '../sandbox/images.ts'
import {
  auditRecords,
  createTestBed,
  destroyTestBed,
  onDroplet,
  runCaptured,
  spawnScript,
  type TestBed,
  writeEnv,
} from '../support/test-bed.ts'

const test = suite('foundation on sandbox droplets', { timeoutS: 120 })
const lockOnly: RunbookSpec = {
  name: 'lock-only',
  mutates: true,
  needs: () => ['ssh'],
  steps: [
    {
      title: 'Take the deploy lock',
      async run(ctx) {
        await takeDeployLock(ctx, 'lock-only')
        return 'ok'
      },
    },
  ],
}
const _ROOT = resolve(import.meta.dirname, '..', '..')
let bed: TestBed

test.before(async () => {
  bed = await createTestBed('found', ['web-1', 'web-2'])
  writeEnv(bed, 'it')
})

test.after(async () => {
  await destroyTestBed(bed)
  clearSecrets()
})

test('status reads every host over real SSH and leaves an audit record on each', async () => {
  const { code, out } = await runCaptured(status, ['--env', 'it'])
  assert.is(code, 0, out)
  assert.match(out, /host\s+web-1/)
  assert.match(out, /host\s+web-2/)
  assert.match(out, /os\s+Debian GNU\/Linux 12 \(bookworm\)/)
  assert.match(out, /docker\s+none/)
  assert.match(out, /release\s+none/)
  assert.match(out, /lock\s+none/)
  const local = auditRecords(bed).at(-1)
  assert.is(local?.outcome, 'success')
  assert.equal(local?.hosts, ['web-1', 'web-2'])
  for (const d of bed.droplets) {
    const remote = JSON.parse((await onDroplet(d, 'tail -n1 /var/log/conciliaextrato/audit.log')).trim())
    assert.is(remote.runbook, 'status')
    assert.is(remote.started_at, local?.started_at)
  }
  const again = await runCaptured(status, ['--env', 'it'])
  assert.match(again.out, /last audit records:\n {2}\{"ts":.*"runbook":"status"/)
})

test('a secret in a failing command never reaches the output or any audit record', async () => {
  process.env.DEMO_TOKEN = 'tok-5ecr3t-zz9'
  writeEnv(bed, 'it-secret', { secrets: ['DEMO_TOKEN'] })
  const leaky: RunbookSpec = {
    name: 'leaky',
    mutates: true,
    needs: () => ['ssh', 'secret:DEMO_TOKEN'],
    steps: [
      {
        title: 'Use the token',
        async run(ctx) {
          await ctx.hosts[0]?.exec(
            `echo "using ${ctx.secrets.DEMO_TOKEN}"; echo "denied for ${ctx.secrets.DEMO_TOKEN}" >&2; exit 3`,
          )
          return 'changed'
        },
      },
    ],
  }
  const { code, out } = await runCaptured(leaky, ['--env', 'it-secret'])
  assert.is(code, 1)
  assert.not.match(out, 'tok-5ecr3t-zz9')
  assert.match(out, 'Step 2 "Use the token" failed')
  assert.match(out, 'exit status: 3')
  assert.match(out, 'denied for [secret:DEMO_TOKEN]')
  assert.match(out, 'command:     echo "using [secret:DEMO_TOKEN]"')
  const local = auditRecords(bed).at(-1)
  assert.is(local?.outcome, 'failed')
  assert.is(local?.failed_step, 'Use the token')
  assert.not.match(JSON.stringify(local), 'tok-5ecr3t-zz9')
  const remote = await onDroplet(bed.droplets[0] as never, 'cat /var/log/conciliaextrato/audit.log')
  assert.not.match(remote, 'tok-5ecr3t-zz9')
  assert.match(remote, '"runbook":"leaky"')
  delete process.env.DEMO_TOKEN
})

test('--dry-run prints what it would run and changes nothing', async () => {
  const marker: RunbookSpec = {
    name: 'marker',
    mutates: true,
    needs: () => ['ssh'],
    steps: [
      {
        title: 'Create a marker',
        async run(ctx) {
          await ctx.hosts[0]?.exec('touch /root/marker')
          return 'changed'
        },
      },
    ],
  }
  const before = await onDroplet(bed.droplets[0] as never, 'wc -l < /var/log/conciliaextrato/audit.log')
  const { code, out } = await runCaptured(marker, ['--env', 'it', '--dry-run'])
  assert.is(code, 0, out)
  assert.match(out, 'DRY RUN: nothing will change')
  assert.match(out, '[web-1] would run: touch /root/marker')
  assert.match(out, /Create a marker\s+dry-run/)
  assert.is(
    (await onDroplet(bed.droplets[0] as never, 'test -e /root/marker && echo yes || echo no')).trim(),
    'no',
  )
  assert.is(await onDroplet(bed.droplets[0] as never, 'wc -l < /var/log/conciliaextrato/audit.log'), before)
  assert.is(auditRecords(bed).at(-1)?.outcome, 'dry-run')
})

test('a command past its timeout is stopped on the host and reported', async () => {
  const slow: RunbookSpec = {
    name: 'slow',
    mutates: false,
    needs: () => ['ssh'],
    steps: [
      {
        title: 'Wait for something that never comes',
        next: 'Look at what the command waits for.',
        async run(ctx) {
          await ctx.hosts[0]?.exec('sleep 97', { probe: true, timeoutS: 2 })
          return 'ok'
        },
      },
    ],
  }
  const { code, out } = await runCaptured(slow, ['--env', 'it'])
  assert.is(code, 1)
  assert.match(out, 'exit status: timed out after 2s')
  assert.match(out, 'command:     sleep 97')
  assert.match(out, 'next:        Look at what the command waits for.')
  const left = await onDroplet(bed.droplets[0] as never, 'pgrep -fx "sleep 97" || true')
  assert.is(left.trim(), '')
})

test('uploads keep dotfiles, set the exact mode and owner, and replace atomically', async () => {
  const upload: RunbookSpec = {
    name: 'upload',
    mutates: true,
    needs: () => ['ssh'],
    steps: [
      {
        title: 'Upload the app env file',
        async run(ctx) {
          await ctx.hosts[0]?.upload('/srv/it/.env', 'A=1\nB=two words\n', '0600', 'nobody:nogroup')
          await ctx.hosts[0]?.upload('/srv/it/.env', 'A=2\n', '0600', 'nobody:nogroup')
          await ctx.hosts[0]?.upload('/srv/it/.profile', 'export X=1\n', '0640')
          return 'changed'
        },
      },
    ],
  }
  const { code, out } = await runCaptured(upload, ['--env', 'it'])
  assert.is(code, 0, out)
  const d = bed.droplets[0] as never
  assert.is((await onDroplet(d, 'stat -c "%a %U" /srv/it/.env')).trim(), '600 nobody')
  assert.is((await onDroplet(d, 'stat -c "%a %U" /srv/it/.profile')).trim(), '640 root')
  assert.is(await onDroplet(d, 'cat /srv/it/.env'), 'A=2\n')
  assert.is((await onDroplet(d, 'ls -A /srv/it')).trim(), '.env\n.profile')
})

test('a host whose key changed is refused, with both fingerprints', async () => {
  const old = bed.droplets[1]
  if (!old) throw new Error('no droplet')
  const rebuilt = await regenerateHostKeys(old)
  assert.is.not(rebuilt.hostKey, old.hostKey)
  const { code, out } = await runCaptured(status, ['--env', 'it'])
  assert.is(code, 3)
  assert.match(out, 'Host key of web-2')
  assert.match(out, `expected:  ${old.hostKey}`)
  assert.match(out, `presented: ${rebuilt.hostKey}`)
  assert.match(out, 'check the new key out-of-band')
  bed.droplets[1] = rebuilt
  writeEnv(bed, 'it')
})

function spawnLongStep() {
  const run = spawnScript('test/integration/scripts/long-step.ts', ['--env', 'it'])
  return { ...run, started: run.until('LONG-COMMAND-STARTED') }
}

test('an SSH connection killed mid-command is a failed step and a clean exit', async () => {
  const run = spawnLongStep()
  await run.started
  await new Promise((r) => setTimeout(r, 500))
  await onDroplet(bed.droplets[0] as never, 'pkill -KILL -f "[s]shd: root" || true')
  const code = await run.exit
  const out = run.output()
  assert.is(code, 1, out)
  assert.match(out, 'Step 3 "Run a long command" failed')
  assert.match(out, /exit status: connection lost/)
  assert.not.match(out, /Unhandled|node:internal|at .*\.js:\d+/)
  assert.is(auditRecords(bed).at(-1)?.outcome, 'failed')
  // The cleanup reconnected and released the lock: the next run is not kept waiting.
  assert.match(out, 'web-1: the SSH connection was lost; reconnecting for the cleanup')
  assert.match(out, 'web-1: reconnected')
  assert.is(await lockState(), 'free')
})

test('a SIGKILLed run: its lock (pid gone, same machine) is stale at once, broken by the next run, audited', async () => {
  const run = spawnLongStep()
  await run.started
  run.child.kill('SIGKILL')
  await run.exit
  assert.is(await lockState(), 'held')
  const next = await runCaptured(lockOnly, ['--env', 'it'])
  assert.is(next.code, 0, next.out)
  assert.match(
    next.out,
    /web-1: the lock's holder \(long-step-test, pid \d+ on this machine\) is no longer running: its lock was stale, broken/,
  )
  assert.ok(
    ((auditRecords(bed).at(-1)?.events ?? []) as string[]).some((e) =>
      e.includes('broke a stale lock of long-step-test'),
    ),
  )
  assert.is(await lockState(), 'free')
})

test('a lock held from another machine is refused, named, shown by status and broken by unlock', async () => {
  const owner =
    'who=ana\nrunbook=deploy\nrelease=abc\npid=1\nmachine=ci-runner-7\nboot_id=x\nstarted_at=T\nci_run_url=\ntoken=elsewhere\n'
  await onDroplet(
    bed.droplets[0] as never,
    `mkdir -p /srv/conciliaextrato/it/deploy.lock && printf '${owner}' > /srv/conciliaextrato/it/deploy.lock/owner && touch /srv/conciliaextrato/it/deploy.lock/heartbeat`,
  )
  const second = await runCaptured(lockOnly, ['--env', 'it'])
  assert.is(second.code, 3, second.out)
  assert.match(
    second.out,
    'The deploy lock on web-1 is held by ana (deploy of abc, pid 1 on ci-runner-7, since T).',
  )
  assert.match(second.out, /heartbeat is \d+ s old: that run is alive/)
  // status shows the holder; unlock breaks it (audited) and says whom it broke.
  assert.match((await runCaptured(status, ['--env', 'it'])).out, /lock\s+held by ana \(deploy abc\)/)
  const broken = await runCaptured(unlock, ['--env', 'it'])
  assert.is(broken.code, 0, broken.out)
  assert.match(broken.out, 'web-1: lock broken')
  assert.is(auditRecords(bed).at(-1)?.runbook, 'unlock')
  assert.is(await lockState(), 'free')
})

test('SIGTERM mid-step runs the cleanups (lock released), audits and exits 143', async () => {
  const run = spawnLongStep()
  await run.started
  run.child.kill('SIGTERM')
  const code = await run.exit
  const out = run.output()
  assert.is(code, 143, out)
  assert.match(out, 'SIGTERM received during "Run a long command"')
  assert.is(await lockState(), 'free')
  const last = auditRecords(bed).at(-1)
  assert.is(last?.outcome, 'interrupted')
  assert.is(last?.failed_step, 'Run a long command')
})

test('Ctrl-C twice: the remote command is stopped, the second signal is absorbed, cleanup and audit still happen', async () => {
  // Earlier tests' runs that could not stop theirs (a killed connection, SIGKILL): not this run's.
  await onDroplet(bed.droplets[0] as never, 'pkill -f "^sleep 45$" || true')
  const run = spawnLongStep()
  await run.started
  run.child.kill('SIGINT')
  await run.until('SLOW-CLEANUP-STARTED')
  run.child.kill('SIGINT')
  const code = await run.exit
  const out = run.output()
  assert.is(code, 130, out)
  assert.match(out, 'SIGINT received during "Run a long command"')
  assert.match(out, 'SIGINT again: still cleaning up')
  assert.is(await lockState(), 'free', `the deploy lock after the run:\n${out}`)
  // The in-flight `sleep 45` on the host was stopped, not left running beside the cleanup (even when
  // the signal came before it had started on the host: the stop is sent again until it has ended).
  const left = await onDroplet(bed.droplets[0] as never, 'pgrep -fc "^sleep 45$" || true')
  assert.is(left.trim(), '0', `sleep 45 still running on the host:\n${out}`)
  const last = auditRecords(bed).at(-1)
  assert.is(last?.outcome, 'interrupted', JSON.stringify(last))
  assert.is(last?.failed_step, 'Run a long command', JSON.stringify(last))
})

test('a second run is refused at once while the first holds the lock, then the lock is free again', async () => {
  const first = spawnLongStep()
  await first.started
  const t0 = Date.now()
  const second = await runCaptured(lockOnly, ['--env', 'it'])
  assert.is(second.code, 3)
  assert.ok(Date.now() - t0 < 10_000, 'the second run waited instead of failing fast')
  assert.match(second.out, 'The deploy lock on web-1 is held by')
  assert.match(second.out, 'Nothing was changed by this run.')
  first.child.kill('SIGINT')
  assert.is(await first.exit, 130)
  const third = await runCaptured(lockOnly, ['--env', 'it'])
  assert.is(third.code, 0, third.out)
  assert.is(await lockState(), 'free')
})

function lockState(): Promise<string> {
  const probe = 'test -d /srv/conciliaextrato/it/deploy.lock && echo held || echo free'
  return onDroplet(bed.droplets[0] as never, probe).then((s) => s.trim())
}

test('removing a droplet group leaves no container or network behind', async () => {
  const g = group(`t${process.pid}-down`, bed.group.dir)
  await startDroplet(g, 'tmp-1', await buildDropletImage())
  await removeGroup(g.id)
  const filter = `label=${LABEL}=${g.id}`
  assert.is((await sh`docker ps -aq --filter ${filter}`).stdout.trim(), '')
  assert.is((await sh`docker network ls -q --filter ${filter}`).stdout.trim(), '')
  print('')
})

test.run()

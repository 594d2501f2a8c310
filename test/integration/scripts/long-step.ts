/**
 * A runbook that takes the real deploy lock and runs one long remote command, for the tests that
 * kill its connection, signal it, or run a second one beside it.
 */

import { print } from '../../../lib/report/output.ts'
import { takeDeployLock } from '../../../lib/run/lock.ts'
import { main, type RunbookSpec } from '../../../lib/run/runbook.ts'

const spec: RunbookSpec = {
  name: 'long-step-test',
  mutates: true,
  needs: () => ['ssh'],
  steps: [
    {
      title: 'Take the deploy lock',
      async run(ctx) {
        ctx.release = 'test-release'
        // A cleanup that takes a while on the host (as stopping a colour does): a second signal lands in it.
        ctx.onCleanup(async () => {
          print('SLOW-CLEANUP-STARTED')
          await ctx.hosts[0]?.exec('sleep 3', { timeoutS: 20 })
        })
        await takeDeployLock(ctx, 'long-step-test')
        return 'changed'
      },
    },
    {
      title: 'Run a long command',
      next: 'Run it again.',
      async run(ctx) {
        print('LONG-COMMAND-STARTED')
        await ctx.hosts[0]?.exec('sleep 45')
        return 'changed'
      },
    },
  ],
}

await main(spec)

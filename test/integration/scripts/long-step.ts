/**
 * A runbook with one long remote command, for the tests that kill its connection or signal it.
 * It takes a "lock" on the host and registers its release as a cleanup, like deploy does.
 */
import { print } from '../../../lib/output.ts'
import { main, type RunbookSpec } from '../../../lib/runbook.ts'

const spec: RunbookSpec = {
  name: 'long-step-test',
  mutates: true,
  steps: [
    {
      title: 'Hold a lock and run a long command',
      next: 'Run it again.',
      async run(ctx) {
        const host = ctx.hosts[0]
        if (!host) throw new Error('no host')
        await host.exec('mkdir /tmp/test-lock')
        ctx.onCleanup(async () => {
          await host.exec('rmdir /tmp/test-lock')
        })
        print('LONG-COMMAND-STARTED')
        await host.exec('sleep 45')
        return 'changed'
      },
    },
  ],
}

await main(spec)

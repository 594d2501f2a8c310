/**
 * verify-server — checks every promise setup-server makes, on the host as it is now. Read-only.
 *
 * When: after setup-server (it runs this as its last step), after any manual change on a host, in an audit.
 * Changes: nothing. Abort: Ctrl-C. On-call page: docs/runbooks/setup-server.md#verify
 */
import { HOST_OPTION } from '../lib/run/cli.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { spareOperatorFromFail2ban } from '../lib/setup/firewall.ts'
import { verifyServer as verifyStep } from '../lib/setup/verify.ts'

export const verifyServer: RunbookSpec = {
  name: 'verify-server',
  mutates: false,
  bootstrap: true,
  needs: () => ['ssh', 'admin-ssh', 'checker-ssh', 'notify:alert', 'heartbeat-ping'],
  options: [HOST_OPTION],
  steps: [spareOperatorFromFail2ban, verifyStep],
}

if (isMain(import.meta.url)) await main(verifyServer)

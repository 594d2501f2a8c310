import {
  detachedCleanup,
  detachedLog,
  detachedState,
  parseDetachedState,
  startDetached,
} from '../commands/detached.ts'
import { printErr } from '../report/output.ts'
import { commandFailure, type HostSession } from './session.ts'

/**
 * Runs `script` as root in a transient systemd unit and waits for it over as many SSH connections as it
 * takes: when the session drops (an upgrade restarting sshd), it logs in again (for up to `reconnectS`)
 * and goes on waiting. Fails with the unit's exit status and last lines; never leaves the unit behind.
 */
export async function runDetached(
  host: HostSession,
  unit: string,
  description: string,
  script: string,
  opts: { timeoutS: number; reconnectS?: number; pollMs?: number; next?: string },
): Promise<void> {
  await host.exec(startDetached(unit, description, script), { echo: false, timeoutS: 60 })
  const until = Date.now() + opts.timeoutS * 1000
  const pollMs = opts.pollMs ?? 2000
  try {
    for (;;) {
      if (host.connectionLost) {
        printErr(
          `      ${host.name}: the SSH connection dropped while ${description} runs on the host; logging in again`,
        )
        const tries = Math.max(1, Math.ceil((opts.reconnectS ?? 120) / 6))
        if (!(await host.reconnect(tries, 3000)))
          throw new Error(
            `${host.name}: no SSH login for ${opts.reconnectS ?? 120} s while ${description} ran there (unit ${unit})`,
          )
      }
      const out = await host.exec(detachedState(unit), {
        probe: true,
        echo: false,
        allowFail: true,
        timeoutS: 30,
      })
      if (out.code === 0) {
        const state = parseDetachedState(out.stdout)
        if (state.done) {
          if (state.ok) return
          const log = await host.exec(detachedLog(unit), { probe: true, echo: false, allowFail: true })
          throw commandFailure(host.name, script, state.status, { stdout: '', stderr: log.stdout }, opts.next)
        }
      }
      if (Date.now() > until)
        throw new Error(
          `${host.name}: ${description} did not finish within ${opts.timeoutS} s (unit ${unit})`,
        )
      await new Promise((r) => setTimeout(r, pollMs))
    }
  } finally {
    if (!host.connectionLost)
      await host.exec(detachedCleanup(unit), { echo: false, allowFail: true, timeoutS: 30 })
  }
}

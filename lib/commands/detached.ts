import { quote } from './shell.ts'

// A root command run as a transient systemd unit, so it outlives the SSH session that started it: a
// package upgrade that restarts sshd (libssl, libpam) drops the session, not the upgrade. The caller
// polls its state over new connections. Pure, unit tested as strings.

export const detachedUnit = (name: string, now = Date.now()) => `ce-${name}-${now}`

/** Starts `script` under /bin/sh as `unit`; its state stays readable after it exits (until cleaned). */
export function startDetached(unit: string, description: string, script: string): string {
  return `systemd-run --unit=${quote(unit)} --description=${quote(description)} --property=RemainAfterExit=yes --quiet /bin/sh -c ${quote(script)}`
}

/** `LoadState=`, `ActiveState=`, `SubState=`, `Result=`, `ExecMainStatus=` lines. */
export function detachedState(unit: string): string {
  return `systemctl show -p LoadState -p ActiveState -p SubState -p Result -p ExecMainStatus ${quote(unit)}`
}

export type DetachedState = { done: false } | { done: true; ok: boolean; status: string }

export function parseDetachedState(out: string): DetachedState {
  const v = Object.fromEntries(
    out
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]),
  )
  // Running (or starting): not done. Exited with RemainAfterExit: active/exited. Failed: failed. Gone
  // (stopped by someone, or the host rebooted): failed, not waited for until the timeout.
  if (v.LoadState === 'not-found')
    return { done: true, ok: false, status: 'the unit is gone (stopped, or the host rebooted)' }
  if (v.ActiveState === 'failed')
    return { done: true, ok: false, status: `${v.Result}, exit ${v.ExecMainStatus}` }
  if (v.ActiveState === 'active' && v.SubState === 'exited')
    return {
      done: true,
      ok: v.Result === 'success' && v.ExecMainStatus === '0',
      status: `exit ${v.ExecMainStatus}`,
    }
  return { done: false }
}

/** Its last lines of output, from the journal. */
export const detachedLog = (unit: string, lines = 20) =>
  `journalctl -u ${quote(unit)} -n ${lines} --no-pager -o cat`

/** Stopped and forgotten (a failed one too). */
export const detachedCleanup = (unit: string) =>
  `systemctl stop ${quote(unit)} >/dev/null 2>&1; systemctl reset-failed ${quote(unit)} >/dev/null 2>&1; true`

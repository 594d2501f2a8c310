import { quote } from './shell.ts'

// The deploy lock: a directory, because mkdir is atomic. Its owner file says who holds it; its
// heartbeat file's age says whether the holder is still alive.

/** A lock whose heartbeat is older than this is stale: runbooks say so, the watchdog stops deferring to it. */
export const STALE_AFTER_S = 90

export interface LockOwner {
  who: string
  runbook: string
  release: string
  pid: number
  machine: string
  /** The machine's boot id (Linux): with machine, tells "this machine, this boot" for the pid check. */
  boot_id: string
  started_at: string
  ci_run_url: string
  token: string
}

export function ownerText(owner: LockOwner): string {
  return `${Object.entries(owner)
    .map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`)
    .join('\n')}\n`
}

export function parseOwner(text: string): Partial<LockOwner> & Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const at = line.indexOf('=')
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1)
  }
  return out
}

/** Takes the lock (owner text on stdin) and prints `taken`, or prints `held`, the owner and the heartbeat age. */
export function takeLock(dir: string): string {
  const d = quote(dir)
  const parent = quote(dir.replace(/\/[^/]+$/, '') || '/')
  return [
    `mkdir -p ${parent}`,
    `if mkdir ${d} 2>/dev/null; then cat > ${d}/owner && touch ${d}/heartbeat && echo taken`,
    `else cat > /dev/null; echo held; cat ${d}/owner 2>/dev/null; ${heartbeatAge(dir)}; fi`,
  ].join('\n')
}

export function heartbeatAge(dir: string): string {
  const d = quote(dir)
  return `echo "heartbeat_age_s=$(( $(date +%s) - $(stat -c %Y ${d}/heartbeat 2>/dev/null || stat -c %Y ${d} 2>/dev/null || date +%s) ))"`
}

/** Touches the heartbeat, only while the lock is still ours. */
export function touchLock(dir: string, token: string): string {
  return `grep -x ${quote(`token=${token}`)} ${quote(`${dir}/owner`)} >/dev/null && touch ${quote(`${dir}/heartbeat`)}`
}

/** Releases the lock only if it is ours (a broken-and-retaken lock is someone else's now). */
export function releaseLock(dir: string, token: string): string {
  return `if grep -x ${quote(`token=${token}`)} ${quote(`${dir}/owner`)} >/dev/null 2>&1; then rm -rf ${quote(dir)}; echo released; else echo not-ours; fi`
}

/** Prints the owner and heartbeat age, or `free`. */
export function readLock(dir: string): string {
  const d = quote(dir)
  return `if [ -d ${d} ]; then echo held; cat ${d}/owner 2>/dev/null; ${heartbeatAge(dir)}; else echo free; fi`
}

/** Breaks the lock whoever holds it, printing what it broke (make unlock). */
export function breakLock(dir: string): string {
  return `${readLock(dir)}; rm -rf ${quote(dir)}`
}

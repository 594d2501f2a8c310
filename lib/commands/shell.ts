// Pipelines run under pipefail: never end one in `grep -q` (it exits early, the writer gets SIGPIPE).
// POSIX shell quoting and small composition helpers shared by every command builder.

/** Quotes one word for a POSIX shell: safe for any byte string. */
export function quote(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word
  return `'${word.replace(/'/g, `'\\''`)}'`
}

/** Joins argv into one shell command line, quoting each word. */
export function argv(...words: string[]): string {
  return words.map(quote).join(' ')
}

/**
 * Wraps a command so the host itself stops it after `seconds` (TERM, then KILL 5 s later): a hung
 * command can never hang the runbook, even if our side loses track of it. Exit 124 means timed out.
 */
export function withTimeout(command: string, seconds: number, marker?: string): string {
  return `timeout --kill-after=5 ${seconds} bash -o pipefail -c ${quote(command)}${marker ? ` ${quote(marker)}` : ''}`
}

/**
 * Stops every command of one run that is still running on a host (a Ctrl-C, a SIGTERM): each was
 * started as `timeout ... bash -c <command> <marker>`, and TERM to `timeout` reaches its whole process
 * group (docker compose and its children too). The bracket keeps pkill from matching this very line.
 */
export function cancelMarked(marker: string): string {
  if (!/^[a-z0-9-]+$/.test(marker)) throw new Error(`cancelMarked: unsafe marker ${marker}`)
  return `pkill -TERM -f -- ${quote(`^timeout .* [${marker[0]}]${marker.slice(1)}$`)}; true`
}

export const TIMED_OUT_STATUS = 124

/**
 * `command` after `afterS` seconds, detached from this SSH session (it outlives it), skipped if
 * `unlessExists` exists by then (a runbook took the deploy lock: that run decides).
 */
export function inBackground(command: string, afterS: number, unlessExists: string): string {
  return `setsid sh -c ${quote(`sleep ${afterS}; [ -e ${quote(unlessExists)} ] || { ${command}; }`)} </dev/null >/dev/null 2>&1 &`
}

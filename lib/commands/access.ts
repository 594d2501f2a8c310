import { fingerprintOfPublicKeyLine } from '../env/fingerprint.ts'
import { quote } from './shell.ts'

// `make access`: every key that can log in to a host, per account, against what the env file lists.
// Reading root's and the checker's files needs root: through sudo, as every runbook's root command.

/** One authorized_keys line as found on a host. */
export interface FoundKey {
  user: string
  /** The line exactly as in the file (options included): what is kept when others are revoked. */
  line: string
  type: string
  fingerprint: string
  comment: string
  /** Options before the key (restrict, from="..."), '' when none. */
  options: string
}

const KEY =
  /(?:^|\s)((?:ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-nistp(?:256|384|521)|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com))\s+([A-Za-z0-9+/=]+)(?:\s+(.*))?$/

/** Prints `<user> <authorized_keys line>` for every line of each account's file (missing accounts skipped). */
export function readAuthorizedKeys(users: readonly string[]): string {
  const script = [
    `for u in ${users.map(quote).join(' ')}; do`,
    '  h=$(getent passwd "$u" | cut -d: -f6) || continue',
    '  f="$h/.ssh/authorized_keys"',
    '  [ -n "$h" ] && [ -f "$f" ] || continue',
    '  sed "s/^/$u /" "$f"',
    'done',
  ].join('\n')
  return `sudo -n sh -c ${quote(script)}`
}

/** The lines of readAuthorizedKeys' output that hold a key (comments and blank lines skipped). */
export function parseAuthorizedKeys(out: string): FoundKey[] {
  const found: FoundKey[] = []
  for (const raw of out.split('\n')) {
    const space = raw.indexOf(' ')
    if (space < 0) continue
    const user = raw.slice(0, space)
    const line = raw.slice(space + 1)
    if (!line.trim() || line.trim().startsWith('#')) continue
    const m = KEY.exec(line)
    if (!m) continue
    const [, type = '', blob = '', comment = ''] = m
    found.push({
      user,
      line,
      type,
      fingerprint: fingerprintOfPublicKeyLine(`${type} ${blob}`),
      comment: comment.trim(),
      options: line.slice(0, m.index).trim(),
    })
  }
  return found
}

/** Replaces one account's authorized_keys with stdin, keeping its owner and mode; renamed into place. */
export function rewriteAuthorizedKeys(user: string): string {
  const script = [
    'set -eu',
    `h=$(getent passwd ${quote(user)} | cut -d: -f6)`,
    'f="$h/.ssh/authorized_keys"',
    'cat > "$f.new"',
    'chown --reference="$f" "$f.new"',
    'chmod --reference="$f" "$f.new"',
    'mv -f "$f.new" "$f"',
  ].join('\n')
  return `sudo -n sh -c ${quote(script)}`
}

import { quote } from './shell.ts'

/**
 * Writes stdin to `path` atomically with an explicit mode (and owner): a temp file in the same
 * directory, created under umask 077 so the content is never readable by others in between.
 */
export function writeFileFromStdin(path: string, mode: string, owner?: string): string {
  const dir = path.replace(/\/[^/]+$/, '') || '/'
  const steps = [
    'umask 077',
    `mkdir -p ${quote(dir)}`,
    `tmp=$(mktemp ${quote(`${path}.XXXXXX`)})`,
    'cat > "$tmp"',
    `chmod ${quote(mode)} "$tmp"`,
    ...(owner ? [`chown ${quote(owner)} "$tmp"`] : []),
    `mv -f "$tmp" ${quote(path)}`,
  ]
  return `set -e; ${steps.join('; ')}`
}

/** Appends one line to a log file, creating its directory; the line is passed on stdin. */
export function appendLineFromStdin(path: string, mode = '0640'): string {
  const dir = path.replace(/\/[^/]+$/, '') || '/'
  return `set -e; mkdir -p ${quote(dir)}; touch ${quote(path)}; chmod ${quote(mode)} ${quote(path)}; cat >> ${quote(path)}`
}

/** True (exit 0) when `path` has exactly this owner and mode, as `stat -c '%U:%G %a'` prints them ("root:adm 750"). */
export function ownerModeIs(path: string, want: string): string {
  return `[ "$(stat -c '%U:%G %a' ${quote(path)} 2>/dev/null)" = ${quote(want)} ]`
}

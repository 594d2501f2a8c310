import { parseOwner } from './lock.ts'
import { quote } from './shell.ts'

// Small key=value files a runbook leaves on a host for another reader (nginx, the watchdog).

/** One flag file, written whole then renamed into place: a reader never sees half of it. */
export function writeFlag(path: string, text: string): string {
  const p = quote(path)
  const tmp = quote(`${path}.new`)
  return `printf '%s' ${quote(text)} > ${tmp} && chmod 0644 ${tmp} && mv -f ${tmp} ${p}`
}

/** The instant-rollback window's file: the previous colour, its release, and when the watchdog stops it. */
export function idleColourText(colour: string, release: string, until: Date): string {
  return `colour=${colour}\nrelease=${release.replace(/[\r\n]+/g, ' ')}\nuntil=${until.toISOString()}\n`
}

export interface IdleSeen {
  colour?: 'blue' | 'green'
  release?: string
  untilMs: number
}

/** The instant-rollback window's file as written by idleColourText; undefined when it cannot be read. */
export function parseIdleColour(text: string): IdleSeen | undefined {
  // The lock's key=value parser (one format for every file a runbook leaves), keys and values trimmed.
  const f = Object.fromEntries(Object.entries(parseOwner(text)).map(([k, v]) => [k.trim(), String(v).trim()]))
  const colour = f.colour === 'blue' || f.colour === 'green' ? f.colour : undefined
  const untilMs = Date.parse(f.until ?? '')
  if (!colour || Number.isNaN(untilMs)) return undefined
  return { colour, ...(f.release ? { release: f.release } : {}), untilMs }
}

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
  const f = Object.fromEntries(
    text
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')).trim(), l.slice(l.indexOf('=') + 1).trim()]),
  )
  const colour = f.colour === 'blue' || f.colour === 'green' ? f.colour : undefined
  const untilMs = Date.parse(f.until ?? '')
  if (!colour || Number.isNaN(untilMs)) return undefined
  return { colour, ...(f.release ? { release: f.release } : {}), untilMs }
}

import { NPM_SEVERITIES, type NpmSeverity, TLS_SEVERITIES, type TlsSeverity } from '../env/security.ts'

// make security-scan's readers: what each tool printed, turned into counts and named findings. Pure,
// unit tested on the tools' own output (ssh-audit 2.5's text, testssl.sh 3.0's JSON, lynis 3.0's
// report file, nmap 7's grepable output, npm audit's JSON).

/**
 * ssh-audit -n (no colours): each algorithm's `[fail]` and `[warn]` notes as `kex name: note`, or
 * null when it did not reach an SSH server (no banner line).
 */
export function parseSshAudit(out: string): { fail: string[]; warn: string[] } | null {
  if (!/^\(gen\) banner: /m.test(out)) return null
  const fail: string[] = []
  const warn: string[] = []
  let subject = ''
  for (const line of out.split('\n')) {
    const head = /^\((\w+)\) (\S+)/.exec(line)
    if (head) subject = `${head[1]} ${head[2]}`
    const note = /\[(fail|warn)\] (.*)$/.exec(line)
    if (!note) continue
    ;(note[1] === 'fail' ? fail : warn).push(`${subject}: ${note[2]?.trim()}`)
  }
  return { fail, warn }
}

export interface TlsFinding {
  id: string
  severity: TlsSeverity
  finding: string
}

/** testssl.sh --jsonfile: every finding of severity LOW or worse (OK, INFO, WARN and DEBUG rows are not). */
export function parseTestssl(json: string): TlsFinding[] {
  const rows = JSON.parse(json) as { id?: string; severity?: string; finding?: string }[]
  return rows
    .filter((r) => (TLS_SEVERITIES as readonly string[]).includes(r.severity ?? ''))
    .map((r) => ({ id: r.id ?? '?', severity: r.severity as TlsSeverity, finding: r.finding ?? '' }))
}

/** The findings at `floor` or worse. */
export function tlsAtLeast(findings: TlsFinding[], floor: TlsSeverity): TlsFinding[] {
  const min = TLS_SEVERITIES.indexOf(floor)
  return findings.filter((f) => TLS_SEVERITIES.indexOf(f.severity) >= min)
}

export interface LynisReport {
  index: number | null
  version: string
  warnings: string[]
  suggestions: string[]
}

/** lynis's report file (--report-file): the hardening index, its warnings and suggestions (`ID: text`). */
export function parseLynisReport(dat: string): LynisReport {
  const lines = dat.split('\n')
  const value = (key: string) => lines.find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1)
  const items = (key: string) =>
    lines
      .filter((l) => l.startsWith(`${key}[]=`))
      .map((l) => {
        const [id = '', text = '', detail = ''] = l.slice(key.length + 3).split('|')
        return `${id}: ${text}${detail && detail !== '-' ? ` (${detail})` : ''}`
      })
  const index = value('hardening_index')
  return {
    index: index !== undefined && /^\d+$/.test(index) ? Number(index) : null,
    version: value('lynis_version') ?? '?',
    warnings: items('warning'),
    suggestions: items('suggestion'),
  }
}

/** nmap -oG -: the open TCP ports found, ascending. */
export function parseNmapGrepable(out: string): number[] {
  const ports = new Set<number>()
  for (const line of out.split('\n')) {
    const m = /\tPorts: (.*?)(\t|$)/.exec(line)
    if (!m) continue
    for (const entry of (m[1] ?? '').split(', ')) {
      const [port, state, proto] = entry.split('/')
      if (state === 'open' && proto === 'tcp') ports.add(Number(port))
    }
  }
  return [...ports].sort((a, b) => a - b)
}

/** nmap -oG -: whether the host answered at all (a `Status: Up` or a `Ports:` line). */
export const nmapSawHost = (out: string) => /\tStatus: Up|\tPorts: /.test(out)

export type NpmCounts = Record<NpmSeverity, number>

/** npm audit --json (npm 7+): the advisories by severity; null when it holds no report (an error). */
export function parseNpmAudit(json: string): NpmCounts | null {
  let doc: { metadata?: { vulnerabilities?: Partial<NpmCounts> } }
  try {
    doc = JSON.parse(json)
  } catch {
    return null
  }
  const v = doc.metadata?.vulnerabilities
  if (!v) return null
  return Object.fromEntries(NPM_SEVERITIES.map((s) => [s, v[s] ?? 0])) as NpmCounts
}

/** How many advisories are at `floor` or worse. */
export function npmAtLeast(counts: NpmCounts, floor: NpmSeverity): number {
  const min = NPM_SEVERITIES.indexOf(floor)
  return NPM_SEVERITIES.filter((_, i) => i >= min).reduce((n, s) => n + counts[s], 0)
}

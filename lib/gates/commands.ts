/**
 * The quality gates as commands (pure: unit tested as strings) and their output read back into
 * names a person can act on: the files rustfmt would change, clippy's and rustc's diagnostics, the
 * failing tests, the migration that broke.
 */
import { quote } from '../commands/shell.ts'

export interface GateCommand {
  name: string
  /** argv run in the workspace (no shell). */
  argv: string[]
  env?: Record<string, string>
}

/**
 * One RUSTFLAGS for every cargo gate (and the migrations gate's `cargo run`): the same flags share one
 * build cache, so clippy, check, test and migrate compile the dependencies once, not once per flag set.
 */
export const GATE_RUSTFLAGS = '-D warnings'

export function cargoGates(): GateCommand[] {
  const env = { RUSTFLAGS: GATE_RUSTFLAGS }
  return [
    { name: 'fmt', argv: ['cargo', 'fmt', '--all', '--', '--check'] },
    {
      name: 'clippy',
      argv: ['cargo', 'clippy', '--workspace', '--all-targets', '--locked', '--', '-D', 'warnings'],
      env,
    },
    { name: 'check', argv: ['cargo', 'check', '--workspace', '--all-targets', '--locked'], env },
    { name: 'test', argv: ['cargo', 'test', '--workspace', '--locked', '--no-fail-fast'], env },
  ]
}

/** Every gate, by name, in the order they run (GATES= picks among them). */
export const GATE_NAMES = [
  'fmt',
  'clippy',
  'check',
  'test',
  'audit',
  'migrations-lint',
  'migrations',
] as const
export type GateName = (typeof GATE_NAMES)[number]

/**
 * squawk's rules that block a release: DDL that loses data, or that breaks the release still serving
 * during a blue/green switch (it reads the old schema). Squawk's other findings are printed as notes.
 * A reviewed exception is a `-- squawk-ignore <rule>` comment above the statement, in the migration.
 */
export const DESTRUCTIVE_DDL = [
  'ban-drop-column',
  'ban-drop-table',
  'ban-drop-database',
  'ban-truncate-cascade',
  'renaming-column',
  'renaming-table',
  'changing-column-type',
  'adding-required-field',
  'adding-not-nullable-field',
] as const

export interface SquawkFinding {
  where: string
  rule: string
  message: string
}

/** `squawk --reporter json` read back: blocking (destructive) findings and the rest, as file:line. */
export function parseSquawk(
  json: string,
  workspace: string,
): { blocking: SquawkFinding[]; other: SquawkFinding[] } {
  const list = JSON.parse(json) as Array<{
    file?: string
    line?: number
    rule_name?: string
    message?: string
  }>
  if (!Array.isArray(list)) throw new Error('squawk gave no list of findings')
  const blocking: SquawkFinding[] = []
  const other: SquawkFinding[] = []
  for (const f of list) {
    const finding = {
      // squawk counts lines from 0.
      where: `${(f.file ?? '?').replace(`${workspace}/`, '')}:${(f.line ?? 0) + 1}`,
      rule: f.rule_name ?? '?',
      message: f.message ?? '',
    }
    if ((DESTRUCTIVE_DDL as readonly string[]).includes(finding.rule)) blocking.push(finding)
    else other.push(finding)
  }
  return { blocking, other }
}

/** `cargo audit` without fetching: the advisory database must already be on disk. */
export const AUDIT = ['cargo', 'audit', '--no-fetch', '--json']

/** Files rustfmt would rewrite (`Diff in /path/file.rs:12:` or `Diff in /path/file.rs at line 12:`). */
export function parseFmt(out: string): string[] {
  const files = [...out.matchAll(/^Diff in (\S+?)(?::\d+:| at line \d+:)/gm)].map((m) => m[1] ?? '')
  return [...new Set(files)]
}

/** `error: message` followed by `--> file:line:col`, as `file:line: message`. */
export function parseDiagnostics(out: string): string[] {
  const found: string[] = []
  const lines = out.split('\n')
  lines.forEach((line, i) => {
    const m = /^error(?:\[\w+\])?: (.+)$/.exec(line)
    if (!m || /^(aborting|could not compile|\d+ previous error)/.test(m[1] ?? '')) return
    const at = lines.slice(i + 1, i + 4).find((l) => /^\s*--> /.test(l))
    const where = at ? (/-->\s+(\S+):\d+$/.exec(at.trim())?.[1] ?? at.trim().slice(4)) : ''
    found.push(`${where ? `${where}: ` : ''}${m[1]}`)
  })
  return [...new Set(found)]
}

/** `test path::name ... FAILED`. */
export function parseFailedTests(out: string): string[] {
  return [...new Set([...out.matchAll(/^test (\S+) \.\.\. FAILED$/gm)].map((m) => m[1] ?? ''))]
}

export interface AuditFinding {
  id: string
  crate: string
  severity: string
}

/**
 * Blocking advisories from `cargo audit --json`: high or critical (the advisory's severity, else its
 * CVSS v3 or v4 vector), and any vulnerability with no score at all (unknown is not safe: review it,
 * then list its id under [advisories] ignore in the app's audit.toml, which cargo-audit applies).
 */
export function parseAudit(json: string): { blocking: AuditFinding[]; other: AuditFinding[] } {
  const report = JSON.parse(json) as {
    vulnerabilities?: {
      list?: Array<{
        advisory?: { id?: string; cvss?: string | null; severity?: string }
        package?: { name?: string; version?: string }
      }>
    }
  }
  const blocking: AuditFinding[] = []
  const other: AuditFinding[] = []
  for (const v of report.vulnerabilities?.list ?? []) {
    const severity = (v.advisory?.severity ?? cvssSeverity(v.advisory?.cvss ?? '')).toLowerCase()
    const finding = {
      id: v.advisory?.id ?? '?',
      crate: `${v.package?.name ?? '?'} ${v.package?.version ?? ''}`.trim(),
      severity: severity || 'unscored (review it; ignore it in audit.toml only once reviewed)',
    }
    if (severity === 'high' || severity === 'critical' || !severity) blocking.push(finding)
    else other.push(finding)
  }
  return { blocking, other }
}

/**
 * Severity from a CVSS vector, when the advisory carries only the vector: v3 (C/I/A impacts) or v4
 * (VC/VI/VA on the vulnerable system, SC/SI/SA on those after it). Conservative: the gate would
 * rather block a medium than pass a critical (a v4 critical used to read as medium here).
 */
export function cvssSeverity(vector: string): string {
  if (!vector) return ''
  const m = Object.fromEntries(vector.split('/').map((p) => p.split(':')))
  const v4 = vector.startsWith('CVSS:4')
  const impacts = v4 ? ['VC', 'VI', 'VA'] : ['C', 'I', 'A']
  const high = impacts.filter((k) => m[k] === 'H').length
  const subsequentHigh = v4 && ['SC', 'SI', 'SA'].some((k) => m[k] === 'H')
  const open = m.AV === 'N' && m.PR === 'N' && (!v4 || m.AT === 'N')
  if (high >= 2 && open) return 'critical'
  if (high >= 1 || subsequentHigh) return 'high'
  const low = [...impacts, ...(v4 ? ['SC', 'SI', 'SA'] : [])].some((k) => m[k] === 'L')
  return low ? 'medium' : 'low'
}

/**
 * Why `cargo audit` could not judge, or null when it did: not installed, no advisory database on disk
 * (`couldn't open/fetch advisory database`), or one it cannot load. Never taken for a pass.
 */
export function auditSkipReason(exitCode: number, stderr: string): string | null {
  if (/no such (sub)?command|no such command: `?audit/i.test(stderr)) return 'cargo-audit is not installed'
  if (exitCode === 0) return null
  if (/couldn't (open|fetch) advisory database/i.test(stderr)) return 'no advisory database'
  if (/error loading advisory database/i.test(stderr))
    return `the advisory database could not be loaded (${stderr.trim().split('\n').pop()?.slice(0, 160)})`
  return null
}

/** The failing migration from `api migrate`'s stderr: the file and the server's message. */
export function parseMigration(stderr: string): string {
  const line = stderr
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /\.sql/.test(l) || /error/i.test(l))
  return line ?? stderr.trim().split('\n').pop() ?? ''
}

/** The migrate command for a database URL: the template's {dir} replaced; run with bash -c. */
export function migrateCommand(template: string, dir: string): string {
  return template.replaceAll('{dir}', quote(dir))
}

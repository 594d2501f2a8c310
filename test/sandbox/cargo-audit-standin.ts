/**
 * A stand-in for `cargo audit --no-fetch --json` where cargo-audit cannot be installed (no crates.io
 * here) and its database cannot be cloned (no GitHub): it reads the workspace's Cargo.lock and an
 * advisory database in RustSec's layout (CE_ADVISORY_DB, default test/sandbox/advisory-db), and prints
 * the report in cargo-audit's JSON shape (vulnerabilities.list[].advisory/package), which the gates
 * judge as they judge the real one. It audits for real: a locked crate in an affected version is
 * listed (unit-tested). Used only by the pipeline rehearsal's gates job (test/sandbox/pipeline-rehearsal.ts).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

export interface Advisory {
  id: string
  package: string
  cvss: string | null
  patched: string[]
  unaffected: string[]
}

const str = (toml: string, key: string) => new RegExp(`^${key}\\s*=\\s*"([^"]*)"`, 'm').exec(toml)?.[1]
const list = (toml: string, key: string) =>
  [...(new RegExp(`^${key}\\s*=\\s*\\[([^\\]]*)\\]`, 'm').exec(toml)?.[1] ?? '').matchAll(/"([^"]*)"/g)].map(
    (m) => m[1] ?? '',
  )

export function parseAdvisory(markdown: string): Advisory | undefined {
  const toml = /```toml\n([\s\S]*?)```/.exec(markdown)?.[1]
  if (!toml) return undefined
  const id = str(toml, 'id')
  const pkg = str(toml, 'package')
  if (!id || !pkg) return undefined
  return {
    id,
    package: pkg,
    cvss: str(toml, 'cvss') ?? null,
    patched: list(toml, 'patched'),
    unaffected: list(toml, 'unaffected'),
  }
}

export function parseLock(lock: string): { name: string; version: string }[] {
  return lock
    .split('[[package]]')
    .slice(1)
    .map((block) => ({ name: str(block, 'name') ?? '', version: str(block, 'version') ?? '' }))
    .filter((p) => p.name && p.version)
}

const parts = (v: string) =>
  v
    .split(/[.+-]/)
    .slice(0, 3)
    .map((n) => Number.parseInt(n, 10) || 0)
function cmp(a: string, b: string): number {
  const [x, y] = [parts(a), parts(b)]
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0)
  return 0
}

/** One requirement (`>= 1.2.3`, `< 2`, `^0.6.14`, `= 0.1.*`, comma-joined) against a version. */
export function satisfies(version: string, requirement: string): boolean {
  return requirement.split(',').every((raw) => {
    const m = /^\s*(>=|<=|>|<|=|\^)?\s*([0-9*][0-9.*]*)\s*$/.exec(raw)
    if (!m) return false
    const [, op = '^', want = ''] = m
    if (want.includes('*')) {
      const prefix = want.replace(/\.?\*.*$/, '')
      return prefix === '' || version === prefix || version.startsWith(`${prefix}.`)
    }
    const c = cmp(version, want)
    if (op === '>=') return c >= 0
    if (op === '>') return c > 0
    if (op === '<=') return c <= 0
    if (op === '<') return c < 0
    if (op === '=') return c === 0
    // ^: same leftmost non-zero part, and not below.
    const w = parts(want)
    const v = parts(version)
    const lead = (w[0] ?? 0) > 0 ? 0 : (w[1] ?? 0) > 0 ? 1 : 2
    return c >= 0 && v.slice(0, lead + 1).join('.') === w.slice(0, lead + 1).join('.')
  })
}

export function audit(lock: string, advisories: Advisory[]) {
  const list = []
  for (const pkg of parseLock(lock))
    for (const a of advisories.filter((x) => x.package === pkg.name)) {
      const safe = [...a.patched, ...a.unaffected].some((r) => satisfies(pkg.version, r))
      if (!safe) list.push({ advisory: { id: a.id, package: a.package, cvss: a.cvss }, package: pkg })
    }
  return {
    database: { 'advisory-count': advisories.length },
    lockfile: { 'dependency-count': parseLock(lock).length },
    vulnerabilities: { found: list.length > 0, count: list.length, list },
    warnings: {},
  }
}

export function readDatabase(dir: string): Advisory[] {
  const crates = join(dir, 'crates')
  if (!existsSync(crates)) throw new Error(`error: couldn't open advisory database at ${dir}`)
  return readdirSync(crates).flatMap((c) =>
    readdirSync(join(crates, c))
      .filter((f) => f.endsWith('.md'))
      .map((f) => parseAdvisory(readFileSync(join(crates, c, f), 'utf8')))
      .filter((a): a is Advisory => a !== undefined),
  )
}

// As `cargo-audit audit --no-fetch --json` (cargo passes the subcommand's name first).
if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const args = process.argv.slice(2)
  if (args.includes('--version')) {
    console.log('cargo-audit-audit 0.22.2 (sandbox stand-in)')
    process.exit(0)
  }
  const db = process.env.CE_ADVISORY_DB ?? join(import.meta.dirname, 'advisory-db')
  try {
    const report = audit(readFileSync('Cargo.lock', 'utf8'), readDatabase(db))
    console.log(JSON.stringify(report))
    process.exit(report.vulnerabilities.found ? 1 : 0)
  } catch (err) {
    console.error((err as Error).message)
    process.exit(2)
  }
}

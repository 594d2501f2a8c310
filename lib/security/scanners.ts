import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { readOn } from '../commands/checker.ts'
import type { Env } from '../env/load.ts'
import { AUDIT, auditSkipReason, parseAudit } from '../gates/commands.ts'
import { runLocal } from '../host/local-run.ts'
import type { HostSession } from '../host/session.ts'
import { inActions } from '../run/github-actions.ts'
import {
  nmapSawHost,
  parseLynisReport,
  parseNmapGrepable,
  parseNpmAudit,
  parseSshAudit,
  parseTestssl,
} from './findings.ts'
import {
  type HostTarget,
  NPM_AUDIT_ARGV,
  nmapArgv,
  sshAuditArgv,
  type TlsTarget,
  testsslArgv,
} from './plan.ts'
import type { DepsScan, HostScan, Outcome } from './verdict.ts'

// make security-scan's scanners: each runs one tool on one target and returns what it found, or why it
// could not judge (an error: never a pass), or why it does not apply (skipped).

export const REPO = resolve(import.meta.dirname, '..', '..')
const tail = (s: string) => s.trim().split('\n').slice(-3).join(' | ').slice(0, 300)

export async function sshAudit(t: HostTarget): Promise<HostScan['sshAudit']> {
  const r = await runLocal(sshAuditArgv(t.ssh.address, t.ssh.port), { timeoutS: 120 })
  const found = parseSshAudit(r.stdout)
  return found
    ? { ok: found }
    : { error: `ssh-audit reached no SSH server (exit ${r.code}): ${tail(r.stdout + r.stderr)}` }
}

export async function portScan(t: HostTarget): Promise<HostScan['ports']> {
  if ('skipped' in t.scan) return { skipped: t.scan.skipped }
  const r = await runLocal(nmapArgv(t.scan.address), { timeoutS: 1200 })
  if (r.code !== 0 || !nmapSawHost(r.stdout))
    return { error: `nmap of ${t.scan.address} (exit ${r.code}): ${tail(r.stderr || r.stdout)}` }
  return { ok: parseNmapGrepable(r.stdout) }
}

export async function lynis(env: Env, host: HostSession): Promise<HostScan['lynis']> {
  const r = await host.exec(readOn(host, env, 'lynis'), {
    probe: true,
    allowFail: true,
    echo: false,
    timeoutS: 1200,
  })
  if (r.code !== 0) return { error: `exit ${r.code}: ${tail(r.stderr || r.stdout)}` }
  return { ok: parseLynisReport(r.stdout) }
}

export async function testssl(t: TlsTarget, dir: string): Promise<Outcome<ReturnType<typeof parseTestssl>>> {
  if ('skipped' in t.at) return { skipped: t.at.skipped }
  const json = join(dir, `testssl-${t.domain}.json`)
  const ca = process.env.NODE_EXTRA_CA_CERTS
  // NXCONNECT: testssl probes its openssl with `-connect invalid.`, a DNS lookup; a closed local port instead.
  const r = await runLocal(testsslArgv(t.domain, t.at.address, t.at.port, json, ca), {
    timeoutS: 1200,
    env: { NXCONNECT: '127.0.0.1:0' },
  })
  try {
    return { ok: parseTestssl(readFileSync(json, 'utf8')) }
  } catch {
    return { error: `testssl wrote no findings (exit ${r.code}): ${tail(r.stdout + r.stderr)}` }
  }
}

export async function npmAudit(): Promise<DepsScan['npm']> {
  const r = await runLocal(NPM_AUDIT_ARGV, { cwd: REPO, timeoutS: 300 })
  const counts = parseNpmAudit(r.stdout)
  if (counts) return { ok: counts }
  let why = tail(r.stderr)
  try {
    why = (JSON.parse(r.stdout) as { message?: string }).message ?? why
  } catch {}
  // On GitHub's runners (the weekly run) the audit must really run; elsewhere (a laptop offline, this
  // repository's own sandbox tests) an unreachable registry is named, not failed.
  const reason = `npm audit could not ask the registry: ${why}`
  return inActions() ? { error: reason } : { skipped: reason }
}

export async function cargoAudit(workspace: string | undefined): Promise<DepsScan['cargo']> {
  if (!workspace)
    return {
      skipped:
        'no WORKSPACE= (the app checkout); every build runs it as a release gate: make gates GATES=audit',
    }
  const r = await runLocal(AUDIT, { cwd: resolve(workspace), timeoutS: 600 })
  const skip = auditSkipReason(r.code, r.stderr)
  if (skip) return { error: skip }
  try {
    const { blocking, other } = parseAudit(r.stdout)
    const name = (f: { id: string; crate: string; severity: string }) => `${f.crate}: ${f.id} (${f.severity})`
    return { ok: { blocking: blocking.map(name), other: other.map(name) } }
  } catch {
    return { error: `cargo audit gave no report (exit ${r.code}): ${tail(r.stderr)}` }
  }
}

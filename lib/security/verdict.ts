import type { NpmSeverity, SecurityConfig } from '../env/security.ts'
import type { LynisReport, NpmCounts, TlsFinding } from './findings.ts'
import { npmAtLeast, tlsAtLeast } from './findings.ts'

// make security-scan's verdict: every result against the env's security: thresholds. A tool that could
// not judge is a problem too (never a pass); what does not apply here (no TLS without an edge, a host
// only reached through this machine's loopback, npm audit offline outside CI) is listed as not scanned.

export type Outcome<T> = { ok: T } | { error: string } | { skipped: string }

export interface HostScan {
  name: string
  sshAudit: Outcome<{ fail: string[]; warn: string[] }>
  ports: Outcome<number[]>
  lynis: Outcome<LynisReport>
}

export interface TlsScan {
  domain: string
  findings: Outcome<TlsFinding[]>
}

export interface DepsScan {
  npm: Outcome<NpmCounts>
  cargo: Outcome<{ blocking: string[]; other: string[] }>
}

export interface ScanSummary {
  ssh_audit_fail: number
  testssl_medium_or_worse: number
  lynis_index: number | null
  open_ports: number[]
  unexpected_ports: Record<string, number[]>
  npm_audit: number | null
  cargo_audit: number | null
  not_scanned: string[]
  /** Findings the env file accepts after review (security.lynis_accepted_warnings, security.testssl_accepted): listed, not failed. */
  accepted: string[]
  passed: boolean
}

const ok = <T>(o: Outcome<T>): T | undefined => ('ok' in o ? o.ok : undefined)

export function verdict(
  config: SecurityConfig,
  hosts: HostScan[],
  tls: TlsScan[],
  deps: DepsScan,
): { summary: ScanSummary; problems: string[] } {
  const problems: string[] = []
  const notScanned: string[] = []
  const accepted: string[] = []
  const note = (what: string, o: Outcome<unknown>) => {
    if ('error' in o) problems.push(`${what}: could not be judged: ${o.error}`)
    if ('skipped' in o) notScanned.push(`${what}: ${o.skipped}`)
  }
  let sshFail = 0
  const indexes: number[] = []
  const open = new Set<number>()
  const unexpected: Record<string, number[]> = {}
  for (const h of hosts) {
    note(`${h.name} ssh-audit`, h.sshAudit)
    note(`${h.name} port scan`, h.ports)
    note(`${h.name} lynis`, h.lynis)
    const audit = ok(h.sshAudit)
    if (audit) {
      sshFail += audit.fail.length
      for (const f of audit.fail) problems.push(`${h.name} ssh-audit [fail] ${f}`)
    }
    const ports = ok(h.ports)
    if (ports) {
      for (const p of ports) open.add(p)
      const extra = ports.filter((p) => !config.openPorts.includes(p))
      if (extra.length) {
        unexpected[h.name] = extra
        problems.push(
          `${h.name}: port(s) ${extra.join(', ')} open from outside; security.open_ports allows ${config.openPorts.join(', ')}`,
        )
      }
    }
    const lynis = ok(h.lynis)
    if (lynis) {
      if (lynis.index === null) problems.push(`${h.name} lynis: its report has no hardening index`)
      else {
        indexes.push(lynis.index)
        if (lynis.index < config.lynisMinIndex)
          problems.push(
            `${h.name} lynis hardening index ${lynis.index} < security.lynis_min_index ${config.lynisMinIndex}`,
          )
      }
      for (const w of lynis.warnings)
        if (config.lynisAcceptedWarnings.includes(w.split(':')[0] ?? ''))
          accepted.push(`${h.name} lynis ${w.split(':')[0]}`)
        else problems.push(`${h.name} lynis warning ${w} (accepted ones: security.lynis_accepted_warnings)`)
    }
  }
  let mediumOrWorse = 0
  for (const t of tls) {
    note(`${t.domain} testssl`, t.findings)
    const found = ok(t.findings)
    if (!found) continue
    const isAccepted = (f: TlsFinding) => config.testsslAccepted.includes(f.id)
    for (const f of found.filter(isAccepted)) accepted.push(`${t.domain} testssl ${f.id} (${f.severity})`)
    const judged = found.filter((f) => !isAccepted(f))
    mediumOrWorse += tlsAtLeast(judged, 'MEDIUM').length
    for (const f of tlsAtLeast(judged, config.testsslFailAt))
      problems.push(
        `${t.domain} testssl ${f.id} (${f.severity}): ${f.finding} (accepted ones: security.testssl_accepted)`,
      )
  }
  note('npm audit', deps.npm)
  note('cargo audit', deps.cargo)
  const npm = ok(deps.npm)
  const npmBad = npm ? npmAtLeast(npm, config.npmAuditFailAt) : null
  if (npmBad)
    problems.push(
      `npm audit: ${npmBad} advisory(ies) at ${config.npmAuditFailAt as NpmSeverity} or worse (npm audit for the list; npm audit fix)`,
    )
  const cargo = ok(deps.cargo)
  for (const c of cargo?.blocking ?? []) problems.push(`cargo audit: ${c}`)
  return {
    summary: {
      ssh_audit_fail: sshFail,
      testssl_medium_or_worse: mediumOrWorse,
      lynis_index: indexes.length ? Math.min(...indexes) : null,
      open_ports: [...open].sort((a, b) => a - b),
      unexpected_ports: unexpected,
      npm_audit: npmBad,
      cargo_audit: cargo ? cargo.blocking.length : null,
      not_scanned: notScanned,
      accepted,
      passed: problems.length === 0,
    },
    problems,
  }
}

import type { Validator } from './validate.ts'

// The `security:` section of an env file: make security-scan's thresholds. Every field has a default,
// so an env without the section is scanned against them (docs/runbooks/security-scan.md).

/** testssl.sh's severities, least to worst (OK and INFO are never findings). */
export const TLS_SEVERITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const
export type TlsSeverity = (typeof TLS_SEVERITIES)[number]
/** npm audit's severities, least to worst. */
export const NPM_SEVERITIES = ['low', 'moderate', 'high', 'critical'] as const
export type NpmSeverity = (typeof NPM_SEVERITIES)[number]

export interface SecurityConfig {
  /** lynis's hardening index each host must reach (0-100). */
  lynisMinIndex: number
  /** lynis warnings (their test ids) accepted after review: listed, not failed (the env file says why). */
  lynisAcceptedWarnings: string[]
  /** The TCP ports an outside scan may find open on each host; any other open port is a finding. */
  openPorts: number[]
  /** testssl findings at this severity or worse fail the scan. */
  testsslFailAt: TlsSeverity
  /** testssl findings (their ids) accepted after review: listed, not failed (the env file says why). */
  testsslAccepted: string[]
  /** npm audit advisories at this severity or worse fail the scan. */
  npmAuditFailAt: NpmSeverity
}

export const SECURITY_DEFAULTS: SecurityConfig = {
  lynisMinIndex: 80,
  lynisAcceptedWarnings: [],
  openPorts: [22, 80, 443],
  testsslFailAt: 'MEDIUM',
  testsslAccepted: [],
  npmAuditFailAt: 'high',
}

export function readSecurity(v: Validator, raw: unknown): SecurityConfig {
  if (raw === undefined || raw === null) return { ...SECURITY_DEFAULTS }
  const s = v.object(raw, 'security', [
    'lynis_min_index',
    'lynis_accepted_warnings',
    'open_ports',
    'testssl_fail_at',
    'testssl_accepted',
    'npm_audit_fail_at',
  ])
  const d = SECURITY_DEFAULTS
  const ports =
    s && 'open_ports' in s
      ? v.list(s, 'open_ports', 'security').filter((p, i) => {
          const ok = typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535
          if (!ok)
            v.problem(
              `security.open_ports[${i}]`,
              `expected a TCP port from 1 to 65535, got ${JSON.stringify(p)}`,
            )
          return ok
        })
      : d.openPorts
  return {
    lynisMinIndex:
      v.integer(s, 'lynis_min_index', 'security', { min: 0, max: 100, default: d.lynisMinIndex }) ??
      d.lynisMinIndex,
    lynisAcceptedWarnings: v.stringList(s, 'lynis_accepted_warnings', 'security', {
      optional: true,
      pattern: /^[A-Z]{3,5}-\d{4}$/,
      form: 'a lynis test id like PKGS-7388',
    }),
    openPorts: [...new Set(ports as number[])].sort((a, b) => a - b),
    testsslFailAt: (v.string(s, 'testssl_fail_at', 'security', {
      oneOf: [...TLS_SEVERITIES],
      default: d.testsslFailAt,
    }) ?? d.testsslFailAt) as TlsSeverity,
    testsslAccepted: v.stringList(s, 'testssl_accepted', 'security', {
      optional: true,
      pattern: /^[A-Za-z0-9_.-]+$/,
      form: 'a testssl finding id like BREACH',
    }),
    npmAuditFailAt: (v.string(s, 'npm_audit_fail_at', 'security', {
      oneOf: [...NPM_SEVERITIES],
      default: d.npmAuditFailAt,
    }) ?? d.npmAuditFailAt) as NpmSeverity,
  }
}

import type { Env } from '../env/load.ts'
import { SERVICES, type Service } from '../env/terms.ts'

// make security-scan's plan: what is scanned from outside (each host's SSH and ports, each domain's TLS
// as visitors meet it), and the commands that scan it. Pure, unit tested as strings.

export interface HostTarget {
  name: string
  /** Where ssh-audit connects: the address and SSH port the runbooks use. */
  ssh: { address: string; port: number }
  /** Where the port scan goes (the host's own address), or why it is not scanned. */
  scan: { address: string } | { skipped: string }
}

export interface TlsTarget {
  service: Service
  domain: string
  /** The address the domain resolves to (the edge), or why it is not scanned. */
  at: { address: string; port: number } | { skipped: string }
}

const LOOPBACK = /^(127\.|localhost$|::1$)/

/** Each host: ssh-audit at its SSH login's address; nmap at its own address (never this machine's loopback). */
export function hostTargets(env: Env): HostTarget[] {
  return env.hosts.map((h) => {
    const address = h.scanAddress ?? h.address
    return {
      name: h.name,
      ssh: { address: h.address, port: h.sshPort },
      scan: LOOPBACK.test(address)
        ? {
            skipped: `its address ${address} is this machine's loopback (a published port): scanning it would scan this machine; set hosts[].scan_address to the host's own address`,
          }
        : { address },
    }
  })
}

/**
 * Each domain as visitors meet it: through the edge (the address its name resolves to, port 443). An env
 * without an edge (the sandbox) serves plain HTTP only: nothing to scan, said so.
 */
export function tlsTargets(env: Env, edgeAddress: (domain: string) => string | undefined): TlsTarget[] {
  return SERVICES.map((service) => {
    const domain = env.domains[service]
    if (!env.edge)
      return { service, domain, at: { skipped: 'no edge: nginx serves plain HTTP only (no TLS to test)' } }
    const address = edgeAddress(domain)
    return {
      service,
      domain,
      at: address
        ? { address, port: 443 }
        : { skipped: `${domain} does not resolve (make dns ENV=${env.name})` },
    }
  })
}

/** ssh-audit: every algorithm the server offers, judged; no colours; 10 s to connect. */
export const sshAuditArgv = (address: string, port: number) => [
  'ssh-audit',
  '-n',
  '-t',
  '10',
  '-p',
  String(port),
  address,
]

/**
 * testssl.sh on one domain at the address it resolved to (no DNS of its own: --nodns none, --ip):
 * protocols, server defaults, headers and the known vulnerabilities; findings to `jsonFile`.
 * `caFile`: extra CAs to trust (NODE_EXTRA_CA_CERTS: the sandbox's edge).
 */
export function testsslArgv(
  domain: string,
  address: string,
  port: number,
  jsonFile: string,
  caFile?: string,
) {
  return [
    'testssl',
    ...(caFile ? ['--add-ca', caFile] : []),
    ...['--quiet', '--color', '0', '--warnings', 'off', '--nodns', 'none', '--ip', address],
    ...['--connect-timeout', '10', '--openssl-timeout', '10'],
    ...['-p', '-S', '-h', '-U', '--jsonfile', jsonFile],
    `${domain}:${port}`,
  ]
}

/** nmap: every TCP port (a full connect scan: no root needed), the host taken as up, grepable output. */
export const nmapArgv = (address: string) => [
  'nmap',
  '-Pn',
  '-sT',
  '-p-',
  '-T4',
  '--min-rate',
  '2000',
  '--max-retries',
  '2',
  '--host-timeout',
  '15m',
  '-oG',
  '-',
  address,
]

/** npm audit of this repository's lock file (the registry's advisories: needs the network). */
export const NPM_AUDIT_ARGV = ['npm', 'audit', '--json']

/** The programs this machine needs, with the Debian/Ubuntu package of each. */
export const TOOLS: { bin: string; pkg: string }[] = [
  { bin: 'ssh-audit', pkg: 'ssh-audit' },
  { bin: 'testssl', pkg: 'testssl.sh' },
  { bin: 'nmap', pkg: 'nmap' },
]

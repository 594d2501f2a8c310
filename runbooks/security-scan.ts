/**
 * security-scan — the env as an attacker and an auditor see it, against the thresholds of its env file's
 * security: section. From this machine: ssh-audit of each host's sshd, testssl.sh of each domain through
 * the edge (TLS as visitors meet it), nmap of every TCP port of each host's own address. Inside each host:
 * lynis (its hardening index), run as root through the checker's helper. And the code: npm audit of this
 * repository, cargo audit of the app (WORKSPACE=). Changes nothing. Fails (exit 4) on any finding above a
 * threshold, and when a tool could not judge (never taken for a pass). scheduled.yml runs it weekly and
 * alerts the on-call when it fails.
 * `make security-scan ENV=<env> [WORKSPACE=<app checkout>] [JSON=1]`; DRY_RUN=1 shows the commands.
 * On-call page: docs/runbooks/security-scan.md
 */

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readOn } from '../lib/commands/checker.ts'
import { readOnlyLogin } from '../lib/env/needs.ts'
import { AUDIT } from '../lib/gates/commands.ts'
import { runLocal } from '../lib/host/local-run.ts'
import { resolveEdge } from '../lib/loadtest/preflight.ts'
import { EXIT, PreconditionError, RunbookError } from '../lib/report/errors.ts'
import { print, table } from '../lib/report/output.ts'
import { redact } from '../lib/report/redact.ts'
import { stringArg } from '../lib/run/cli.ts'
import { perRun } from '../lib/run/per-run.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import type { parseLynisReport, parseTestssl } from '../lib/security/findings.ts'
import {
  type HostTarget,
  hostTargets,
  NPM_AUDIT_ARGV,
  nmapArgv,
  sshAuditArgv,
  type TlsTarget,
  TOOLS,
  testsslArgv,
  tlsTargets,
} from '../lib/security/plan.ts'
import { cargoAudit, lynis, npmAudit, portScan, REPO, sshAudit, testssl } from '../lib/security/scanners.ts'
import { type DepsScan, type HostScan, type Outcome, type TlsScan, verdict } from '../lib/security/verdict.ts'

interface Scan {
  hosts: HostTarget[]
  tls: TlsTarget[]
  hostScans?: HostScan[]
  tlsScans?: TlsScan[]
  deps?: DepsScan
}
const scans = perRun<Scan>('security scan')
const show = (o: Outcome<unknown>, ok: (v: never) => string) =>
  'ok' in o ? ok(o.ok as never) : 'error' in o ? `COULD NOT JUDGE: ${o.error}` : `not scanned: ${o.skipped}`

export const securityScan: RunbookSpec = {
  name: 'security-scan',
  mutates: false,
  // Read-only: the checker's login runs lynis through its root-owned helper; no store, no backup key.
  checker: true,
  needs: (env) => [readOnlyLogin(env)],
  options: [
    { name: 'workspace', makeVar: 'WORKSPACE', value: true, help: "the app's checkout, for cargo audit" },
    {
      name: 'json',
      makeVar: 'JSON=1',
      help: 'print the summary as one JSON line on stdout (the rest on stderr)',
    },
  ],
  steps: [
    {
      title:
        "Plan: each host (its sshd, its ports), each domain's TLS, this machine's scanners, the thresholds",
      next: 'Nothing was scanned. Install what is named above, then run it again.',
      async run(ctx) {
        const env = ctx.env
        const edge = env.edge
          ? await resolveEdge(Object.values(env.domains), env.health.edgeResolver)
          : new Map()
        const s: Scan = { hosts: hostTargets(env), tls: tlsTargets(env, (d) => edge.get(d)) }
        scans.set(ctx, s)
        const where = (o: { address: string; port?: number } | { skipped: string }) =>
          'skipped' in o
            ? `not scanned: ${o.skipped}`
            : `${o.address}${o.port ? `:${o.port}` : ' (every TCP port)'}`
        print(
          table([
            ['target', 'scanned at'],
            ...s.hosts.flatMap((h) => [
              [`${h.name} sshd`, `${h.ssh.address}:${h.ssh.port}`],
              [`${h.name} ports`, where(h.scan)],
            ]),
            ...s.tls.map((t) => [`${t.domain} TLS`, where(t.at)]),
          ]),
        )
        const c = env.security
        print(
          `      thresholds (security:): lynis index >= ${c.lynisMinIndex}; open ports ${c.openPorts.join(', ')}; testssl below ${c.testsslFailAt}; npm audit below ${c.npmAuditFailAt}; ssh-audit no [fail]`,
        )
        const missing: string[] = []
        for (const t of TOOLS)
          if ((await runLocal(['sh', '-c', `command -v ${t.bin}`])).code !== 0) missing.push(t.pkg)
        if (missing.length)
          throw new PreconditionError(
            `this machine lacks ${missing.join(', ')}`,
            `Install them (sudo apt-get install -y ${missing.join(' ')}), then run it again.`,
          )
        return 'ok'
      },
    },
    {
      title:
        'Scan every host and domain at once: ssh-audit, nmap and testssl from here, lynis inside each host',
      next: 'Nothing was changed. A scanner that could not judge is named above: fix what it says, then run it again.',
      async run(ctx) {
        const s = scans.get(ctx)
        const dir = mkdtempSync(join(tmpdir(), 'ce-security-'))
        if (ctx.dryRun) {
          for (const h of s.hosts) {
            print(`      would run: ${sshAuditArgv(h.ssh.address, h.ssh.port).join(' ')}`)
            if ('address' in h.scan) print(`      would run: ${nmapArgv(h.scan.address).join(' ')}`)
            print(
              `      would run on ${h.name}: ${readOn(ctx.hosts.find((x) => x.name === h.name) ?? { options: {} }, ctx.env, 'lynis').split('\n')[0]}`,
            )
          }
          for (const t of s.tls)
            if ('address' in t.at)
              print(
                `      would run: ${testsslArgv(t.domain, t.at.address, t.at.port, join(dir, 'x.json')).join(' ')}`,
              )
          rmSync(dir, { recursive: true, force: true })
          return 'dry-run'
        }
        try {
          const [hostScans, tlsScans] = await Promise.all([
            Promise.all(
              s.hosts.map(async (h): Promise<HostScan> => {
                const session = ctx.hosts.find((x) => x.name === h.name)
                const [sa, ports, ly] = await Promise.all([
                  sshAudit(h),
                  portScan(h),
                  session ? lynis(ctx.env, session) : Promise.resolve({ error: 'no session' }),
                ])
                return { name: h.name, sshAudit: sa, ports, lynis: ly }
              }),
            ),
            Promise.all(s.tls.map(async (t) => ({ domain: t.domain, findings: await testssl(t, dir) }))),
          ])
          s.hostScans = hostScans
          s.tlsScans = tlsScans
        } finally {
          rmSync(dir, { recursive: true, force: true })
        }
        print(
          table([
            ['host', 'ssh-audit', 'open ports', 'lynis'],
            ...(s.hostScans ?? []).map((h) => [
              h.name,
              show(
                h.sshAudit,
                (a: { fail: string[]; warn: string[] }) => `${a.fail.length} fail, ${a.warn.length} warn`,
              ),
              show(h.ports, (p: number[]) => p.join(', ') || 'none'),
              show(
                h.lynis,
                (l: ReturnType<typeof parseLynisReport>) =>
                  `index ${l.index} (lynis ${l.version}), ${l.warnings.length} warning(s), ${l.suggestions.length} suggestion(s)`,
              ),
            ]),
          ]),
        )
        for (const t of s.tlsScans ?? [])
          print(
            `      ${t.domain} TLS: ${show(t.findings, (f: ReturnType<typeof parseTestssl>) => `${f.length} finding(s) LOW or worse${f.length ? `: ${f.map((x) => `${x.id} (${x.severity})`).join(', ')}` : ''}`)}`,
          )
        for (const h of s.hostScans ?? []) {
          if ('ok' in h.sshAudit)
            for (const w of h.sshAudit.ok.warn) print(`      ${h.name} ssh-audit [warn] ${w}`)
          if ('ok' in h.lynis)
            for (const x of h.lynis.ok.suggestions) print(`      ${h.name} lynis suggestion ${x}`)
        }
        return 'ok'
      },
    },
    {
      title: "The code's dependencies: npm audit of this repository, cargo audit of the app (WORKSPACE=)",
      next: 'Nothing was changed. Update what is named (npm audit fix; cargo update -p <crate>), then run it again.',
      async run(ctx) {
        if (ctx.dryRun) {
          print(
            `      would run: ${NPM_AUDIT_ARGV.join(' ')} (in ${REPO}); ${AUDIT.join(' ')} (in WORKSPACE=)`,
          )
          return 'dry-run'
        }
        const [npm, cargo] = await Promise.all([npmAudit(), cargoAudit(stringArg(ctx.args, 'workspace'))])
        scans.get(ctx).deps = { npm, cargo }
        print(
          `      npm audit: ${show(npm, (c: Record<string, number>) =>
            Object.entries(c)
              .map(([k, n]) => `${n} ${k}`)
              .join(', '),
          )}`,
        )
        print(
          `      cargo audit: ${show(cargo, (c: { blocking: string[]; other: string[] }) => `${c.blocking.length} blocking, ${c.other.length} other`)}`,
        )
        return 'ok'
      },
    },
    {
      title: "The verdict against the env file's security: thresholds",
      next: 'Each finding above names its host or domain: the on-call page (docs/runbooks/security-scan.md) says what to do with each kind.',
      async run(ctx) {
        const s = scans.get(ctx)
        if (!s.hostScans || !s.tlsScans || !s.deps) return ctx.dryRun ? 'dry-run' : 'skipped'
        const { summary, problems } = verdict(ctx.env.security, s.hostScans, s.tlsScans, s.deps)
        for (const n of summary.not_scanned) print(`      not scanned: ${n}`)
        const line = JSON.stringify(summary)
        print(`      ${line}`)
        if (ctx.args.json === true) process.stdout.write(`${redact(line)}\n`)
        if (problems.length)
          throw new RunbookError(
            `${problems.length} finding(s):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
            EXIT.gateFailed,
          )
        return 'ok'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(securityScan)

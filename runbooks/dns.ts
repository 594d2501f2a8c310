/**
 * dns — the env's edge at Cloudflare: proxied records, TLS and HSTS settings, authenticated origin
 * pulls, certificate coverage, the origin's Origin CA certificate, and Cloudflare's IP ranges.
 *
 * When: a new env or droplet (make emergency runs it), a domain change, a certificate near expiry
 *   (CI runs the plan daily), or Cloudflare changing its ranges.
 * Changes: nothing unless APPLY=1 — the default is a plan (the difference from the live zone).
 *   With APPLY=1: the origin certificate first (so ssl=strict never meets a self-signed origin), then
 *   every zone change; if one fails, those already made are undone. A second apply changes nothing.
 * Abort: Ctrl-C during the plan changes nothing. During apply, run the plan again to see the zone.
 * On-call page: docs/runbooks/dns.md
 */
import { type CfContext, cloudflareClient, zoneId } from '../lib/dns/cloudflare.ts'
import { planIps } from '../lib/dns/ips.ts'
import { checkOriginCert, issueAndInstall, type OriginCertState } from '../lib/dns/origin-cert.ts'
import {
  installTrust,
  makeZoneClientCert,
  type OriginPullState,
  readOriginPull,
  trustBundle,
  uploadZoneCert,
  usesZoneCert,
} from '../lib/dns/origin-pull.ts'
import { applyChanges, type Change, planZone, type ZonePlan } from '../lib/dns/plan.ts'
import { InputError, PreconditionError } from '../lib/report/errors.ts'
import { print, table } from '../lib/report/output.ts'
import { perRun } from '../lib/run/per-run.ts'
import { type Context, changedIf, isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'

interface DnsState {
  cf: CfContext
  zone: ZonePlan
  ips?: Change
  certs: OriginCertState[]
  /** The zone's own origin-pull certificate (edge.origin_pull_ca: zone). */
  pull?: OriginPullState
}
const states = perRun<DnsState>('dns state')
const st = states.get
const applying = (ctx: Context) => ctx.args.apply === true && !ctx.dryRun

async function readAll(ctx: Context, cf: CfContext): Promise<DnsState> {
  const id = await zoneId(cf)
  const zone = await planZone(cf, ctx.env, id)
  const ips = (await planIps(cf, ctx.env)).change
  const certs = await Promise.all(ctx.hosts.map((h) => checkOriginCert(h, ctx.env)))
  const pull = usesZoneCert(ctx.env) ? await readOriginPull(cf, id, ctx.hosts, ctx.env) : undefined
  return { cf, zone, ...(ips ? { ips } : {}), certs, ...(pull ? { pull } : {}) }
}

function showPlan(s: DnsState): number {
  const rows = [
    ...s.certs
      .filter((c) => c.reason)
      .map((c) => [
        'origin-cert',
        c.host,
        c.installed ? `${c.installed.daysLeft} days, ${c.installed.issuer.split(',')[0]}` : '(none)',
        `new Origin CA certificate: ${c.reason}`,
      ]),
    ...pullRows(s),
    ...[...s.zone.changes, ...(s.ips ? [s.ips] : [])].map((c) => [c.kind, c.target, c.from, c.to]),
  ]
  if (rows.length === 0)
    print('      no changes: the zone, the origin certificate and the ranges are as the env file says')
  else print(table([['change', 'target', 'now', 'will be'], ...rows]))
  for (const p of s.zone.pending)
    print(`      ${p}: an Advanced Certificate is ordered and waits for validation`)
  return rows.length
}

function pullRows(s: DnsState): string[][] {
  const p = s.pull
  if (!p) return []
  const zone = s.cf.edge.zone
  return [
    ...(p.reason
      ? [
          [
            'origin-pull-cert',
            zone,
            p.active ? `expires ${p.active.expiresOn.slice(0, 10)}` : '(none)',
            `new, this zone's own: ${p.reason}`,
          ],
        ]
      : []),
    ...p.untrusting.map((h) => [
      'origin-pull-trust',
      h,
      p.installed[h] ? 'another certificate' : '(none)',
      "trusts the zone's certificate",
    ]),
  ]
}

/** The zone's certificate: trusted on every host first, then uploaded (Cloudflare presents it from then on). */
async function applyOriginPull(ctx: Context, s: DnsState): Promise<boolean> {
  const p = s.pull
  if (!p || (!p.reason && p.untrusting.length === 0)) return false
  const made = p.reason ? await makeZoneClientCert(s.cf.edge.zone) : undefined
  const bundle = trustBundle(p.active, made?.cert)
  for (const host of ctx.hosts) {
    if (!made && !p.untrusting.includes(host.name)) continue
    await installTrust(host, ctx.env, bundle)
    print(`      ${host.name}: trusts the zone's origin-pull certificate; nginx reloaded`)
  }
  if (made) {
    await uploadZoneCert(s.cf, s.zone.zoneId, made)
    print(
      `      ${s.cf.edge.zone}: its own origin-pull certificate uploaded (the key went only to Cloudflare)`,
    )
  }
  return true
}

export const dns: RunbookSpec = {
  name: 'dns',
  mutates: true,
  // The origin certificate goes onto each host over SSH; the zone changes need the Cloudflare token.
  needs: () => ['ssh', 'edge'],
  options: [
    { name: 'apply', makeVar: 'APPLY=1', help: 'make the changes the plan lists (default: only show them)' },
  ],
  steps: [
    {
      title: 'Read the live zone, the origin certificates and the Cloudflare ranges',
      next: 'Nothing was changed. Fix the token, zone or network problem above, then run again.',
      async run(ctx) {
        if (!ctx.env.edge)
          throw new InputError(
            `${ctx.env.file} has no edge: section, so it has no Cloudflare zone to manage`,
            [],
            'Add edge: (zone, tls_profile, origin_pulls) to the env file.',
          )
        const cf = cloudflareClient(ctx.env.edge, ctx.secrets)
        states.set(ctx, await readAll(ctx, cf))
        print(`      zone ${ctx.env.edge.zone}: ${Object.values(ctx.env.domains).join(', ')}`)
        return 'ok'
      },
    },
    {
      title: 'Plan: the difference between the env file and the live zone',
      next: 'Nothing was changed. Handle each hostname listed above, then run again.',
      async run(ctx) {
        const s = st(ctx)
        const n = showPlan(s)
        if (s.zone.uncovered.length)
          throw new PreconditionError(
            `${s.zone.uncovered.length} hostname(s) would get a certificate error:\n  - ${s.zone.uncovered.map((u) => u.advice).join('\n  - ')}`,
            'Nothing was changed. The plan fails until every hostname is covered.',
          )
        if (n && !applying(ctx)) print(`      ${n} change(s) planned; run again with APPLY=1 to make them`)
        return 'ok'
      },
    },
    {
      title:
        "Apply: the origin certificate and the zone's origin-pull certificate on each host (before the zone asks for them)",
      next: 'The zone was not changed. Check nginx on the host (make status), then run again.',
      async run(ctx) {
        if (!applying(ctx)) return ctx.dryRun ? 'dry-run' : 'skipped'
        const s = st(ctx)
        let changed = false
        for (const [i, c] of s.certs.entries()) {
          const host = ctx.hosts[i]
          if (!c.reason || !host) continue
          const { expires } = await issueAndInstall(s.cf, host, ctx.env)
          print(
            `      ${host.name}: new Origin CA certificate installed (expires ${expires}); nginx reloaded`,
          )
          changed = true
        }
        changed = (await applyOriginPull(ctx, s)) || changed
        return changedIf(changed)
      },
    },
    {
      title: 'Apply: the zone changes, all or nothing',
      async run(ctx) {
        if (!applying(ctx)) return ctx.dryRun ? 'dry-run' : 'skipped'
        const s = st(ctx)
        const changes = [...s.zone.changes, ...(s.ips ? [s.ips] : [])]
        if (changes.length === 0) return 'ok'
        await applyChanges(changes)
        print(`      ${changes.length} change(s) made`)
        if (s.ips)
          print(
            `      ${ctx.env.file} has new Cloudflare ranges: commit it, then make setup-server ENV=${ctx.env.name} applies them to the firewall`,
          )
        return 'changed'
      },
    },
    {
      title: 'Verify: a fresh plan is empty',
      async run(ctx) {
        if (!applying(ctx)) return ctx.dryRun ? 'dry-run' : 'skipped'
        const again = await readAll(ctx, st(ctx).cf)
        const left = [
          ...again.zone.changes.map((c) => `${c.kind} ${c.target}`),
          ...again.certs.filter((c) => c.reason).map((c) => `origin-cert ${c.host}: ${c.reason}`),
          ...(again.pull ? pullRows(again).map((r) => `${r[0]} ${r[1]}`) : []),
        ]
        if (left.length)
          throw new PreconditionError(
            `after apply the zone still differs:\n  - ${left.join('\n  - ')}`,
            'Run make dns again; if it persists, compare with the Cloudflare dashboard.',
          )
        print('      the zone matches the env file')
        return 'ok'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(dns)

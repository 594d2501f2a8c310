/**
 * The health checks: each returns results with the value it saw, the threshold, and the runbook to
 * open when it fails. `make health` runs them all; deploy's post-deploy gates run the HTTP ones.
 * Parsing is pure (exported for the unit tests); the probes are lib/commands/health.ts.
 */
import { listBackups } from '../backup/catalog.ts'
import { archivedWal, describeBrokenChains, walChains } from '../backup/wal-archive.ts'
import type { ShipperStatus } from '../backup/wal-shipper.ts'
import { readOn } from '../commands/checker.ts'
import { probeDomain, resourcesProbe, responseHeaders, tlsProbe } from '../commands/health.ts'
import { type Env, SERVICES } from '../env/load.ts'
import { envHosts, isSwarmNode } from '../env/swarm.ts'
import type { HostSession } from '../host/session.ts'
import { openStore } from '../store/storage.ts'
import { edgeChecks } from './edge.ts'
import type { HealthResult } from './result.ts'
import { clusterChecks, hostContainersProbe } from './swarm.ts'

export type { HealthResult } from './result.ts'

export const REQUIRED_HEADERS = [
  'strict-transport-security',
  'content-security-policy',
  'x-content-type-options',
  'referrer-policy',
  'permissions-policy',
  'x-frame-options',
]

const run = async (host: HostSession, cmd: string) =>
  (await host.exec(cmd, { probe: true, echo: false, allowFail: true })).stdout

export function parseSamples(out: string): { code: string; ms: number }[] {
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [code = '000', t = '10'] = l.split(' ')
      return { code, ms: Math.round(Number(t) * 1000) }
    })
}

/** The output of `echo '== <name>'; ...` commands, by name. */
export function sectionsOf(out: string): Map<string, string> {
  const sections = new Map<string, string>()
  let name = ''
  for (const line of out.split('\n')) {
    const head = /^== (\S+)$/.exec(line)
    if (head) name = head[1] ?? ''
    else if (name) sections.set(name, `${sections.get(name) ?? ''}${line}\n`)
  }
  return sections
}

/** Nearest-rank percentile. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.POSITIVE_INFINITY
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number
}

/** Every domain's health path answers 200 through the host's nginx (HTTPS when the env has an edge). */
export async function httpChecks(host: HostSession, env: Env): Promise<HealthResult[]> {
  const https = Boolean(env.edge)
  // One command for every domain (one SSH channel, not one per domain), each answer in its section.
  const out = await run(
    host,
    SERVICES.map((s) => `echo '== ${s}'; ${probeDomain(env.domains[s], env.health.path, 1, https)}`).join(
      '; ',
    ),
  )
  const sections = sectionsOf(out)
  return SERVICES.map((s): HealthResult => {
    const [sample] = parseSamples(sections.get(s) ?? '')
    const code = sample?.code ?? '000'
    return {
      check: 'http',
      target: `${host.name} ${https ? 'https' : 'http'}://${env.domains[s]}${env.health.path}`,
      ok: code === '200' && (sample?.ms ?? Infinity) < env.health.timeoutS * 1000,
      value: code === '000' ? 'no answer' : `${code} in ${sample?.ms} ms`,
      limit: `200 within ${env.health.timeoutS} s`,
      runbook:
        code.startsWith('5') || code === '000' ? 'docs/runbooks/rollback.md' : 'docs/runbooks/health.md',
    }
  })
}

/** The API's p95 over a burst, with no error allowed. */
export async function latencyCheck(host: HostSession, env: Env): Promise<HealthResult> {
  const samples = parseSamples(
    await run(host, probeDomain(env.domains.api, env.health.path, env.health.burst, Boolean(env.edge))),
  )
  const p95 = percentile(
    samples.map((s) => s.ms),
    95,
  )
  const errors = samples.filter((s) => s.code !== '200').length
  return {
    check: 'latency',
    target: `${host.name} api p95 over ${samples.length} requests`,
    ok: p95 < env.health.apiP95Ms && errors === 0,
    value: `${p95} ms, ${errors} error(s)`,
    limit: `< ${env.health.apiP95Ms} ms, 0 errors`,
    runbook: 'docs/runbooks/health.md#latency',
  }
}

export function parseTls(out: string): { protocol: string; notAfter: Date | undefined } {
  const [protocol = 'none', ...end] = out.trim().split(' ')
  const date = new Date(end.join(' '))
  return { protocol, notAfter: Number.isNaN(date.getTime()) ? undefined : date }
}

/** TLS version negotiated and days left on the origin certificate, per domain (edge envs only). */
export async function tlsChecks(host: HostSession, env: Env, now = Date.now()): Promise<HealthResult[]> {
  if (!env.edge)
    return [
      {
        check: 'tls',
        target: host.name,
        ok: null,
        value: 'n/a: no edge: section (plain HTTP)',
        limit: '',
        runbook: '',
      },
    ]
  const allowed = env.edge.tlsProfile === 'modern' ? ['TLSv1.3'] : ['TLSv1.2', 'TLSv1.3']
  const results: HealthResult[] = []
  for (const s of SERVICES) {
    const d = env.domains[s]
    const tls = parseTls(await run(host, tlsProbe(d)))
    results.push({
      check: 'tls',
      target: `${host.name} ${d}`,
      ok: allowed.includes(tls.protocol),
      value: tls.protocol,
      limit: allowed.join(' or '),
      runbook: 'docs/runbooks/dns.md',
    })
    const days = tls.notAfter ? Math.floor((tls.notAfter.getTime() - now) / 86_400_000) : -1
    results.push({
      check: 'certificate',
      target: `${host.name} ${d}`,
      ok: days >= env.health.certMinDays,
      value: tls.notAfter ? `${days} days left` : 'no certificate',
      limit: `>= ${env.health.certMinDays} days`,
      runbook: 'docs/runbooks/dns.md',
    })
  }
  return results
}

export function missingHeaders(headerText: string): string[] {
  const names = new Set(headerText.split('\n').map((l) => l.split(':')[0]?.trim()))
  return REQUIRED_HEADERS.filter((h) => !names.has(h))
}

export async function headerChecks(host: HostSession, env: Env): Promise<HealthResult[]> {
  if (!env.edge)
    return [
      {
        check: 'headers',
        target: host.name,
        ok: null,
        value: 'n/a: no edge: section',
        limit: '',
        runbook: '',
      },
    ]
  return Promise.all(
    SERVICES.map(async (s) => {
      const missing = missingHeaders(await run(host, responseHeaders(env.domains[s], env.health.path, true)))
      return {
        check: 'headers',
        target: `${host.name} ${env.domains[s]}`,
        ok: missing.length === 0,
        value: missing.length ? `missing ${missing.join(', ')}` : 'all present',
        limit: `${REQUIRED_HEADERS.length} security headers`,
        runbook: 'docs/runbooks/dns.md',
      }
    }),
  )
}

export function parseContainers(out: string): { service: string; state: string; health: string }[] {
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [service = '?', state = '?', health = 'none'] = l.split(' ')
      return { service, state, health }
    })
}

/**
 * The containers, asked again each `pollMs` while one is running with its first health check still to
 * come (`starting`: a container a restore or a deploy has just started), for `timeoutS` at most:
 * judged once none is, or as they are then.
 */
export async function settledContainers(
  host: HostSession,
  probe: string,
  timeoutS: number,
  pollMs = 1000,
): Promise<ReturnType<typeof parseContainers>> {
  const deadline = Date.now() + (Number.isFinite(timeoutS) ? timeoutS : 0) * 1000
  for (;;) {
    const list = parseContainers(await run(host, probe))
    if (!list.some((c) => c.state === 'running' && c.health === 'starting') || Date.now() >= deadline)
      return list
    await new Promise((r) => setTimeout(r, pollMs))
  }
}

export async function containerChecks(
  host: HostSession,
  env: Env,
  probe = readOn(host, env, 'containers', 'compose'),
  pollMs = 1000,
): Promise<HealthResult[]> {
  const list = await settledContainers(host, probe, env.health.timeoutS, pollMs)
  if (list.length === 0)
    return [
      {
        check: 'containers',
        target: host.name,
        ok: false,
        value: 'none running',
        limit: env.swarm ? 'the tasks or data services of this host' : 'data + live colour',
        runbook: 'docs/runbooks/deploy.md',
      },
    ]
  return list.map((c) => ({
    check: 'container',
    target: `${host.name} ${c.service}`,
    ok: c.state === 'running' && (c.health === 'healthy' || c.health === 'none'),
    value: `${c.state}/${c.health}`,
    limit: 'running/healthy',
    runbook: ['postgres', 'redis'].includes(c.service)
      ? 'docs/runbooks/restore.md'
      : 'docs/runbooks/rollback.md',
  }))
}

export async function serviceChecks(
  host: HostSession,
  env: Env,
  on?: { nginx: boolean; data: boolean },
): Promise<HealthResult[]> {
  const which = !on || (on.nginx && on.data) ? 'all' : on.nginx ? 'nginx' : 'data'
  return (await run(host, readOn(host, env, 'services', which)))
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [name = '?', state = 'fail'] = l.split(' ')
      return {
        check: 'service',
        target: `${host.name} ${name}`,
        ok: state === 'ok',
        value: state === 'ok' ? 'answers' : 'not answering',
        limit: 'answers',
        runbook: 'docs/runbooks/health.md',
      }
    })
}

export function parseResources(out: string): { disks: { mount: string; freePct: number }[]; memPct: number } {
  const disks: { mount: string; freePct: number }[] = []
  let memPct = Number.NaN
  for (const line of out.trim().split('\n')) {
    const f = line.split(' ')
    if (f[0] === 'disk' && f[1]) disks.push({ mount: f[1], freePct: Number(f[2]) })
    if (f[0] === 'memory') memPct = Number(f[1])
  }
  return { disks, memPct }
}

export async function resourceChecks(host: HostSession, env: Env): Promise<HealthResult[]> {
  const r = parseResources(await run(host, resourcesProbe))
  return [
    ...r.disks.map((d) => ({
      check: 'disk',
      target: `${host.name} ${d.mount}`,
      ok: d.freePct >= env.health.diskMinFreePct,
      value: `${d.freePct}% free`,
      limit: `>= ${env.health.diskMinFreePct}%`,
      runbook: 'docs/runbooks/health.md#disk',
    })),
    {
      check: 'memory',
      target: host.name,
      ok: r.memPct >= env.health.memMinFreePct,
      value: `${r.memPct}% available`,
      limit: `>= ${env.health.memMinFreePct}%`,
      runbook: 'docs/runbooks/health.md#memory',
    },
  ]
}

export async function deployCheck(host: HostSession, env: Env): Promise<HealthResult> {
  const line = (await run(host, readOn(host, env, 'last-release'))).trim()
  const last = line
    ? (JSON.parse(line) as { id: string; outcome: string; action: string; at: string })
    : undefined
  return {
    check: 'last deploy',
    target: host.name,
    ok: last ? last.outcome === 'live' : null,
    value: last ? `${last.action} of ${last.id}: ${last.outcome} (${last.at})` : 'n/a: nothing deployed yet',
    limit: 'live',
    runbook: 'docs/runbooks/deploy.md',
  }
}

/** Age of the newest complete (verified) backup, from the env's store. */
export async function backupCheck(
  env: Env,
  secrets: Record<string, string>,
  now = Date.now(),
): Promise<HealthResult> {
  if (!env.backup)
    return {
      check: 'backup',
      target: env.name,
      ok: null,
      value: 'n/a: no backup: section',
      limit: '',
      runbook: '',
    }
  // health never holds BACKUP_KEY (it runs as the read-only checker): the markers are listed
  // unverified; a future-dated id still never counts.
  const newest = (await listBackups(openStore(env.backup.store, secrets), env.name)).find((e) => e.complete)
  const hours = newest ? (now - newest.createdAt.getTime()) / 3_600_000 : Number.POSITIVE_INFINITY
  return {
    check: 'backup',
    target: env.name,
    ok: hours <= env.health.backupMaxAgeH,
    value: newest ? `${newest.id}, ${hours.toFixed(1)} h old` : 'no complete backup',
    limit: `<= ${env.health.backupMaxAgeH} h`,
    runbook: 'docs/runbooks/backup.md',
  }
}

/** How long a finished WAL segment may wait in the spool, or the shipper may fail, before it is a failure. */
export const WAL_MAX_WAIT_S = 180

/**
 * The host's WAL shipper, from its status file (readable by the checker; it holds no secret): failing
 * when a segment waited over WAL_MAX_WAIT_S, or the store has failed as long. Only for an S3 store.
 */
export async function walShipperCheck(
  host: HostSession,
  env: Env,
  now = Date.now(),
): Promise<HealthResult[]> {
  if (env.backup?.store.type !== 's3') return []
  const text = (await run(host, readOn(host, env, 'wal-status'))).trim()
  return [walShipperResult(host.name, text, now)]
}

export function walShipperResult(target: string, statusText: string, now: number): HealthResult {
  const base = {
    check: 'wal shipping',
    target,
    limit: `no segment waiting > ${WAL_MAX_WAIT_S} s`,
    runbook: 'docs/runbooks/backup.md#wal-archiving',
  }
  let st: ShipperStatus | undefined
  try {
    st = statusText ? (JSON.parse(statusText) as ShipperStatus) : undefined
  } catch {
    st = undefined
  }
  if (!st)
    return {
      ...base,
      ok: false,
      value: 'no shipper status: WAL archiving is not running (make backup installs it)',
    }
  const statusAgeS = Math.round((now - Date.parse(st.at)) / 1000)
  const failingS = st.failingSince ? Math.round((now - Date.parse(st.failingSince)) / 1000) : 0
  const last = st.last ? `last ${st.last} at ${st.lastAt}` : 'nothing shipped yet'
  const problems = [
    statusAgeS > WAL_MAX_WAIT_S ? `the shipper last ran ${statusAgeS} s ago` : '',
    st.oldestWaitingS > WAL_MAX_WAIT_S ? `a segment has waited ${st.oldestWaitingS} s` : '',
    st.error && failingS > WAL_MAX_WAIT_S ? `failing for ${failingS} s: ${st.error}` : '',
  ].filter(Boolean)
  return {
    ...base,
    ok: problems.length === 0,
    value: `${problems.length ? `${problems.join('; ')}; ` : ''}${last}; ${st.backlog} waiting`,
  }
}

/** The archived WAL in the store: one unbroken chain (a gap loses what it held). Only for an S3 store. */
export async function walChainCheck(env: Env, secrets: Record<string, string>): Promise<HealthResult[]> {
  if (env.backup?.store.type !== 's3') return []
  const chains = walChains(await archivedWal(openStore(env.backup.store, secrets), env.name))
  const broken = describeBrokenChains(chains)
  return [
    {
      check: 'wal chain',
      target: env.name,
      ok: chains.length === 0 ? null : !broken,
      value:
        chains.length === 0
          ? 'n/a: nothing archived yet'
          : broken
            ? broken
            : chains
                .map((c) => `cluster ${c.system}: ${c.chain.count} segments up to ${c.chain.last}`)
                .join('; ') + ', no gap',
      limit: 'no gap',
      runbook: 'docs/runbooks/backup.md#wal-archiving',
    },
  ]
}

/** Every check, for every host. */
export async function allChecks(
  hosts: HostSession[],
  env: Env,
  secrets: Record<string, string>,
): Promise<HealthResult[]> {
  if (env.swarm)
    return [...(await swarmChecks(hosts, env)), await backupCheck(env, secrets), ...(await edgeChecks(env))]
  const perHost = await Promise.all(
    hosts.map(async (h) => [
      ...(await httpChecks(h, env)),
      await latencyCheck(h, env),
      ...(await tlsChecks(h, env)),
      ...(await headerChecks(h, env)),
      ...(await containerChecks(h, env)),
      ...(await serviceChecks(h, env)),
      ...(await resourceChecks(h, env)),
      await deployCheck(h, env),
      ...(h === (hosts.find((x) => x.host.roles.includes('data')) ?? hosts[0])
        ? await walShipperCheck(h, env)
        : []),
    ]),
  )
  return [
    ...perHost.flat(),
    await backupCheck(env, secrets),
    ...(await walChainCheck(env, secrets)),
    ...(await edgeChecks(env)),
  ]
}

/** A swarm env: the cluster from its manager; the edge through every web node; the data host's services. */
async function swarmChecks(hosts: HostSession[], env: Env): Promise<HealthResult[]> {
  const nodes = hosts.filter((h) => isSwarmNode(h.host))
  const manager = nodes.find((h) => h.host.roles.includes('manager'))
  const perHost = await Promise.all(
    hosts.map(async (h) => {
      const web = isSwarmNode(h.host)
      return [
        ...(web ? await httpChecks(h, env) : []),
        ...(web ? [await latencyCheck(h, env)] : []),
        ...(web ? await tlsChecks(h, env) : []),
        ...(web ? await headerChecks(h, env) : []),
        ...(await containerChecks(h, env, hostContainersProbe(env, h))),
        ...(await serviceChecks(h, env, { nginx: web, data: !web })),
        ...(await resourceChecks(h, env)),
        ...(web ? [await deployCheck(h, env)] : []),
      ]
    }),
  )
  // Every web node of the env file counts, also when HOST=<one> narrowed this run.
  const webNodes = envHosts(env).filter(isSwarmNode).length
  return [...(manager ? await clusterChecks(manager, env, webNodes) : []), ...perHost.flat()]
}

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { type Env, loadEnv } from '../../lib/env/load.ts'
import { secretsFor } from '../../lib/env/needs.ts'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { readAgeSecrets } from '../../lib/env/secrets-age.ts'
import { resolveName } from '../../lib/health/edge.ts'
import { runLocal } from '../../lib/host/local-run.ts'
import { parseTestssl, tlsAtLeast } from '../../lib/security/findings.ts'
import { RUNBOOKS } from '../support/runbooks.ts'
import { appImage, buildFixtureImages, FIXTURE_SERVICES } from './fixtures.ts'
import { pushImageWithLogin } from './registry.ts'
import { putDataImages, type RehearsalWorld, startRehearsalWorld, throughEdge } from './rehearsal-world.ts'
import { runLogged, runWorkflowStep } from './workflow-step.ts'

const ROOT = resolve(import.meta.dirname, '..', '..')

export interface StepResult {
  step: string
  code: number
  s: number
}

/** A runbook's JSON line in its output (the line starting with `start`, indented or not). */
const jsonLine = (out: string, start: string) =>
  out
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith(start))

/** Where npm audit is pointed in tests: a closed port here (the scan lists npm audit as not scanned). */
const NO_REGISTRY = 'http://127.0.0.1:9/'

export interface RehearsalResult {
  env: string
  tls13_only: boolean
  aop_rejects_foreign_client: boolean
  notified: string[]
  health_failures: number
  /** health logged in as the env's read-only checker account (ssh.checker), not the deploy user. */
  health_as_checker: boolean
  rollback_ok: boolean
  /**
   * The data host's WAL shipper (installed by make backup with the committed env's store) archived at
   * least one segment by the end: make backups lists the cluster's chain, with no gap.
   */
  wal_archived: boolean
  /**
   * make rotate-secret NAME=REDIS_PASSWORD by the operator (the value in the env's age file): then
   * deploy.yml with GitHub's old value refused before any change, and passing once it was updated.
   */
  rotation: { rotated: boolean; stale_refused: boolean; deploy_after: boolean }
  /**
   * promote_from (production): its staging twin took v1 and v2 live first; a release never live there
   * was refused; v1 and v2 went live here with the digests they ran there. `from` null: no promote_from.
   */
  promotion: { from: string | null; unstaged_refused: boolean; promoted: boolean }
  secrets_by_runbook: Record<string, string[]>
  /** make heartbeats after the run: the env's <env>-watchdog check up (the host's watchdog pinged it). */
  heartbeat_up: boolean
  /**
   * make uptime's outside view (outside_view): 'read' (the watching env's droplet is in this world),
   * 'not read' (it is not: named in the report's warnings), 'none' (no outside_view).
   */
  uptime_outside_view: 'read' | 'not read' | 'missing' | 'none'
  /** The deploys marked v1 and v2 live on this env at error_tracking (the Sentry stand-in). */
  error_tracking_marked: boolean
  /** make status-page published the page to the committed status_page store (the world's S3). */
  status_page_published: boolean
  /**
   * make ship-records (as every workflow ends), then make report JSON=1 through the committed env's
   * backup store: this month's deploys and rollbacks counted from the records there; null: no JSON line.
   */
  report: { deploys: number; rollbacks: number; success_rate: number | null } | null
  /** make loadtest through the committed env's edge (short: 15/s for 3 s): its JSON line; null: none. */
  loadtest: { rps: number; p95_ms: number | null; errors: number; passed: boolean } | null
  /** make security-scan of the committed env (its security: thresholds): its JSON line; null: none. */
  security_scan: {
    ssh_audit_fail: number
    testssl_medium_or_worse: number
    lynis_index: number | null
    open_ports: number[]
    not_scanned: string[]
    passed: boolean
  } | null
  total_s: number
  steps: StepResult[]
  /** Through the edge: every domain 200 with HSTS and the security headers (false: which failed, in problems). */
  edge_headers_ok: boolean
  /** testssl's findings at MEDIUM or worse (full form only; null when testssl did not run). */
  testssl_medium_or_worse: string[] | null
  problems: string[]
}

export interface RehearsalOptions {
  env: 'production' | 'staging'
  /** Also testssl against the origin (minutes); the short form checks TLS with openssl. */
  full: boolean
  log?: (line: string) => void
  /** Leave the droplet, registry and servers up afterwards (to look at a failure). */
  keep?: boolean
}

/** One `make` target, as a person types it; its output goes to the log, its exit code is returned. */
function make(
  args: string[],
  env: NodeJS.ProcessEnv,
  log: (l: string) => void,
): Promise<{ code: number; out: string }> {
  return runLogged('make', ['--no-print-directory', ...args], env, log)
}

async function curlOrigin(ip: string, domain: string, cert?: { cert: string; key: string }): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'ce-aop-'))
  const args = [
    '-sk',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '-m',
    '10',
    '--resolve',
    `${domain}:443:${ip}`,
  ]
  if (cert) {
    writeFileSync(join(dir, 'c.pem'), cert.cert)
    writeFileSync(join(dir, 'k.pem'), cert.key, { mode: 0o600 })
    args.push('--cert', join(dir, 'c.pem'), '--key', join(dir, 'k.pem'))
  }
  const r = await runLocal(['curl', ...args, `https://${domain}/version`])
  return Number(r.stdout.trim()) || 0
}

/** TLS versions the origin accepts for a name, by openssl s_client (the short form's check). */
async function originAccepts(ip: string, domain: string, version: '-tls1_2' | '-tls1_3'): Promise<boolean> {
  const r = await runLocal(
    ['openssl', 's_client', '-connect', `${ip}:443`, '-servername', domain, version, '-brief'],
    { input: '' },
  )
  return r.code === 0 && /Protocol version/i.test(r.stderr + r.stdout)
}

/** testssl.sh against the origin: protocols, ciphers, server defaults, headers; nothing leaves this machine. */
async function testssl(
  ip: string,
  domain: string,
  dir: string,
  originCa: string,
): Promise<{ offered: string[]; bad: string[] }> {
  const json = join(dir, `testssl-${domain}.json`)
  // The origin's certificate is judged as Cloudflare judges it: against the Origin CA.
  const ca = join(dir, 'origin-ca.pem')
  writeFileSync(ca, originCa)
  const args = [
    ...['--add-ca', ca],
    ...['--quiet', '--color', '0', '--warnings', 'off', '--nodns', 'none', '--ip', ip],
    ...['--connect-timeout', '10', '--openssl-timeout', '10', '-p', '-E', '-S', '-h', '--jsonfile', json],
    `${domain}:443`,
  ]
  await runLocal(['testssl', ...args], { env: { ...process.env, NXCONNECT: '127.0.0.1:0' } })
  const text = readFileSync(json, 'utf8')
  const findings = JSON.parse(text) as { id: string; finding: string }[]
  const protocols = ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1', 'TLS1_2', 'TLS1_3']
  const offered = findings
    .filter((f) => protocols.includes(f.id) && f.finding.startsWith('offered'))
    .map((f) => f.id)
  // make security-scan's reader: the same severities, the same way.
  const bad = tlsAtLeast(parseTestssl(text), 'MEDIUM').map((f) => `${f.id} (${f.severity}): ${f.finding}`)
  return { offered, bad }
}

/** The events the receiver was told of, from each message's title ("deploy of v1 to production: success"). */
function eventsOf(bodies: string[]): string[] {
  const events = new Set<string>()
  for (const body of bodies) {
    const text = JSON.stringify(JSON.parse(body))
    const m = /\b(deploy|rollback|backup|restore drill|restore|emergency|alert)\b/.exec(text)
    if (m?.[1]) events.add(m[1] === 'restore drill' ? 'restore' : m[1])
  }
  return [...events].sort()
}

export async function rehearse(opts: RehearsalOptions): Promise<RehearsalResult> {
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`))
  const t0 = Date.now()
  const problems: string[] = []
  const committed = loadEnv(opts.env, join(ROOT, 'env'))
  // production promotes from staging (promote_from): a staging twin runs beside it, on its own droplet.
  const source = committed.promoteFrom ? loadEnv(committed.promoteFrom.env, join(ROOT, 'env')) : undefined
  const steps: StepResult[] = []
  let world: RehearsalWorld | undefined
  try {
    log(`rehearsal of env/${opts.env}.yaml on the sandbox (${opts.full ? 'full' : 'short'} form)`)
    world = await startRehearsalWorld([opts.env, ...(source ? [source.name] : [])], {
      full: opts.full,
      tag: `rehearse-${opts.env}`,
      log,
    })
    const { cf, edge, registry, login, receiver, data, identity, envDir } = world
    const env = world.operator
    const droplet = world.droplets[opts.env] as SandboxDroplet
    const twin = source ? world.droplets[source.name] : undefined
    const loaded = world.envs[opts.env] as Env
    await buildFixtureImages(log)
    // v2's digests, as images.yml outputs them: deploy.yml's step deploys v2 pinned by them.
    const v2Digests: Record<string, string> = {}
    for (const service of FIXTURE_SERVICES)
      for (const release of ['v1', 'v2']) {
        const digest = await pushImageWithLogin(registry, appImage(service, release), login)
        if (release === 'v2') v2Digests[service] = digest
      }

    const run = async (step: string, args: string[]): Promise<{ code: number; out: string }> => {
      log(`\n== make ${args.join(' ')}`)
      const t = Date.now()
      const r = await make(args, env, log)
      steps.push({ step, code: r.code, s: Math.round((Date.now() - t) / 100) / 10 })
      if (r.code !== 0)
        problems.push(`make ${args[0]} exited ${r.code}: ${r.out.trim().split('\n').slice(-6).join(' | ')}`)
      return r
    }
    // The same runbook through the COMMITTED workflow's step, as Actions runs it: its run: line and its
    // own env:, with only the secrets that step passes (the GitHub environment holds them all).
    // The runner holds no age identity: only what the step passes, from the environment's secrets.
    const secrets = Object.fromEntries(loaded.secrets.map((n) => [n, env[n] ?? '']))
    Object.assign(secrets, data)
    const { AGE_IDENTITY: _operatorOnly, ...runner } = env
    const viaWorkflow = async (
      step: string,
      file: string,
      name: string,
      inputs: Record<string, string>,
      expect = 0,
    ) => {
      const t = Date.now()
      const r = await runWorkflowStep({
        file,
        step: name,
        inputs: { environment: opts.env, 'runbooks-ref': 'rehearsal', ...inputs },
        secrets,
        base: runner,
        github: { ref_name: committed.branch, sha: 'rehearsal' },
        log,
      })
      steps.push({ step, code: r.code, s: Math.round((Date.now() - t) / 100) / 10 })
      if (r.code !== expect) problems.push(`${file} step "${name}" exited ${r.code} (expected ${expect})`)
      return r
    }
    const E = `ENV=${opts.env}`
    const branch = `BRANCH=${committed.branch}`
    // The dead man's switch's checks first: the host's watchdog pings them from its first run.
    await run('heartbeats', ['heartbeats', E, 'YES=1'])
    if ((await run('setup-server', ['setup-server', E, 'YES=1'])).code !== 0)
      throw new Error('setup-server failed')
    // The droplet pulls postgres and redis from Docker Hub in production; here they are put on it.
    await putDataImages(droplet.container, committed)
    if ((await run('dns', ['dns', E, 'APPLY=1', 'YES=1'])).code !== 0) throw new Error('dns failed')
    // promote_from: the twin (the committed staging env file) takes v1 and v2 live first; production
    // then refuses what never went live there and deploys what did, with the digests it ran there.
    const promotion = { from: source?.name ?? null, unstaged_refused: false, promoted: false }
    if (source && twin) {
      const S = `ENV=${source.name}`
      const sBranch = `BRANCH=${source.branch}`
      await run(`heartbeats (${source.name})`, ['heartbeats', S, 'YES=1'])
      if ((await run(`setup-server (${source.name})`, ['setup-server', S, 'YES=1'])).code !== 0)
        throw new Error(`setup-server of the ${source.name} twin failed`)
      await putDataImages(twin.container, source)
      if ((await run(`dns (${source.name})`, ['dns', S, 'APPLY=1', 'YES=1'])).code !== 0)
        throw new Error(`dns of the ${source.name} twin failed`)
      for (const release of ['v1', 'v2'])
        if (
          (
            await run(`deploy ${release} (${source.name})`, [
              'deploy',
              S,
              `RELEASE=${release}`,
              sBranch,
              'YES=1',
            ])
          ).code !== 0
        )
          throw new Error(`deploy ${release} to the ${source.name} twin failed`)
      const unstaged = await make(['deploy', E, 'RELEASE=broken', branch, 'YES=1'], env, log)
      promotion.unstaged_refused =
        unstaged.code === 2 && unstaged.out.includes(`broken never went live on ${source.name}`)
      if (!promotion.unstaged_refused)
        problems.push(
          `a release that never went live on ${source.name} was not refused (make exited ${unstaged.code})`,
        )
    }
    const v1 = await run('deploy v1', ['deploy', E, 'RELEASE=v1', branch, 'YES=1'])
    if (v1.code !== 0) throw new Error('deploy v1 failed')
    const v2 = await viaWorkflow(
      'deploy v2 (deploy.yml)',
      '.github/workflows/deploy.yml',
      `deploy (${opts.env})`,
      {
        release: 'v2',
        digests: FIXTURE_SERVICES.map((sv) => `${sv}=${v2Digests[sv]}`).join(','),
      },
    )
    if (v2.code !== 0) throw new Error('deploy v2 failed')
    if (!v2.out.includes('images pinned by digest')) problems.push('deploy.yml did not pin v2 by its digests')
    if (source) {
      promotion.promoted = [v1.out, v2.out].every((o) => o.includes(`went live on ${source.name} at`))
      if (!promotion.promoted) problems.push(`production did not promote v1 and v2 from ${source.name}`)
    }
    // The backup before health: a new env has none, and health's backup check rightly fails without one.
    await run('backup', ['backup', E, 'YES=1'])
    // The listing with the env's key, and the bucket's protection (the world turned versioning on).
    const listing = await run('backups', ['backups', E])
    if (!listing.out.includes('protection: protected: versioning on'))
      problems.push('make backups did not report the bucket as protected by versioning')
    const healthRun = await run('health', ['health', E, 'JSON=1'])
    const report = healthRun.out.split('\n').find((l) => l.startsWith('{"env"'))
    const results = report
      ? (
          JSON.parse(report) as {
            results: { ok: boolean | null; check: string; target: string; value: string }[]
          }
        ).results
      : []
    const failures = results.filter((r) => r.ok === false)
    for (const f of failures) problems.push(`health ${f.check} ${f.target}: ${f.value}`)
    if (!report) problems.push('make health printed no JSON report')
    if (!results.some((r) => r.check === 'edge' && r.ok)) problems.push('health ran no passing edge check')
    // The committed env's ssh.checker: health logs in as the read-only account, never as deploy.
    const checker = loaded.ssh.checker?.user
    const checkerLogin = Boolean(
      checker && healthRun.out.includes(`${checker}@`) && healthRun.out.includes('(read-only checker)'),
    )
    if (!checkerLogin)
      problems.push(`health did not log in as the checker account (${checker ?? 'no ssh.checker'})`)
    // The committed env files archive WAL: the weekly drill restores a random point and finds its canary.
    const drill = await run('restore-drill', ['restore-drill', E, 'YES=1'])
    if (
      !/DRILL passed: \S+ \(backup \S+'s base replayed to [^)]+\) restores \(.*canary of \S+ found\)/.test(
        drill.out,
      )
    )
      problems.push(
        `make restore-drill did not restore a point in time with its canary: ${drill.out
          .trim()
          .split('\n')
          .filter((l) => /drill|base|canary|window|archived|point|✗|error/i.test(l))
          .slice(-12)
          .join(' | ')}`,
      )

    // Through the edge, as a visitor: every domain, HSTS and the headers on every answer.
    const headers = [
      'strict-transport-security',
      'content-security-policy',
      'x-content-type-options',
      'x-frame-options',
    ]
    let edgeOk = true
    for (const domain of Object.values(loaded.domains)) {
      const [address] = await resolveName(domain, edge.resolver)
      for (const path of ['/version', '/no-such-page']) {
        const r = await throughEdge(domain, path, address ?? '', readFileSync(edge.caPath, 'utf8')).catch(
          (e: Error) => e,
        )
        if (r instanceof Error) {
          edgeOk = false
          problems.push(`${domain}${path} through the edge: ${r.message}`)
          continue
        }
        const missing = headers.filter((h) => !r.headers[h])
        if (missing.length || (path === '/version' && r.status !== 200) || r.protocol !== 'TLSv1.3') {
          edgeOk = false
          problems.push(
            `${domain}${path} through the edge: HTTP ${r.status}, ${r.protocol}, missing ${missing.join(', ') || 'nothing'}`,
          )
        }
      }
    }

    // The origin: TLS 1.3 only; a client without this zone's certificate is refused.
    const site = loaded.domains.site
    const zoneCert = cf.zoneClientCertificate(loaded.edge?.zone ?? '')
    const shared = await cf.issueOriginPullClientCertificate()
    const codes = {
      none: await curlOrigin(droplet.ip, site),
      sharedCloudflare: await curlOrigin(droplet.ip, site, { cert: shared.certPem, key: shared.keyPem }),
      zone: zoneCert ? await curlOrigin(droplet.ip, site, zoneCert) : 0,
    }
    log(
      `\n  origin ${site}: no certificate ${codes.none}, Cloudflare's shared one ${codes.sharedCloudflare}, the zone's own ${codes.zone}`,
    )
    const aop = codes.none === 403 && codes.sharedCloudflare === 403 && codes.zone === 200
    if (!aop) problems.push(`origin pulls: ${JSON.stringify(codes)} (want 403, 403, 200)`)
    let tls13 =
      (await originAccepts(droplet.ip, site, '-tls1_3')) &&
      !(await originAccepts(droplet.ip, site, '-tls1_2'))
    let testsslBad: string[] | null = null
    if (opts.full) {
      log('  testssl.sh against the origin (protocols, ciphers, server defaults, headers)')
      const found = await testssl(droplet.ip, site, world.dir, `${cf.originCaPem.ecc}\n${cf.originCaPem.rsa}`)
      testsslBad = found.bad
      log(
        `    offered: ${found.offered.join(' ')}; MEDIUM or worse: ${found.bad.length ? found.bad.join('; ') : 'none'}`,
      )
      tls13 = tls13 && found.offered.join() === 'TLS1_3'
      if (found.bad.length) problems.push(...found.bad.map((b) => `testssl: ${b}`))
    }
    if (!tls13) problems.push('the origin does not offer TLS 1.3 only')

    const rollback = await viaWorkflow(
      'rollback (rollback.yml)',
      '.github/workflows/rollback.yml',
      'rollback',
      {
        to: '',
      },
    )
    const [edgeAddress] = await resolveName(site, edge.resolver)
    const after = await throughEdge(
      loaded.domains.api,
      '/version',
      edgeAddress ?? '',
      readFileSync(edge.caPath, 'utf8'),
    ).catch(() => undefined)
    const rollbackOk = rollback.code === 0 && after?.status === 200 && after.body.trim() === 'v1'
    if (!rollbackOk)
      problems.push(
        `rollback: exit ${rollback.code}, the api through the edge says ${after?.status} ${after?.body.trim()}`,
      )

    // The operator rotates Redis's password (kept in the age file); CI's copy is now stale: its deploy
    // is refused before anything changes, then passes once the environment's secret is updated.
    const rotate = await run('rotate-secret', ['rotate-secret', E, 'NAME=REDIS_PASSWORD', 'YES=1'])
    const saved = await readAgeSecrets(
      { file: join(envDir, `${opts.env}.yaml`), name: opts.env },
      { keys: [identity], from: 'rehearsal' },
    )
    const rotated =
      rotate.code === 0 && !!saved?.REDIS_PASSWORD && saved.REDIS_PASSWORD !== data.REDIS_PASSWORD
    if (!rotated) problems.push('rotate-secret did not save a new REDIS_PASSWORD in the age file')
    const stale = await viaWorkflow(
      'deploy v2, stale secret (deploy.yml)',
      '.github/workflows/deploy.yml',
      `deploy (${opts.env})`,
      { release: 'v2' },
      3,
    )
    const staleRefused =
      stale.code === 3 &&
      stale.out.includes('REDIS_PASSWORD given to this run differs from what the data services use')
    if (!staleRefused) problems.push('deploy.yml with the old REDIS_PASSWORD was not refused as stale')
    secrets.REDIS_PASSWORD = saved?.REDIS_PASSWORD ?? ''
    const again = await viaWorkflow(
      'deploy v2, secret updated (deploy.yml)',
      '.github/workflows/deploy.yml',
      `deploy (${opts.env})`,
      { release: 'v2' },
    )
    const served = await throughEdge(
      loaded.domains.api,
      '/version',
      edgeAddress ?? '',
      readFileSync(edge.caPath, 'utf8'),
    ).catch(() => undefined)
    const deployAfter = again.code === 0 && served?.status === 200 && served.body.trim() === 'v2'
    if (!deployAfter)
      problems.push(`deploy after the rotation: exit ${again.code}, api says ${served?.body.trim()}`)

    // By now Postgres has switched segments (archive_timeout 30 s; the drill and the deploys wrote):
    // make backups lists the archive's chain. Asked again for up to 3 minutes on a slow machine.
    let walArchived = false
    for (let i = 0; i < 12 && !walArchived; i++) {
      if (i) await new Promise((r) => setTimeout(r, 15_000))
      const l = await make(['backups', E], env, log)
      walArchived = l.code === 0 && /WAL archive of cluster \d+: [1-9]\d* segment\(s\)/.test(l.out)
    }
    if (!walArchived) problems.push('make backups lists no archived WAL segment (the shipper on the host)')

    // The host's watchdog (a run a minute) has pinged its check through the committed heartbeat: section
    // (up, or grace while a run on a loaded machine is late: not silent; make heartbeats exits 0 for both).
    const beat = await make(['heartbeats', E, 'YES=1'], env, log)
    const heartbeatUp = beat.code === 0 && new RegExp(`${opts.env}-watchdog\\s+(up|grace)\\s`).test(beat.out)
    if (!heartbeatUp) problems.push(`make heartbeats: exit ${beat.code}, ${opts.env}-watchdog not up`)

    // make uptime through the committed outside_view: the watching env's history read through its
    // checker account when its droplet is in this world (production's staging twin), else named as not
    // read (a closed port here). Exit 4 is a degradation the short run may show (an error threshold).
    const up = await make(['uptime', E], env, log)
    const outsideFrom = loaded.outsideView?.env
    const outsideRead = outsideFrom
      ? new RegExp(`${outsideFrom}/\\S+ \\(outside view\\): \\d+ history line`).test(up.out)
        ? 'read'
        : /the outside view \(\S+\) could not be read/.test(up.out)
          ? 'not read'
          : 'missing'
      : 'none'
    if ((up.code !== 0 && up.code !== 4) || outsideRead === 'missing')
      problems.push(`make uptime: exit ${up.code}, outside view ${outsideRead}`)
    // error_tracking: every deploy through the committed env file marked its release at the Sentry stand-in.
    const marked = ['v1', 'v2'].every((r) =>
      world?.sentry.releases.get(r)?.deploys.some((d) => d.environment === opts.env),
    )
    if (loaded.errorTracking && !marked)
      problems.push('deploys of v1 and v2 left no deploy marker at error_tracking')
    // make status-page through the committed status_page: rendered and published to its public Space.
    const page = await make(['status-page', E], env, log)
    const store = loaded.statusPage?.store
    const statusPagePublished =
      page.code === 0 &&
      store?.type === 's3' &&
      page.out.includes(`published: s3://${store.bucket}/${store.prefix}/index.html`)
    if (!statusPagePublished) problems.push(`make status-page: exit ${page.code}, not published`)
    // The records off the host: this machine's (as every workflow's last step copies them), then the
    // month's figures read back from the committed env's backup store.
    const shipped = await make(['ship-records', E], env, log)
    if (shipped.code !== 0) problems.push(`make ship-records: exit ${shipped.code}`)
    const rep = await make(['report', E, 'JSON=1'], env, log)
    const line = jsonLine(rep.out, '{"deploys"')
    const figures = line
      ? (JSON.parse(line) as { deploys: number; rollbacks: number; success_rate: number | null })
      : null
    const delivery = figures
      ? { deploys: figures.deploys, rollbacks: figures.rollbacks, success_rate: figures.success_rate }
      : null
    // make loadtest through the edge the committed env's DNS points at (production: confirmed by YES=1).
    const lt = await make(['loadtest', E, 'RPS=15', 'DURATION=3s', 'YES=1'], env, log)
    const ltLine = jsonLine(lt.out, '{"rps"')
    const loadtest = ltLine ? (JSON.parse(ltLine) as NonNullable<RehearsalResult['loadtest']>) : null
    if (lt.code !== 0 || !loadtest?.passed)
      problems.push(`make loadtest: exit ${lt.code}, ${ltLine ?? 'no JSON line'}`)
    // make security-scan with the committed env's security: thresholds: sshd, each domain's TLS through
    // the edge, every port of the droplet, lynis inside it (through the checker's helper).
    // npm audit asks a closed local port, not the registry: tests send nothing beyond this machine.
    const sc = await make(['security-scan', E, 'JSON=1'], { ...env, npm_config_registry: NO_REGISTRY }, log)
    const scLine = jsonLine(sc.out, '{"ssh_audit_fail"')
    const securityScan = scLine ? (JSON.parse(scLine) as NonNullable<RehearsalResult['security_scan']>) : null
    if (sc.code !== 0 || !securityScan?.passed)
      problems.push(
        `make security-scan: exit ${sc.code}, ${scLine ?? 'no JSON line'}; ${sc.out
          .split('\n')
          .filter((l) => /^\s+- /.test(l))
          .map((l) => l.trim())
          .join(' ')}`,
      )
    if (rep.code !== 0 || !delivery) problems.push(`make report: exit ${rep.code}, ${line ?? 'no JSON line'}`)

    const ran = ['setup-server', 'dns', 'deploy', 'health', 'backup', 'restore', 'rollback']
    return {
      env: opts.env,
      tls13_only: tls13,
      aop_rejects_foreign_client: aop,
      notified: eventsOf(receiver.received.map((r) => r.body)),
      health_failures: failures.length + (report ? 0 : 1),
      health_as_checker: checkerLogin,
      rollback_ok: rollbackOk,
      wal_archived: walArchived,
      heartbeat_up: heartbeatUp,
      uptime_outside_view: outsideRead,
      error_tracking_marked: marked,
      status_page_published: statusPagePublished,
      report: delivery,
      loadtest,
      security_scan: securityScan,
      rotation: { rotated, stale_refused: staleRefused, deploy_after: deployAfter },
      promotion,
      secrets_by_runbook: Object.fromEntries(
        ran.map((name) => [
          name,
          secretsFor(loaded, RUNBOOKS[name]?.needs(loaded, name === 'restore' ? { drill: true } : {}) ?? []),
        ]),
      ),
      total_s: Math.round((Date.now() - t0) / 100) / 10,
      steps,
      edge_headers_ok: edgeOk,
      testssl_medium_or_worse: testsslBad,
      problems,
    }
  } catch (err) {
    problems.push((err as Error).message)
    return {
      env: opts.env,
      tls13_only: false,
      aop_rejects_foreign_client: false,
      notified: [],
      health_failures: -1,
      health_as_checker: false,
      rollback_ok: false,
      wal_archived: false,
      heartbeat_up: false,
      uptime_outside_view: 'missing',
      status_page_published: false,
      report: null,
      loadtest: null,
      security_scan: null,
      error_tracking_marked: false,
      rotation: { rotated: false, stale_refused: false, deploy_after: false },
      promotion: { from: null, unstaged_refused: false, promoted: false },
      secrets_by_runbook: {},
      total_s: Math.round((Date.now() - t0) / 100) / 10,
      steps,
      edge_headers_ok: false,
      testssl_medium_or_worse: null,
      problems,
    }
  } finally {
    await world?.close(opts.keep)
  }
}

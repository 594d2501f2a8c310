/**
 * emergency — the droplet is gone or unusable: a new one serving again, within 15 minutes.
 *
 * When: the host does not answer and cannot be saved (see docs/runbooks/emergency.md for the decision).
 * Changes: creates a droplet (CREATE=1) or takes HOST=<ip> HOST_KEY=<fingerprint>; then, on that host
 *   only: setup-server, deploy of the release the backup was taken at, restore of the latest complete
 *   off-site backup, health gates, the DNS switch at Cloudflare (make dns APPLY=1), verification of the
 *   data and of every domain. The env file is not changed unless WRITE_ENV=1: the change is printed.
 * Resume: every phase is recorded in .state/emergency-<env>.json; running the same command again
 *   continues from the phase that did not finish (RESTART=1 starts over).
 * Abort: Ctrl-C at any time; nothing is switched at Cloudflare before the new host passed its gates.
 * On-call page: docs/runbooks/emergency.md
 */
import { createConnection } from 'node:net'
import { readBackupManifest } from '../lib/backup/restore.ts'
import {
  createDroplet,
  createRequest,
  doClient,
  dropletsByTag,
  waitActive,
} from '../lib/emergency/digitalocean.ts'
import { describeChange, hostEntry, writeNewHost } from '../lib/emergency/env-change.ts'
import { cloudInitUserData, generateHostKey } from '../lib/emergency/host-key.ts'
import {
  type EmergencyState,
  newState,
  PHASES,
  type Phase,
  readState,
  resumePoint,
  spentS,
  stateFile,
  writeState,
} from '../lib/emergency/state.ts'
import { checkData, probeDomains, recordProblems } from '../lib/emergency/verify.ts'
import type { Env, Host } from '../lib/env/load.ts'
import { readPrivateKey } from '../lib/env/secrets.ts'
import {
  containerChecks,
  type HealthResult,
  headerChecks,
  httpChecks,
  serviceChecks,
  tlsChecks,
} from '../lib/health/checks.ts'
import { notifyRunOutcome } from '../lib/notify/run-outcome.ts'
import { EXIT, InputError, PreconditionError, RunbookError } from '../lib/report/errors.ts'
import { print, table } from '../lib/report/output.ts'
import { stringArg } from '../lib/run/cli.ts'
import {
  type Context,
  confirmMidRun,
  connectHost,
  isMain,
  main,
  type RunbookSpec,
  runRunbook,
  type Step,
} from '../lib/run/runbook.ts'
import { deploy } from './deploy.ts'
import { dns } from './dns.ts'
import { restore } from './restore.ts'
import { setupServer } from './setup-server.ts'

export const BUDGET_S = 15 * 60
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/

const states = new WeakMap<Context, EmergencyState>()
const st = (ctx: Context) => {
  const s = states.get(ctx)
  if (!s) throw new Error('emergency state missing: the first step did not run')
  return s
}
const save = (ctx: Context) => {
  if (!ctx.dryRun) writeState(st(ctx))
}

/** The env as the sub-runbooks see it: the new host is its only host. */
function onNewHost(s: EmergencyState, base: Env): (env: Env) => Env {
  const h = s.host
  if (!h) throw new Error('no new host yet')
  const roles = base.hosts[0]?.roles ?? ['web', 'data']
  const host: Host = { name: h.name, address: h.address, sshPort: h.sshPort, hostKey: h.hostKey, roles }
  return (env) => ({ ...env, hosts: [host] })
}

/** Runs another runbook on the new host, in this process; its own steps, audit record and errors print. */
async function sub(ctx: Context, spec: RunbookSpec, args: string[], next: string): Promise<void> {
  const argv = ['--env', ctx.env.name, '--yes', ...args, ...(ctx.dryRun ? ['--dry-run'] : [])]
  if (ctx.dryRun && !st(ctx).host) {
    print(
      `      would run: ${spec.name} ${argv.filter((a) => a !== '--dry-run').join(' ')}, on the new droplet only`,
    )
    return
  }
  print(`      ── make ${spec.name} ${args.join(' ')} on the new host ──`)
  const code = await runRunbook(spec, argv, { env: onNewHost(st(ctx), ctx.env) })
  print(`      ── ${spec.name}: exit ${code} ──`)
  if (code !== EXIT.ok)
    throw new RunbookError(
      `${spec.name} on the new host failed (exit ${code}): its failed step is above`,
      code,
      next,
    )
}

/** One phase: skipped when an earlier run finished it, timed against the budget, recorded either way. */
function phase(name: Phase, title: string, next: string, run: (ctx: Context) => Promise<void>): Step {
  return {
    title: `${name}: ${title}`,
    next,
    async run(ctx) {
      const s = st(ctx)
      const before = s.phases[name]
      if (before?.status === 'done') {
        print(`      done in an earlier run (${before.s} s): not repeated`)
        return 'skipped'
      }
      if (ctx.dryRun) {
        await run(ctx)
        return 'dry-run'
      }
      const t0 = Date.now()
      const spentBefore = spentS(s) - (before?.s ?? 0)
      s.phases[name] = { status: 'running', s: 0, at: new Date().toISOString() }
      save(ctx)
      const record = (status: 'done' | 'failed') => {
        s.phases[name] = { status, s: Math.round((Date.now() - t0) / 100) / 10, at: new Date().toISOString() }
        save(ctx)
      }
      try {
        await run(ctx)
      } catch (err) {
        record('failed')
        throw err
      }
      record('done')
      const total = spentBefore + (s.phases[name]?.s ?? 0)
      print(
        `      ⏱ ${name} ${s.phases[name]?.s} s · ${Math.round(total)} s of the ${BUDGET_S / 60}-minute budget${total > BUDGET_S ? ' · OVER BUDGET' : ''}`,
      )
      return 'changed'
    },
  }
}

export const emergency: RunbookSpec = {
  name: 'emergency',
  mutates: true,
  // The env's hosts are the ones that are gone: this runbook connects only to the new one.
  offline: true,
  options: [
    {
      name: 'create',
      makeVar: 'CREATE=1',
      help: "create a droplet through the DigitalOcean API (the env's droplet: section)",
    },
    { name: 'address', makeVar: 'HOST', value: true, help: 'an existing fresh droplet to use (its IP)' },
    {
      name: 'host-key',
      makeVar: 'HOST_KEY',
      value: true,
      help: "HOST's SSH host key fingerprint (SHA256:...), read on its console",
    },
    { name: 'ssh-port', makeVar: 'SSH_PORT', value: true, help: "HOST's SSH port (default 22)" },
    {
      name: 'name',
      makeVar: 'NAME',
      value: true,
      help: "the new host's name in the env file (default: the droplet name)",
    },
    {
      name: 'backup',
      makeVar: 'BACKUP',
      value: true,
      help: 'the backup to restore (default: the latest complete one)',
    },
    {
      name: 'release',
      makeVar: 'RELEASE',
      value: true,
      help: 'the release to deploy (default: the one the backup was taken at)',
    },
    { name: 'restart', makeVar: 'RESTART=1', help: 'forget an unfinished earlier run and start over' },
    {
      name: 'write-env',
      makeVar: 'WRITE_ENV=1',
      help: 'write the new host into the env file (default: print the change)',
    },
  ],
  steps: [
    {
      title: 'Plan: the backup, the release and the new host; resume an unfinished run',
      next: 'Nothing was changed. Fix what is said above and run the same command again.',
      async run(ctx) {
        if (ctx.env.swarm)
          throw new InputError(
            `make emergency rebuilds a single-host env; ${ctx.env.name} is a swarm env.`,
            [],
            'A lost node: docs/runbooks/swarm.md ("A node is down"). The data host: make restore DRILL=1 checks the backup first.',
          )
        const s = await plan(ctx)
        states.set(ctx, s)
        ctx.release = s.release ?? null
        if (!ctx.dryRun) ctx.onCleanup(async () => onEnd(ctx))
        return 'ok'
      },
    },
    phase(
      'create',
      'a new droplet (CREATE=1) or the given HOST, its host key pinned',
      'Run the same command again: a droplet this run already created is found by its tag, not made twice.',
      createPhase,
    ),
    phase(
      'setup',
      'setup-server on the new host',
      'Run the same command again: it resumes here; setup-server is safe to re-run.',
      (ctx) => sub(ctx, setupServer, [], 'Run make emergency again: it resumes with setup-server.'),
    ),
    phase(
      'deploy',
      'deploy the release the backup was taken at (Postgres and Redis start empty)',
      'Run the same command again: it resumes with the deploy. A lock left by a killed run: see docs/runbooks/emergency.md#resume-and-abort.',
      (ctx) =>
        sub(
          ctx,
          deploy,
          ['--release', st(ctx).release ?? '', '--branch', ctx.env.branch],
          'Run make emergency again: it resumes with the deploy.',
        ),
    ),
    phase(
      'restore',
      'restore the backup: verified in a scratch database, then swapped in',
      'Run the same command again: the restore starts over from the verified download; nothing is switched at Cloudflare yet.',
      (ctx) =>
        sub(
          ctx,
          restore,
          ['--backup', st(ctx).backup?.id ?? '', '--fresh-host'],
          'Run make emergency again: it resumes with the restore.',
        ),
    ),
    phase(
      'health',
      'health gates against the new host directly (domains through nginx, TLS, headers, containers, services)',
      'Nothing was switched at Cloudflare. Fix what failed on the new host (make status), then run again.',
      healthPhase,
    ),
    phase(
      'dns',
      'switch the records at Cloudflare to the new host (make dns APPLY=1)',
      'Run the same command again. A half-applied zone is undone by make dns; make dns ENV=<env> shows it.',
      async (ctx) => {
        if (!ctx.env.edge) {
          print(`      ${ctx.env.file} has no edge: section: there are no Cloudflare records to switch`)
          return
        }
        await sub(ctx, dns, ['--apply'], 'Run make emergency again: it resumes with the DNS switch.')
      },
    ),
    phase(
      'verify',
      'every row and the canary of the backup, the records, every domain from here',
      'The new host serves; what did not verify is listed above. Look at it before telling anyone it is over.',
      verifyPhase,
    ),
    {
      title: 'Report: timings, the env-file change, what to do with the old droplet',
      async run(ctx) {
        report(ctx)
        return 'ok'
      },
    },
  ],
}

async function plan(ctx: Context): Promise<EmergencyState> {
  const address = stringArg(ctx.args, 'address')
  if (!address && ctx.args.create !== true)
    throw new InputError(
      'Say where the new host comes from.',
      [],
      `CREATE=1 creates a droplet (the droplet: section of ${ctx.env.file}), or HOST=<ip> HOST_KEY=<SHA256:...> takes a fresh one made by hand.`,
    )
  if (address && ctx.args.create === true) throw new InputError('Pass CREATE=1 or HOST=<ip>, not both.')
  if (ctx.args.create === true && !ctx.env.droplet)
    throw new InputError(
      `CREATE=1 needs a droplet: section in ${ctx.env.file} (region, size, image, ssh_keys)`,
      [],
      'Add it (docs/runbooks/emergency.md), or create the droplet by hand and pass HOST=<ip> HOST_KEY=<fingerprint>.',
    )
  const hostKey = stringArg(ctx.args, 'host-key')
  if (address && (!hostKey || !FINGERPRINT.test(hostKey)))
    throw new InputError(
      `HOST_KEY=<SHA256:...> is required with HOST=${address}${hostKey ? ` (got "${hostKey}")` : ''}`,
      [],
      "Read it on the droplet's console (DigitalOcean: Access > Recovery Console): ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub",
    )
  const port = stringArg(ctx.args, 'ssh-port')
  if (port && !/^\d{1,5}$/.test(port)) throw new InputError(`SSH_PORT=${port} is not a port number`)
  const name = stringArg(ctx.args, 'name')
  if (name && !/^[a-z][a-z0-9-]{0,30}$/.test(name))
    throw new InputError(`NAME=${name} is not a host name (lower case, digits, -; at most 31)`)

  let s = readState(ctx.env.name)
  if (s && ctx.args.restart === true) {
    print(
      `      RESTART=1: the unfinished run ${s.runId} is forgotten${s.host ? ` (its host ${s.host.address} is left as it is)` : ''}`,
    )
    s = undefined
  }
  if (s?.finishedAt) {
    print(
      `      the last emergency of ${ctx.env.name} (${s.runId}) finished at ${s.finishedAt}; this is a new one`,
    )
    s = undefined
  }
  const resuming = s !== undefined
  s ??= newState(ctx.env.name)
  if (resuming)
    print(`      RESUMING ${s.runId}: from phase "${resumePoint(s)}" (${stateFile(ctx.env.name)})`)

  for (const [flag, asked, pinned] of [
    ['BACKUP', stringArg(ctx.args, 'backup'), s.backup?.id],
    ['RELEASE', stringArg(ctx.args, 'release'), s.release],
  ] as const)
    if (resuming && asked && pinned && asked !== pinned)
      throw new InputError(
        `${flag}=${asked}, but the run being resumed (${s.runId}) uses ${pinned}`,
        [],
        `Run without ${flag} to resume it, or add RESTART=1 to start over with ${flag}=${asked}.`,
      )
  if (!s.backup) {
    const { manifest } = await readBackupManifest(ctx, stringArg(ctx.args, 'backup'))
    s.backup = { id: manifest.id, release: manifest.release, rows: manifest.postgres.rows }
  }
  s.release ??= stringArg(ctx.args, 'release') ?? s.backup.release ?? undefined
  if (!s.release)
    throw new InputError(
      `backup ${s.backup.id} records no live release (it was taken before any deploy)`,
      [],
      'Pass RELEASE=<sha>: the last good release (make releases shows it when a host is up; CI knows it too).',
    )
  if (!s.host && address && hostKey)
    s.host = { name: name ?? 'emergency-1', address, sshPort: port ? Number(port) : 22, hostKey }

  const old = ctx.env.hosts.map((h) => `${h.name} ${h.address}`).join(', ')
  print(
    table([
      ['', ''],
      ['env', `${ctx.env.name} (${ctx.env.kind}); replacing ${old}`],
      [
        'new host',
        s.host ? `${s.host.address} (key ${s.host.hostKey})` : `a new droplet: ${dropletSummary(ctx.env)}`,
      ],
      ['backup', `${s.backup.id} (${s.backup.rows} rows)`],
      ['release', s.release],
      ['domains', Object.values(ctx.env.domains).join(', ')],
      ['phases', PHASES.map((p) => `${p}${s.phases[p]?.status === 'done' ? ' ✓' : ''}`).join(' → ')],
      [
        'budget',
        `${BUDGET_S / 60} minutes${spentS(s) ? `; ${Math.round(spentS(s))} s spent in earlier runs` : ''}`,
      ],
    ])
      .split('\n')
      .slice(1) // the header row is empty
      .map((l) => `      ${l}`)
      .join('\n'),
  )
  if (!ctx.env.confirm)
    // Production asked before the run started; elsewhere a person still confirms (YES=1 in scripts).
    await confirmOrDryRun(ctx, s)
  if (!ctx.dryRun) writeState(s)
  return s
}

async function confirmOrDryRun(ctx: Context, s: EmergencyState): Promise<void> {
  if (ctx.dryRun) return
  await confirmMidRun(
    ctx,
    `Build a new ${ctx.env.name} host and move ${Object.values(ctx.env.domains).join(', ')} to it (${s.runId})`,
  )
}

function dropletSummary(env: Env): string {
  const d = env.droplet
  return d ? `${d.size} ${d.image} in ${d.region} (${d.apiBase})` : '(no droplet: section)'
}

async function createPhase(ctx: Context): Promise<void> {
  const s = st(ctx)
  if (s.host) {
    if (ctx.dryRun) print(`      would use ${s.host.address}:${s.host.sshPort}, host key ${s.host.hostKey}`)
    else await waitForSsh(s.host.address, s.host.sshPort, 120)
    return
  }
  const config = ctx.env.droplet
  if (!config) throw new Error('unreachable: plan checked the droplet: section')
  const name = `${config.namePrefix}-${s.runId.slice(-13)}`
  if (ctx.dryRun) {
    print(
      `      would POST ${config.apiBase}/v2/droplets ${name} (${dropletSummary(ctx.env)}, tag ${s.runId}),`,
    )
    print('      with a host key generated here (cloud-init user_data, not shown), then wait until active')
    return
  }
  const client = doClient(config, ctx.secrets)
  // An interrupted run may have created it already: its tag finds it.
  let droplet = (await dropletsByTag(client, s.runId))[0]
  let hostKey: string | undefined
  if (droplet) {
    print(`      droplet ${droplet.id} (${droplet.name}) was created by the interrupted run: using it`)
    hostKey = droplet.tags.find((t) => t.startsWith('ce-hostkey:'))?.slice('ce-hostkey:'.length)
  } else {
    const key = generateHostKey(`${name} (make emergency)`)
    hostKey = key.fingerprint
    const req = createRequest(config, name, s.runId, cloudInitUserData(key))
    // The fingerprint's hex digest rides along as a tag, so a resumed run can still pin it.
    req.tags.push(`ce-hostkey:${Buffer.from(key.fingerprint.slice(7), 'base64').toString('hex')}`)
    droplet = await createDroplet(client, req)
    print(`      droplet ${droplet.id} (${name}) created; host key ${key.fingerprint} (generated here)`)
  }
  if (!hostKey)
    throw new PreconditionError(
      `droplet ${droplet.id} carries no host-key tag, so its host key cannot be pinned`,
      'Destroy it in the DigitalOcean console and run again with RESTART=1.',
    )
  const fingerprint = hostKey.startsWith('SHA256:')
    ? hostKey
    : `SHA256:${Buffer.from(hostKey, 'hex').toString('base64').replace(/=+$/, '')}`
  let last = ''
  const active = await waitActive(client, droplet.id, config.activeTimeoutS, 2000, (d) => {
    if (d.status !== last) print(`      droplet ${d.id}: ${d.status}`)
    last = d.status
  })
  s.host = {
    name: stringArg(ctx.args, 'name') ?? active.name,
    address: active.ip,
    sshPort: 22,
    hostKey: fingerprint,
    dropletId: active.id,
  }
  save(ctx)
  print(`      ${active.name} is active at ${active.ip}; waiting for SSH`)
  await waitForSsh(active.ip, 22, 180)
}

/** Until the host's SSH port answers with an SSH banner (cloud-init installs our key, then sshd starts). */
async function waitForSsh(address: string, port: number, timeoutS: number): Promise<void> {
  const deadline = Date.now() + timeoutS * 1000
  for (;;) {
    const banner = await new Promise<string>((resolve) => {
      const sock = createConnection({ host: address, port, timeout: 3000 })
      let got = ''
      sock.on('data', (b) => {
        got += b.toString()
        if (got.includes('\n')) sock.destroy()
      })
      sock.on('timeout', () => sock.destroy())
      sock.on('error', () => resolve(''))
      sock.on('close', () => resolve(got))
    })
    if (banner.startsWith('SSH-')) return
    if (Date.now() > deadline)
      throw new PreconditionError(
        `${address}:${port} does not answer SSH after ${timeoutS} s`,
        'Check the droplet in the DigitalOcean console (is it booting? a firewall?), then run again.',
      )
    await new Promise((r) => setTimeout(r, 1000))
  }
}

/**
 * The new host as the env sees it, with one SSH session kept in ctx.hosts (so the emergency's own
 * audit record lands there too); in a dry run, `what` is printed and nothing connects.
 */
async function newHostSession(ctx: Context, what: string) {
  const s = st(ctx)
  if (ctx.dryRun) {
    print(`      would ${what} on ${s.host ? s.host.address : 'the new droplet once it exists'}`)
    return undefined
  }
  const env = onNewHost(s, ctx.env)(ctx.env)
  const host = env.hosts[0] as Host
  let session = ctx.hosts.find((h) => h.name === host.name)
  if (!session) {
    session = await connectHost({ ...ctx, env }, host, readPrivateKey(env, ctx.secrets), false)
    ctx.hosts.push(session)
  }
  return { s, env, host, session }
}

async function healthPhase(ctx: Context): Promise<void> {
  const on = await newHostSession(
    ctx,
    'check every domain through nginx, TLS, headers, containers and services',
  )
  if (!on) return
  const { env, session } = on
  const results: HealthResult[] = [
    ...(await httpChecks(session, env)),
    ...(await tlsChecks(session, env)),
    ...(await headerChecks(session, env)),
    ...(await containerChecks(session, env)),
    ...(await serviceChecks(session, env)),
  ]
  print(
    table([
      ['check', 'target', 'ok', 'value'],
      ...results.map((r) => [r.check, r.target, r.ok === null ? 'n/a' : r.ok ? 'ok' : 'FAIL', r.value]),
    ]),
  )
  const failed = results.filter((r) => r.ok === false)
  if (failed.length)
    throw new RunbookError(
      `${failed.length} health gate(s) failed on the new host: ${failed.map((r) => `${r.check} ${r.target}`).join(', ')}`,
      EXIT.gateFailed,
    )
}

async function verifyPhase(ctx: Context): Promise<void> {
  const on = await newHostSession(
    ctx,
    `compare every table and the canary with backup ${st(ctx).backup?.id}, read the records, and request every domain`,
  )
  if (!on) return
  const { s, env, host, session } = on
  const { manifest } = await readBackupManifest(ctx, s.backup?.id)
  const data = await checkData(session, env, manifest)
  const records = await recordProblems(env, ctx.secrets)
  const domains = await probeDomains(env, host.address)
  print(
    table([
      ['check', 'result'],
      [
        'rows',
        `${data.rowsVerified} of ${manifest.postgres.rows} rows of backup ${manifest.id}; ${data.dataLost} lost`,
      ],
      ['canary', data.canary ? `row of backup ${manifest.id} present` : 'MISSING'],
      [
        'records',
        env.edge
          ? records.length
            ? records.join('; ')
            : `every domain names only ${host.address}`
          : 'n/a (no edge: section)',
      ],
      ...domains.map((d) => [
        d.domain,
        `${d.status ?? d.error} ${d.protocol} ${d.ms} ms ${env.health.edge ? 'through the edge' : `at ${host.address} (the origin the records name)`}`,
      ]),
    ]),
  )
  s.result = { rowsVerified: data.rowsVerified, dataLost: data.dataLost }
  save(ctx)
  const problems = [
    ...data.problems,
    ...records,
    ...domains.filter((d) => d.status !== 200).map((d) => `${d.domain}: ${d.status ?? d.error}`),
  ]
  if (problems.length)
    throw new RunbookError(`verification failed:\n  - ${problems.join('\n  - ')}`, EXIT.gateFailed)
}

function report(ctx: Context): void {
  const s = st(ctx)
  if (ctx.dryRun) {
    print('      would print the timings, the env-file change and what to do with the old droplet')
    return
  }
  const entry = hostEntry(
    s.host as NonNullable<EmergencyState['host']>,
    ctx.env.hosts[0]?.roles ?? ['web', 'data'],
  )
  for (const line of describeChange(ctx.env.file, ctx.env.hosts, entry)) print(`      ${line}`)
  if (ctx.args['write-env'] === true) {
    writeNewHost(ctx.env.file, entry)
    print(`      written to ${ctx.env.file}: commit it (git diff shows only hosts:)`)
  } else print(`      WRITE_ENV=1 writes it; or edit ${ctx.env.file} by hand and commit it`)
  print(
    `      the old host(s) ${ctx.env.hosts.map((h) => h.address).join(', ')}: power off, do not destroy yet (docs/runbooks/emergency.md#afterwards)`,
  )
  s.finishedAt = new Date().toISOString()
  save(ctx)
  const phases = Object.fromEntries(PHASES.map((p) => [p, s.phases[p]?.s ?? 0]))
  print(
    table([
      ['phase', 'seconds'],
      ...Object.entries(phases).map(([p, v]) => [p, String(v)]),
      ['total', String(Math.round(spentS(s) * 10) / 10)],
    ]),
  )
  print(
    `emergency-summary ${JSON.stringify({ run: s.runId, host: s.host?.address, backup: s.backup?.id, release: s.release, total_s: Math.round(spentS(s) * 10) / 10, phases, rows_verified: s.result?.rowsVerified ?? 0, data_lost: s.result?.dataLost ?? null })}`,
  )
}

/** However the run ends: the state says where to resume, and the team hears of it. */
async function onEnd(ctx: Context): Promise<void> {
  const s = states.get(ctx)
  if (!s) return
  const failure = ctx.failure()
  if (failure) {
    for (const p of PHASES)
      if (s.phases[p]?.status === 'running') s.phases[p] = { ...s.phases[p], status: 'failed' }
    writeState(s)
    print(
      `\n  RESUME: run the same make emergency command again: it continues from "${resumePoint(s)}" (${stateFile(ctx.env.name)})`,
    )
  }
  await notifyRunOutcome(ctx, {
    event: 'emergency',
    ok: failure === null,
    title: `emergency of ${ctx.env.name}: ${failure ? `stopped in ${resumePoint(s)}` : `serving from ${s.host?.address}`}`,
    ...(s.release ? { release: s.release } : {}),
    durationS: spentS(s),
    runbook: 'docs/runbooks/emergency.md',
    next: [`run make emergency ENV=${ctx.env.name} again: it resumes from ${resumePoint(s)}`],
  })
}

if (isMain(import.meta.url)) await main(emergency)

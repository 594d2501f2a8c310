import { readBackupManifest } from '../backup/restore.ts'
import { FINGERPRINT } from '../env/fingerprint.ts'
import type { Env } from '../env/load.ts'
import { InputError } from '../report/errors.ts'
import { print, table } from '../report/output.ts'
import { stringArg } from '../run/cli.ts'
import { type Context, confirmMidRun } from '../run/runbook.ts'
import { BUDGET_S } from './run.ts'
import {
  type EmergencyState,
  newState,
  PHASES,
  readState,
  resumePoint,
  spentS,
  stateFile,
  writeState,
} from './state.ts'

// The emergency's first step: where the new host comes from, which backup and release, resume or start.

export async function plan(ctx: Context): Promise<EmergencyState> {
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
    // The newest archived WAL by default: the recovery point is the last segment shipped, not the backup.
    s.toWal = Boolean(manifest.base) && ctx.args['no-wal'] !== true
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
    planTable([
      ['env', `${ctx.env.name} (${ctx.env.kind}); replacing ${old}`],
      [
        'new host',
        s.host ? `${s.host.address} (key ${s.host.hostKey})` : `a new droplet: ${dropletSummary(ctx.env)}`,
      ],
      ['backup', `${s.backup.id} (${s.backup.rows} rows)${describeWal(s)}`],
      ['release', s.release],
      ['domains', Object.values(ctx.env.domains).join(', ')],
      ['phases', PHASES.map((p) => `${p}${s.phases[p]?.status === 'done' ? ' ✓' : ''}`).join(' → ')],
      [
        'budget',
        `${BUDGET_S / 60} minutes${spentS(s) ? `; ${Math.round(spentS(s))} s spent in earlier runs` : ''}`,
      ],
    ]),
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

function describeWal(s: EmergencyState): string {
  if (s.toWal) return ', then its archived WAL replayed to the newest segment (NO_WAL=1: the backup as taken)'
  return s.toWal === false ? ', as taken (no base backup, or NO_WAL=1)' : ''
}

/** A plan's name/value rows as an aligned table, indented under its step (no header row). */
export function planTable(rows: [string, string][]): string {
  return table([['', ''], ...rows])
    .split('\n')
    .slice(1) // the header row is empty
    .map((l) => `      ${l}`)
    .join('\n')
}

export function dropletSummary(env: Env): string {
  const d = env.droplet
  return d ? `${d.size} ${d.image} in ${d.region} (${d.apiBase})` : '(no droplet: section)'
}

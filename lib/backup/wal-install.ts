/**
 * make backup's half of continuous WAL archiving (setup-server installed the shipper service): the
 * shipper's config (the store, the Spaces key, the recipient: the public half of BACKUP_KEY, so the host
 * can seal but never open), written as the deploy user 0600, then the spool turned on for Postgres's
 * archive_command. No sudo. Idempotent: a second run changes nothing.
 * On-call page: docs/runbooks/backup.md#wal-archiving
 */
import {
  ARCHIVE_TIMEOUT_S,
  archiverProbe,
  enableSpool,
  parseArchiverState,
  shipperActiveProbe,
  spoolEnabledProbe,
  walShipperConfigContent,
  walShipperConfigPath,
  walShipperUnit,
} from '../commands/wal.ts'
import { ACCESS_KEY_SECRET, SECRET_KEY_SECRET } from '../env/backup.ts'
import { ensureFile } from '../host/converge.ts'
import type { HostSession } from '../host/session.ts'
import { print } from '../report/output.ts'
import type { Context, StepStatus } from '../run/runbook.ts'
import { DB_NAME, DB_USER, deployFiles } from '../stack/files.ts'
import { formatRecipient, type Keyring } from './keys.ts'

export async function configureWalArchiving(
  ctx: Context,
  host: HostSession,
  keyring: Keyring,
): Promise<{ status: StepStatus; on: boolean }> {
  const env = ctx.env
  const store = env.backup?.store
  if (store?.type !== 's3') {
    print(
      `      WAL archiving needs an S3 store (backup.store.type: s3): ${host.name} cannot reach a directory on this machine. Recovery point: the last backup.`,
    )
    return { status: 'skipped', on: false }
  }
  const active = (await host.exec(shipperActiveProbe(env.name), { probe: true, echo: false })).stdout.trim()
  if (active !== 'active') {
    // The backup matters more: it goes on, and health's "wal shipping" check keeps saying this.
    print(
      `      ${host.name}: the WAL shipper (${walShipperUnit(env.name)}) is ${active || 'not installed'}: make setup-server ENV=${env.name} installs it. Until then the recovery point is the last backup.`,
    )
    return { status: 'skipped', on: false }
  }
  let changed = await ensureFile(host, {
    path: walShipperConfigPath(env.name),
    content: walShipperConfigContent({
      version: 1,
      env: env.name,
      store: { endpoint: store.endpoint, region: store.region, bucket: store.bucket, prefix: store.prefix },
      accessKeyId: ctx.secrets[ACCESS_KEY_SECRET] ?? '',
      secretAccessKey: ctx.secrets[SECRET_KEY_SECRET] ?? '',
      recipient: formatRecipient(keyring.current.x25519.recipient),
    }),
    mode: '0600',
  })
  const status = (): StepStatus => (changed ? 'changed' : 'ok')
  if (ctx.dryRun) return { status: status(), on: false }

  // Postgres archives only if it was started with archive_mode=on (compose/data.yaml); one created
  // before that keeps it off until a planned restart.
  const data = deployFiles(env).data.project
  const state = parseArchiverState(
    (await host.exec(archiverProbe(data, DB_USER, DB_NAME), { probe: true, echo: false, allowFail: true }))
      .stdout,
  )
  if (!state) {
    // Postgres is down or unreachable: the dump below says so, with what to do.
    print(`      ${host.name}: Postgres did not answer: the spool is left as it is`)
    return { status: status(), on: false }
  }
  if (state.mode !== 'on') {
    print(
      `      ${host.name}: Postgres runs with archive_mode=${state.mode}: it was created before WAL archiving. It starts after one planned restart (docs/runbooks/backup.md#wal-archiving); until then the recovery point is the last backup.`,
    )
    return { status: status(), on: false }
  }
  if ((await host.exec(spoolEnabledProbe(data), { probe: true, echo: false })).stdout.trim() !== 'on') {
    await host.exec(enableSpool(data), { echo: false })
    changed = true
  }
  print(
    `      ${host.name}: WAL archiving on: each segment is sealed to ${keyring.current.id} and shipped within ${state.timeoutS} s of its first write${state.lastArchived ? ` (last archived ${state.lastArchived} at ${state.lastArchivedAt})` : ''}`,
  )
  if (state.timeoutS > ARCHIVE_TIMEOUT_S)
    print(
      `      ${host.name}: Postgres was started with archive_timeout=${state.timeoutS} s (compose/data.yaml now says ${ARCHIVE_TIMEOUT_S}): the recovery point can lag that much; one planned restart applies it (docs/runbooks/backup.md#wal-archiving)`,
    )
  return { status: status(), on: true }
}

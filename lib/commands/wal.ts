import { projectContainers } from './compose.ts'
import { ownerModeIs } from './files.ts'
import { quote } from './shell.ts'
import { walDir, walShipperConfigPath, walSpoolDir, walStatusPath } from './wal-paths.ts'
import { NODE_BIN, WATCHDOG_SANDBOX } from './watchdog.ts'

export { walDir, walShipperConfigPath, walSpoolDir, walStatusPath }

// Continuous WAL archiving, the host's half (docs/runbooks/backup.md#wal-archiving): Postgres's
// archive_command copies each finished segment into a spool on the host (a bind mount), and the WAL
// shipper, a systemd service, seals each one to the env's backup recipient (public key only), uploads it,
// reads it back, and only then removes it from the spool. setup-server (root) installs the service;
// make backup (the deploy user) writes its config and turns the spool on. Pure: paths, unit files and
// commands as strings.

/** Where the spool is inside the Postgres container (compose/data.yaml mounts it). */
export const WAL_SPOOL_MOUNT = '/wal-spool'
/** The marker that turns the archive_command on: without it, segments are dropped (no shipper yet). */
export const WAL_ENABLED_MARKER = 'ENABLED'
export const WAL_SHIPPER_BUNDLE = '/usr/local/lib/conciliaextrato/wal-shipper.mjs'
export const walShipperUnit = (env: string) => `conciliaextrato-wal-shipper@${env}.service`
export const walShipperUnitPath = (env: string) => `/etc/systemd/system/${walShipperUnit(env)}`
/**
 * Seconds after which Postgres switches to a new segment even if the current one is not full. With the
 * shipper's poll (2 s) and upload, the recovery point stays under a minute (make bench-pitr's rpo_s):
 * at 60 s it could reach 60 s plus the shipping. Each switch costs one object of a few KiB.
 */
export const ARCHIVE_TIMEOUT_S = 30

/**
 * Postgres's archive_command (run by /bin/sh as the postgres user in its container): the segment is
 * copied under a temporary name, flushed, then renamed, so the shipper never sees half a segment. While
 * the marker is absent (no shipper installed yet), segments are acknowledged and dropped: no backup
 * chain exists to extend, and the spool must not fill the disk.
 */
export function archiveCommand(spool = WAL_SPOOL_MOUNT): string {
  const tmp = `${spool}/.%f.tmp`
  return `test ! -f ${spool}/${WAL_ENABLED_MARKER} || { cp %p ${tmp} && sync ${tmp} && mv ${tmp} ${spool}/%f; }`
}

/** The `postgres -c ...` arguments that turn archiving on (compose/data.yaml holds the same). */
export function archiveArgs(): string[] {
  return [
    'postgres',
    '-c',
    'archive_mode=on',
    '-c',
    `archive_timeout=${ARCHIVE_TIMEOUT_S}`,
    '-c',
    `archive_command=${archiveCommand()}`,
  ]
}

/** The spool on the host: root's directory, owned by the container's postgres user once the shipper is on. */
export function spoolDirs(env: string): { check: string; apply: string } {
  const dir = walDir(env)
  return {
    check: ownerModeIs(dir, 'root:root 700'),
    apply: `install -d -m 0700 -o root -g root ${quote(dir)}`,
  }
}

const postgresContainer = (dataProject: string) =>
  `$(${projectContainers(dataProject, 'postgres')} | head -n1)`

/**
 * Turns the archive_command on (run by the deploy user once the shipper has its config): inside the
 * Postgres container, as its root, the spool (the bind mount) is handed to the container's postgres user
 * and the marker set. No sudo on the host is needed.
 */
export function enableSpool(dataProject: string): string {
  const m = WAL_SPOOL_MOUNT
  return `docker exec -u root ${postgresContainer(dataProject)} sh -c ${quote(
    `chown postgres:postgres ${m} && chmod 0700 ${m} && touch ${m}/${WAL_ENABLED_MARKER} && chown postgres:postgres ${m}/${WAL_ENABLED_MARKER}`,
  )}`
}

export const spoolEnabledProbe = (dataProject: string) =>
  `docker exec ${postgresContainer(dataProject)} test -f ${WAL_SPOOL_MOUNT}/${WAL_ENABLED_MARKER} && echo on || echo off`

/**
 * Postgres's archiver as it sees itself: `archive_mode|last_archived_wal|last_archived_time|failed_count|last_failed_wal|last_failed_time`.
 * `archive_mode` is off on a Postgres created before archiving existed (it needs one restart).
 */
export function archiverProbe(dataProject: string, user: string, db: string): string {
  const sql =
    "select current_setting('archive_mode'), coalesce(last_archived_wal,''), coalesce(to_char(last_archived_time at time zone 'UTC','YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),''), failed_count, coalesce(last_failed_wal,''), coalesce(to_char(last_failed_time at time zone 'UTC','YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),'') , (select setting from pg_settings where name = 'archive_timeout') from pg_stat_archiver"
  return `docker exec ${postgresContainer(dataProject)} psql -U ${quote(user)} -d ${quote(db)} -XAtq -F '|' -c ${quote(sql)}`
}

export interface ArchiverState {
  mode: string
  lastArchived?: string
  lastArchivedAt?: string
  failedCount: number
  lastFailed?: string
  lastFailedAt?: string
  /** The running server's archive_timeout, seconds (0: off). */
  timeoutS: number
}

export function parseArchiverState(out: string): ArchiverState | undefined {
  const line = out.trim().split('\n').at(-1) ?? ''
  const f = line.split('|')
  if (f.length !== 7) return undefined
  const [mode = '', last, lastAt, failed, lastFailed, lastFailedAt, timeout] = f
  return {
    mode,
    lastArchived: last || undefined,
    lastArchivedAt: lastAt || undefined,
    failedCount: Number(failed) || 0,
    lastFailed: lastFailed || undefined,
    lastFailedAt: lastFailedAt || undefined,
    timeoutS: Number(timeout) || 0,
  }
}

/** The shipper's unit: always running, restarted after any failure; it reads its config (0600). */
export function walShipperService(env: string): string {
  return [
    '# Managed by make backup: ships each finished WAL segment from the spool to the backup store.',
    '[Unit]',
    `Description=ConciliaExtrato WAL shipper for env ${env}: seal, upload, read back`,
    'After=network-online.target docker.service',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${NODE_BIN} ${WAL_SHIPPER_BUNDLE} ${env}`,
    'Restart=always',
    'RestartSec=5',
    'Nice=5',
    ...WATCHDOG_SANDBOX(env).map((l) =>
      l.startsWith('ReadWritePaths=') ? `ReadWritePaths=-${walDir(env)}` : l,
    ),
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n')
}

export function shipperCheck(env: string): string {
  const u = quote(walShipperUnit(env))
  return `systemctl is-enabled --quiet ${u} && systemctl is-active --quiet ${u}`
}

/** Enables and (re)starts the shipper: a restart when its files changed, so it runs the new ones. */
export function shipperActivate(env: string, changed: boolean): string {
  const u = quote(walShipperUnit(env))
  return changed
    ? `systemctl daemon-reload && systemctl enable --quiet ${u} && systemctl restart ${u}`
    : `systemctl enable --quiet --now ${u}`
}

/** The shipper's config (0600, the deploy user's): it holds the Spaces key, never BACKUP_KEY. */
export interface WalShipperFile {
  version: 1
  env: string
  /** The env's store (an S3 bucket: a directory on the operator's machine cannot be reached from here). */
  store: { endpoint: string; region: string; bucket: string; prefix: string }
  accessKeyId: string
  secretAccessKey: string
  /** `cebk-recipient:...`: the public half of BACKUP_KEY. */
  recipient: string
}

export function walShipperConfigContent(file: WalShipperFile): string {
  return `${JSON.stringify(file, null, 2)}\n`
}

/** Whether the shipper service runs (any user may ask systemd; no sudo). */
export const shipperActiveProbe = (env: string) =>
  `systemctl is-active ${quote(walShipperUnit(env))} 2>/dev/null || true`

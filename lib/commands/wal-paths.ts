import { remotePaths } from '../env/host-paths.ts'

// Where the WAL shipper's files are on the host (lib/commands/wal.ts has the rest). Kept apart, with no
// heavy imports, because the shipper's own bundle (lib/backup/wal-shipper-main.ts) needs them too.

export const walDir = (env: string) => `/var/lib/conciliaextrato/wal/${env}`
export const walSpoolDir = (env: string) => `${walDir(env)}/spool`
/** The shipper's last state: {at, shipped, last, lastAt, backlog, error?} (read by health and backups). */
export const walStatusPath = (env: string) => `${walDir(env)}/status.json`
/**
 * Its config (the store, the Spaces key, the recipient): written by make backup as the deploy user, 0600,
 * in the env's directory; the shipper reads it before every pass. Spool and status paths are not in it.
 */
export const walShipperConfigPath = (env: string) => `${remotePaths({ name: env }).base}/wal-shipper.json`

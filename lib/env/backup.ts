import { isAbsolute, resolve } from 'node:path'
import type { Validator } from './validate.ts'

/** Where backups are kept: a local directory, or an S3-compatible bucket such as DigitalOcean Spaces. */
export type StoreConfig =
  | { type: 'local'; dir: string }
  | { type: 's3'; endpoint: string; region: string; bucket: string; prefix: string }

/** The secrets holding an S3 store's (a Space's) key pair. */
export const ACCESS_KEY_SECRET = 'SPACES_ACCESS_KEY_ID'
export const SECRET_KEY_SECRET = 'SPACES_SECRET_ACCESS_KEY'
export const S3_SECRETS = [ACCESS_KEY_SECRET, SECRET_KEY_SECRET] as const
/**
 * The prune key (backup.prune_key): the only one that deletes. People hold it, for make prune-backups
 * APPLY=1; CI and the hosts hold only the everyday key above.
 */
export const PRUNE_ACCESS_KEY_SECRET = 'SPACES_PRUNE_ACCESS_KEY_ID'
export const PRUNE_SECRET_KEY_SECRET = 'SPACES_PRUNE_SECRET_ACCESS_KEY'
export const S3_PRUNE_SECRETS = [PRUNE_ACCESS_KEY_SECRET, PRUNE_SECRET_KEY_SECRET] as const

// The `backup:` section of an env file: where backups go, how long they are kept, what they hold.
export interface BackupConfig {
  store: StoreConfig
  /** Backups kept per tier; replacedDays: how long a database a restore replaced is kept, then dropped. */
  keep: { daily: number; weekly: number; monthly: number; replacedDays: number }
  /** Also save app.env and data.env (the app's secrets). Off by default: the secrets live elsewhere. */
  includeSecrets: boolean
  /** S3 only: deletes (prune-backups APPLY=1) use a key of their own, which CI and the hosts never hold. */
  pruneKey: boolean
  /** Secrets the section needs: BACKUP_KEY and, for S3, the Spaces credentials (and the prune key's). */
  secretNames: string[]
}

export function readBackup(v: Validator, raw: unknown, envFile: string): BackupConfig | undefined {
  if (raw === undefined || raw === null) return undefined
  const obj = v.object(raw, 'backup', ['store', 'keep', 'include_secrets', 'prune_key'])
  const store = readStore(v, obj?.store, 'backup.store', envFile)
  const type = store.type
  const pruneKey = v.boolean(obj, 'prune_key', 'backup', false)
  if (pruneKey && type !== 's3')
    v.problem('backup.prune_key', 'is for an s3 store (a local directory has no keys)')
  const keep = v.object(obj?.keep ?? {}, 'backup.keep', ['daily', 'weekly', 'monthly', 'replaced_days'])
  const n = (k: string, d: number) =>
    v.integer(keep, k, 'backup.keep', { min: 0, max: 1000, default: d }) ?? d
  return {
    store,
    keep: {
      daily: n('daily', 7),
      weekly: n('weekly', 4),
      monthly: n('monthly', 12),
      replacedDays: v.integer(keep, 'replaced_days', 'backup.keep', { min: 1, max: 365, default: 14 }) ?? 14,
    },
    includeSecrets: v.boolean(obj, 'include_secrets', 'backup', false),
    pruneKey,
    secretNames: ['BACKUP_KEY', ...(type === 's3' ? S3_SECRETS : []), ...(pruneKey ? S3_PRUNE_SECRETS : [])],
  }
}

/** A store: a local directory (relative to the env file) or an S3-compatible bucket (a Space). */
export function readStore(v: Validator, raw: unknown, path: string, envFile: string): StoreConfig {
  const st = v.object(raw, path, ['type', 'dir', 'endpoint', 'region', 'bucket', 'prefix'])
  const type = v.string(st, 'type', path, { oneOf: ['s3', 'local'] })
  let store: StoreConfig = { type: 'local', dir: '' }
  if (type === 'local') {
    const dir = v.string(st, 'dir', path, { form: 'a directory on the machine running the runbook' }) ?? ''
    // Relative to the env file, so `env/local.yaml` can keep its backups in the project.
    store = { type: 'local', dir: isAbsolute(dir) ? dir : resolve(envFile, '..', dir) }
  } else if (type === 's3') {
    store = {
      type: 's3',
      endpoint:
        v.string(st, 'endpoint', path, {
          pattern: /^https?:\/\/[^\s/]+\/?$/,
          form: 'an endpoint URL like https://fra1.digitaloceanspaces.com',
        }) ?? '',
      region: v.string(st, 'region', path, { default: 'us-east-1' }) ?? 'us-east-1',
      bucket:
        v.string(st, 'bucket', path, {
          pattern: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
          form: 'a bucket (Space) name',
        }) ?? '',
      prefix:
        v.string(st, 'prefix', path, {
          default: '',
          pattern: /^$|^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/,
          form: 'a key prefix like backups/production (no leading or trailing slash)',
        }) ?? '',
    }
  }
  return store
}

/** openStore(): the configured backup store, a local directory or an S3-compatible bucket (DigitalOcean Spaces). */
import { S3_PRUNE_SECRETS, type StoreConfig } from '../env/backup.ts'
import { InputError } from '../report/errors.ts'
import { ACCESS_KEY_SECRET, type BackupStore, SECRET_KEY_SECRET } from './store.ts'
import { LocalStore } from './store-local.ts'
import { S3Store, type S3StoreOptions } from './store-s3.ts'

export * from './store.ts'

/**
 * `key`: 'everyday' (writes and reads: what CI and the hosts hold) or 'prune' (the prune key, for
 * deleting: backup.prune_key; people hold it).
 */
export function openStore(
  config: StoreConfig,
  secrets: Readonly<Record<string, string | undefined>> = {},
  s3Options: S3StoreOptions = {},
  key: 'everyday' | 'prune' = 'everyday',
): BackupStore {
  if (config.type === 'local') return new LocalStore(config.dir)
  const [idName, secretName] = key === 'prune' ? S3_PRUNE_SECRETS : [ACCESS_KEY_SECRET, SECRET_KEY_SECRET]
  const missing = [idName, secretName].filter((name) => !secrets[name])
  if (missing.length) {
    throw new InputError(
      `the backup store s3://${config.bucket} needs the secret(s) ${missing.join(', ')}`,
      [],
      key === 'prune'
        ? 'The prune key (backup.prune_key) is held by people, not CI: set both secrets in your shell for this run (docs/runbooks/backup.md#protection).'
        : 'Create a Spaces access key (DigitalOcean control panel > API > Spaces Keys) and set both secrets.',
    )
  }
  const credentials = {
    accessKeyId: secrets[idName] as string,
    secretAccessKey: secrets[secretName] as string,
  }
  return new S3Store(config, credentials, s3Options)
}

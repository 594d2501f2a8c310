/** openStore(): the configured backup store, a local directory or an S3-compatible bucket (DigitalOcean Spaces). */
import type { StoreConfig } from '../env/backup.ts'
import { InputError } from '../report/errors.ts'
import { ACCESS_KEY_SECRET, type BackupStore, SECRET_KEY_SECRET } from './store.ts'
import { LocalStore } from './store-local.ts'
import { S3Store, type S3StoreOptions } from './store-s3.ts'

export * from './store.ts'

export function openStore(
  config: StoreConfig,
  secrets: Readonly<Record<string, string | undefined>> = {},
  s3Options: S3StoreOptions = {},
): BackupStore {
  if (config.type === 'local') return new LocalStore(config.dir)
  const missing = [ACCESS_KEY_SECRET, SECRET_KEY_SECRET].filter((name) => !secrets[name])
  if (missing.length) {
    throw new InputError(
      `the backup store s3://${config.bucket} needs the secret(s) ${missing.join(', ')}`,
      [],
      'Create a Spaces access key (DigitalOcean control panel > API > Spaces Keys) and set both secrets.',
    )
  }
  const credentials = {
    accessKeyId: secrets[ACCESS_KEY_SECRET] as string,
    secretAccessKey: secrets[SECRET_KEY_SECRET] as string,
  }
  return new S3Store(config, credentials, s3Options)
}

import { readStore, S3_SECRETS, type StoreConfig } from './backup.ts'
import type { Validator } from './validate.ts'

// The `status_page:` section of an env file: where `make status-page` publishes the public page. A store
// of its own, not the backup store's (the backup bucket never lets its writer replace an object; this
// page is replaced on every run): an S3-compatible bucket (a Space) whose objects are public, written
// with the Spaces key the backups use, or a local directory (a sandbox env). `url` is where people read
// it (the bucket's public address, or a CDN in front of it): printed, and linked from docs.
export interface StatusPageConfig {
  store: StoreConfig
  url?: string
  /** The days of history on the page (90 by default). */
  days: number
}

export function readStatusPage(v: Validator, raw: unknown, envFile: string): StatusPageConfig | undefined {
  if (raw === undefined || raw === null) return undefined
  const obj = v.object(raw, 'status_page', ['store', 'url', 'days'])
  const store = readStore(v, obj?.store, 'status_page.store', envFile)
  const url = v.string(obj, 'url', 'status_page', {
    optional: true,
    pattern: /^https?:\/\/[^\s/]+(\/\S*)?$/,
    form: 'the http(s) address people read the page at',
  })
  const days = v.integer(obj, 'days', 'status_page', { min: 1, max: 365, default: 90 }) ?? 90
  return { store, ...(url ? { url } : {}), days }
}

/** The secrets the page's store takes: the Spaces key pair for an S3 store, none for a directory. */
export function statusPageSecrets(config: StatusPageConfig | undefined): string[] {
  return config?.store.type === 's3' ? [...S3_SECRETS] : []
}

/**
 * Is the backup store safe from the credentials that write to it? A Spaces access key is read-only or
 * read/write/delete, never add-only, so the host's and CI's key can delete or overwrite every backup
 * (a stolen key, a ransomware run, a wrong prune). Only the bucket can keep what that key deletes:
 * versioning (a deleted or overwritten object keeps its earlier version, which only the bucket's owner
 * removes) or object lock (objects cannot be deleted before their retention ends).
 * Pure: the runbook reads the settings (BackupStore.protection) and prints this verdict.
 * On-call page: docs/runbooks/backup.md#protection
 */
import type { Protection } from '../store/store.ts'

export interface ProtectionVerdict {
  /** false: nothing keeps what the writing key deletes. */
  ok: boolean
  /** One line for the listing. */
  summary: string
  /** What to do when it is not ok (or cannot be told). */
  next?: string
}

export interface BucketRef {
  endpoint: string
  bucket: string
}

/** The owner's command that turns versioning on (AWS CLI against Spaces' endpoint). */
export function enableVersioningCommand(b: BucketRef): string {
  return `aws s3api put-bucket-versioning --endpoint-url ${b.endpoint} --bucket ${b.bucket} --versioning-configuration Status=Enabled`
}

export function protectionVerdict(p: Protection | undefined, b: BucketRef | undefined): ProtectionVerdict {
  if (!p || !b) {
    return {
      ok: true,
      summary: 'a directory on this machine: no bucket settings to check (keep a copy off this machine)',
    }
  }
  const kept: string[] = []
  if (p.versioning === 'enabled')
    kept.push('versioning on: a deleted or overwritten backup keeps its earlier version')
  if (p.objectLock === 'enabled')
    kept.push(
      `object lock on${p.retention ? ` (${p.retention})` : ''}: no backup can be deleted before it ends`,
    )
  if (kept.length) return { ok: true, summary: `protected: ${kept.join('; ')}` }
  if (p.versioning === 'unreadable' && p.objectLock === 'unreadable') {
    return {
      ok: true,
      summary: `unknown: this key may not read the bucket's settings (${p.why ?? 'refused'})`,
      next: `Check in the control panel that bucket ${b.bucket} has versioning on (Spaces > ${b.bucket} > Settings), or run make backups with the owner's key.`,
    }
  }
  const state =
    p.versioning === 'suspended'
      ? 'versioning is suspended and there is no object lock'
      : 'neither versioning nor object lock is on'
  return {
    ok: false,
    summary: `NOT protected: ${state}; the key that writes the backups can delete every one of them`,
    next: `As the bucket's owner (a full-access key, not the env's), turn versioning on: ${enableVersioningCommand(b)}; then expire old versions with a lifecycle rule (docs/runbooks/backup.md#protection) and run make backups again.`,
  }
}

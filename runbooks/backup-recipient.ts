/**
 * backup-recipient — the public half of the env's backup key: what a machine holds that must seal
 * backup objects without being able to open them (format version 3, lib/backup/format.ts). Printing
 * it needs BACKUP_KEY; the line printed is not a secret (it opens nothing).
 * Read-only; needs no host. On-call page: docs/runbooks/backup.md#recipient
 */
import { formatRecipient, Keyring } from '../lib/backup/keys.ts'
import { print } from '../lib/report/output.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'

export const backupRecipient: RunbookSpec = {
  name: 'backup-recipient',
  mutates: false,
  offline: true,
  needs: () => ['backup-key'],
  steps: [
    {
      title: 'Derive the recipient of each backup key',
      async run(ctx) {
        const keyring = Keyring.fromSecrets(ctx.secrets)
        for (const key of keyring.keys)
          print(
            `      ${formatRecipient(key.x25519.recipient)}  (${key.source}${key === keyring.current ? ', seals new objects' : ''})`,
          )
        return 'ok'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(backupRecipient)

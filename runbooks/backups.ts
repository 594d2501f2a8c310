/**
 * backups — the env's backups in its store, newest first: which are complete, their size, and the
 * key each needs; the WAL archive's chain (a gap is exit 3); then whether the store keeps what its writing
 * key deletes (exit 3 if not). Read-only;
 * needs no host (it works while the droplet is gone).
 * On-call page: docs/runbooks/backup.md#listing
 */
import { BASE_PART } from '../lib/backup/base-backup.ts'
import { listBackups, manifestKey } from '../lib/backup/catalog.ts'
import { inspectHeader } from '../lib/backup/format.ts'
import { protectionVerdict } from '../lib/backup/protection.ts'
import { openBackupTarget } from '../lib/backup/take.ts'
import { archivedWal, describeBrokenChains, walChains } from '../lib/backup/wal-archive.ts'
import { PreconditionError } from '../lib/report/errors.ts'
import { print, table } from '../lib/report/output.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { readObject } from '../lib/store/storage.ts'

export const backups: RunbookSpec = {
  name: 'backups',
  mutates: false,
  offline: true,
  // What the store holds, and whether the keys at hand can open each backup: no host.
  needs: () => ['store', 'backup-key'],
  steps: [
    {
      title: 'List the backups in the store',
      async run(ctx) {
        const { store, keyring } = openBackupTarget(ctx)
        const entries = await listBackups(store, ctx.env.name, { keyring })
        const rows = await Promise.all(
          entries.map(async (e, i) => {
            let key = '?'
            if (e.complete) {
              const head = await readObject(store, manifestKey(ctx.env.name, e.id)).catch(() => undefined)
              if (head) key = inspectHeader(head).keyId
            }
            const status = e.complete
              ? i === entries.findIndex((x) => x.complete)
                ? 'complete, latest'
                : 'complete'
              : `incomplete${e.problem ? `: ${e.problem}` : ''}`
            const known = key === '?' ? '' : keyring.byId(key) ? '' : ' (key not in keyring)'
            return [
              e.id,
              e.createdAt.toISOString(),
              status,
              `${(e.bytes / 1048576).toFixed(1)} MB`,
              // A base backup: restore AT=<time> can start from it.
              e.parts.includes(BASE_PART) ? 'yes' : '-',
              `${key}${known}`,
            ]
          }),
        )
        print(`\n${ctx.env.name}: ${entries.length} backup(s) in ${store.description}`)
        print(table([['id', 'taken at', 'status', 'size', 'base', 'key id'], ...rows]))
        return 'ok'
      },
    },
    {
      title: 'The WAL archive: one unbroken chain of segments',
      next: 'A gap means the segments in it are lost: take a backup now (make backup ENV=<env>), so recovery no longer needs them, then find why (docs/runbooks/backup.md#wal-archiving).',
      async run(ctx) {
        const { store } = openBackupTarget(ctx)
        const chains = walChains(await archivedWal(store, ctx.env.name))
        if (chains.length === 0) {
          print(
            `WAL archive: empty${ctx.env.backup?.store.type === 's3' ? ' (make backup turns archiving on)' : ''}`,
          )
          return 'ok'
        }
        // One chain per Postgres cluster: a new data host (an emergency) starts a chain of its own.
        for (const c of chains)
          print(
            `WAL archive of cluster ${c.system}: ${c.chain.count} segment(s), ${c.chain.first} to ${c.chain.last} (${(c.bytes / 1048576).toFixed(1)} MB), timeline(s) ${c.chain.timelines.join(', ')}${c.gaps ? `; ${c.gaps}` : ''}`,
          )
        const broken = describeBrokenChains(chains)
        if (broken) throw new PreconditionError(`WAL archive of ${ctx.env.name}: ${broken}`)
        return 'ok'
      },
    },
    {
      title: 'Check that the store keeps what its writing key deletes',
      async run(ctx) {
        const { store } = openBackupTarget(ctx)
        const cfg = ctx.env.backup?.store
        const bucket = cfg?.type === 's3' ? { endpoint: cfg.endpoint, bucket: cfg.bucket } : undefined
        const verdict = protectionVerdict(await store.protection?.(), bucket)
        print(`protection: ${verdict.summary}`)
        if (bucket)
          print(
            ctx.env.backup?.pruneKey
              ? 'deleting: only with the prune key (backup.prune_key), which CI and the hosts do not hold; no upload overwrites an object'
              : `deleting: with the everyday key (no backup.prune_key in ${ctx.env.file}): CI and the hosts could prune; no upload overwrites an object`,
          )
        if (!verdict.ok) throw new PreconditionError(`${store.description}: ${verdict.summary}`, verdict.next)
        if (verdict.next) print(`  ${verdict.next}`)
        return 'ok'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(backups)

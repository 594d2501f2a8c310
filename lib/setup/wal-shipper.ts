import {
  shipperActivate,
  shipperCheck,
  spoolDirs,
  WAL_SHIPPER_BUNDLE,
  walShipperService,
  walShipperUnitPath,
} from '../commands/wal.ts'
import { ensure, ensureFile } from '../host/converge.ts'
import { buildHostBundle, ensureNode } from '../host/node-program.ts'
import { print } from '../report/output.ts'
import { type Context, changedIf, type Step } from '../run/runbook.ts'

// The WAL shipper (lib/backup/wal-shipper-main.ts) on the data host: Debian's nodejs, the bundle, its
// directory and a systemd service that is always running. Its config (the store, the Spaces key, the
// recipient) is make backup's to write (docs/runbooks/backup.md#wal-archiving): setup-server holds none.

let bundled: Promise<string> | undefined
/** Built once per run; the same sources give the same bytes (ensureFile then sees no change). */
export const walShipperBundle = () => {
  bundled ??= buildHostBundle('lib/backup/wal-shipper-main.ts', 'setup-server', undefined, {
    cjsRequire: true,
  })
  return bundled
}

export const walShipper: Step = {
  title:
    'WAL shipper on the data host: nodejs, the shipper, its systemd service (make backup gives it its config)',
  next: 'See the error above; `systemctl status conciliaextrato-wal-shipper@<env>` and its journal on the host; docs/runbooks/backup.md#wal-archiving.',
  async run(ctx: Context) {
    const env = ctx.env
    if (env.backup?.store.type !== 's3') {
      print(
        "      no S3 backup store: no WAL archiving (the host cannot reach a directory on the operator's machine)",
      )
      return 'skipped'
    }
    // Only on the env's data host (setup-server --host may run on another one alone).
    const data = env.hosts.find((h) => h.roles.includes('data'))
    const host = ctx.hosts.find((h) => h.name === data?.name)
    if (!host) {
      print(`      the data host (${data?.name ?? 'none'}) is not in this run: nothing to do here`)
      return 'skipped'
    }
    const file = (path: string, content: string, mode: string) =>
      ensureFile(host, { path, content, mode, owner: 'root:root' })
    const node = await ensureNode(host, 'the WAL shipper')
    const dirs = await ensure(host, spoolDirs(env.name).check, spoolDirs(env.name).apply)
    const code = await file(WAL_SHIPPER_BUNDLE, await walShipperBundle(), '0644')
    const unit = await file(walShipperUnitPath(env.name), walShipperService(env.name), '0644')
    if (code || unit) await host.exec(shipperActivate(env.name, true))
    const started = await ensure(host, shipperCheck(env.name), shipperActivate(env.name, false))
    const changed = node || dirs || code || unit || started
    print(`      ${host.name}: ${changed ? (ctx.dryRun ? 'would change' : 'changed') : 'ok'}`)
    return changedIf(changed)
  },
}

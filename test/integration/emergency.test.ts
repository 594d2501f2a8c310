import { existsSync, readFileSync } from 'node:fs'
import * as assert from 'uvu/assert'
import { listBackups } from '../../lib/backup/catalog.ts'
import { stateFile } from '../../lib/emergency/state.ts'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { emergency } from '../../runbooks/emergency.ts'
import { suite } from '../harness.ts'
import { DRILL_ENV, type Drill, destroyDroplet, startDrill } from '../sandbox/emergency-drill.ts'
import { auditRecords, onDroplet, runCaptured, spawnScript } from '../support/test-bed.ts'

// The worst night on sandbox droplets: A (deployed, with data, a backup and its records at the local
// Cloudflare API) is destroyed; emergency builds B through the local DigitalOcean API. Interrupted in
// the middle of the restore, the same command resumes and finishes.
const test = suite('emergency: a new droplet from the backup, interrupted and resumed', { timeoutS: 900 })
let drill: Drill
let tombstone = ''
const creates = () =>
  drill.doApi.requests.filter((r) => r.method === 'POST' && r.path === '/v2/droplets').length
const args = ['--env', DRILL_ENV, '--create', '--yes']

test.before(async () => {
  drill = await startDrill({ rows: 20_000 })
  tombstone = await destroyDroplet(drill, drill.image)
})

test.after(async () => {
  await drill?.close()
})

test('bad input: where the host comes from must be said, and HOST needs HOST_KEY', async () => {
  const none = await runCaptured(emergency, ['--env', DRILL_ENV, '--yes'])
  assert.is(none.code, 2, none.out)
  assert.match(none.out, 'CREATE=1 creates a droplet')
  const noKey = await runCaptured(emergency, ['--env', DRILL_ENV, '--yes', '--address', '172.31.255.1'])
  assert.is(noKey.code, 2, noKey.out)
  assert.match(noKey.out, 'HOST_KEY=<SHA256:...> is required with HOST=172.31.255.1')
  assert.is(creates(), 0)
})

test('--dry-run shows the plan and each phase, creates nothing, writes no state', async () => {
  const { code, out } = await runCaptured(emergency, [...args, '--dry-run'])
  assert.is(code, 0, out)
  assert.match(out, `replacing web-a ${drill.a.ip}`)
  assert.match(
    out,
    new RegExp(
      `backup +${drill.backup.id} \\(${drill.backup.rows} rows\\), then its archived WAL replayed to the newest segment`,
    ),
  )
  assert.match(out, '--fresh-host --at latest')
  assert.match(out, 'would POST http://127.0.0.1:')
  assert.match(out, 'host key generated here (cloud-init user_data, not shown)')
  assert.not.match(out, 'PRIVATE KEY')
  for (const phase of ['setup-server', 'deploy', 'restore', 'dns'])
    assert.match(out, `would run: ${phase} --env ${DRILL_ENV} --yes`)
  assert.match(out, '--release v1 --branch main')
  assert.is(creates(), 0)
  assert.not.ok(existsSync(stateFile(DRILL_ENV)))
})

test('interrupted during the restore, run again: resumes from the restore and serves from B', async () => {
  const first = spawnScript('runbooks/emergency.ts', args)
  await first.until('restore: restore the backup')
  await first.until('Restore Postgres into a scratch database')
  first.child.kill('SIGINT')
  assert.is(await first.exit, 130, first.output())
  assert.match(
    first.output(),
    'RESUME: run the same make emergency command again: it continues from "restore"',
  )
  const saved = JSON.parse(readFileSync(stateFile(DRILL_ENV), 'utf8')) as {
    phases: Record<string, { status: string }>
    host: { address: string; hostKey: string; hostKeyRotated?: boolean }
  }
  // The host key cloud-init installed (still served by the metadata service) was replaced after the
  // first pinned login; the new one is what the run pins from then on.
  const generated = /host key (SHA256:\S+) \(generated here\)/.exec(first.output())?.[1]
  assert.ok(generated, first.output())
  assert.match(
    first.output(),
    `host key replaced after the first pinned login (cloud-init's stays in the metadata): ${saved.host.hostKey}`,
  )
  assert.is.not(saved.host.hostKey, generated)
  assert.is(saved.host.hostKeyRotated, true)
  assert.equal(
    Object.fromEntries(Object.entries(saved.phases).map(([p, v]) => [p, v.status])),
    {
      create: 'done',
      setup: 'done',
      deploy: 'done',
      restore: 'failed',
    },
    `phases saved by the interrupted run: ${JSON.stringify(saved.phases)}`,
  )

  const again = spawnScript('runbooks/emergency.ts', args)
  const code = await again.exit
  const out = again.output()
  assert.is(code, 0, out)
  assert.match(out, 'RESUMING ce-emergency-drill-')
  assert.is(out.match(/done in an earlier run/g)?.length, 3, out)
  assert.is(creates(), 1, 'the droplet was created once')

  const summary = JSON.parse(/emergency-summary (\{.*\})/.exec(out)?.[1] ?? '{}') as {
    host: string
    rows_verified: number
    data_lost: number
    replayed_to: string | null
  }
  assert.is(summary.data_lost, 0)
  // The backup and the work after it: its base replayed with A's archived WAL to the newest segment.
  assert.is(summary.rows_verified, drill.backup.rows + drill.walRows, out)
  assert.match(summary.replayed_to ?? '', /^\d{4}-\d\d-\d\dT[\d:.]+Z$/)
  assert.match(
    out,
    new RegExp(
      `${drill.backup.rows + drill.walRows} of ${drill.backup.rows + drill.walRows} rows recovered \\(backup ${drill.backup.id}'s base, WAL replayed to `,
    ),
  )
  assert.is(summary.host, saved.host.address)
  assert.is.not(summary.host, drill.a.ip)
  assert.is.not(summary.host, tombstone)
  for (const [name, ips] of Object.entries(drill.records()))
    assert.equal(ips, [summary.host], `DNS record ${name}: ${JSON.stringify(ips)}, not B ${summary.host}`)

  // The new host's first deploy and its restore took no backup of its empty database: the drill's
  // backup is still the only one, so it stays the "latest".
  assert.equal(
    (await listBackups(drill.store, DRILL_ENV)).map((e) => e.id),
    [drill.backup.id],
    "the backups in the store: only the drill's",
  )
  assert.not.match(first.output(), 'pre-migration backup')
  assert.match(out, 'FRESH_HOST=1: a new host, its empty database is kept renamed; no safety backup')

  // On B itself: the drill's rows, the release, and the emergency's own audit record.
  const b = [...drill.made.values()][0] as SandboxDroplet
  assert.is(b.ip, summary.host)
  assert.is((await drill.pg(b, 'select count(*) from bank_lines')).trim(), String(20_000 + drill.walRows))
  assert.is((await onDroplet(b, 'cat /srv/conciliaextrato/drill/current-release')).trim(), 'v1')
  assert.match(await onDroplet(b, 'cat /var/log/conciliaextrato/audit.log'), '"runbook":"emergency"')
  // One host key, the one made on B after the first login (not the one in user_data).
  const keys = await onDroplet(b, 'ls /etc/ssh/ | grep ssh_host_')
  assert.equal(
    keys.trim().split('\n'),
    ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub'],
    `host keys on B: ${keys}`,
  )
  assert.match(await onDroplet(b, 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub'), saved.host.hostKey)
  const local = auditRecords(drill.bed).filter((r) => r.runbook === 'emergency')
  assert.equal(
    local.map((r) => r.outcome),
    ['failed', 'failed', 'dry-run', 'interrupted', 'success'],
    `local audit records of emergency: ${JSON.stringify(local.map((r) => [r.outcome, r.failed_step ?? '']))}`,
  )
  // The on-call heard of both runs: where the first stopped, and that the second serves.
  const told = drill.webhook.received.map((r) => JSON.parse(r.body) as { outcome: string; title: string })
  assert.equal(
    told.map((t) => [t.outcome, t.title]),
    [
      ['failed', 'emergency of drill: stopped in restore'],
      ['success', `emergency of drill: serving from ${summary.host}`],
    ],
    `webhook notices: ${JSON.stringify(told.map((t) => [t.outcome, t.title]))}`,
  )
  // Nothing secret in what was printed or kept.
  for (const secret of [
    process.env.DIGITALOCEAN_TOKEN,
    process.env.CLOUDFLARE_API_TOKEN,
    process.env.BACKUP_KEY,
  ])
    assert.not.ok(out.includes(secret ?? '\0') || first.output().includes(secret ?? '\0'))
  assert.not.match(readFileSync(stateFile(DRILL_ENV), 'utf8'), /PRIVATE|dop_v1/)
})

test.run()

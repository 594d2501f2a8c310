import { existsSync, readFileSync } from 'node:fs'
import * as assert from 'uvu/assert'
import { listBackups } from '../../lib/backup/catalog.ts'
import { quote } from '../../lib/commands/shell.ts'
import { stateFile } from '../../lib/emergency/state.ts'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { emergency } from '../../runbooks/emergency.ts'
import { image as imageRunbook } from '../../runbooks/image.ts'
import { suite } from '../harness.ts'
import { DRILL_ENV, type Drill, destroyDroplet, startDrill } from '../sandbox/emergency-drill.ts'
import { sh } from '../sandbox/engine.ts'
import { auditRecords, onDroplet, runCaptured, spawnScript } from '../support/test-bed.ts'

// The worst night on sandbox droplets: A (deployed, with data, a backup and its records at the local
// Cloudflare API) is destroyed; emergency builds B through the local DigitalOcean API. Interrupted in
// the middle of the restore, the same command resumes and finishes.
const test = suite('emergency: a new droplet from the backup, interrupted and resumed', { timeoutS: 900 })
let drill: Drill
let tombstone = ''
/** Droplets created by the drill's set-up (make image's builder): not emergency's. */
let madeBefore = 0
const creates = () =>
  drill.doApi.requests.filter((r) => r.method === 'POST' && r.path === '/v2/droplets').length - madeBefore
const args = ['--env', DRILL_ENV, '--create', '--yes']

test.before(async () => {
  drill = await startDrill({ rows: 20_000 })
  madeBefore = creates()
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
  assert.match(out, 'from the newest golden image ce-drill-golden-* (make image) if there is one')
  assert.is(creates(), 0)
  assert.not.ok(existsSync(stateFile(DRILL_ENV)))
})

test('make image: the golden image holds no host key and no secret, and its builder is gone', async () => {
  const g = drill.golden
  assert.ok(g, 'the drill made a golden image')
  assert.match(g.name, /^ce-drill-golden-\d{8}-\d{4}$/)
  const tag = drill.snapshotTag(String(g.id))
  // The image's files, read without booting it.
  const look = async (script: string) =>
    (await sh`docker run --rm --entrypoint bash ${tag} -c ${script}`.nothrow()).stdout
  assert.is(await look('ls /etc/ssh/ | grep -c ssh_host_ || true'), '0\n', 'host keys in the image')
  assert.is(await look('wc -c < /etc/machine-id'), '0\n', 'a machine id in the image')
  assert.is(
    await look(`test -e /etc/conciliaextrato/watchdog-${DRILL_ENV}.json && echo there || echo gone`),
    'gone\n',
  )
  // setup-server's work is there: the deploy and admin accounts, sshd's hardening, Docker, the units.
  assert.match(await look('id deploy && id ce-admin'), 'uid=')
  assert.match(await look('cat /etc/ssh/sshd_config.d/*.conf'), /PermitRootLogin no/)
  assert.match(await look('command -v docker nginx node'), '/usr/bin/docker')
  // No secret of the env anywhere it could be.
  const secrets = [
    process.env.ONCALL_WEBHOOK_URL,
    process.env.DIGITALOCEAN_TOKEN,
    process.env.CLOUDFLARE_API_TOKEN,
  ]
  for (const secret of secrets) {
    assert.ok(secret)
    const found = await look(
      `grep -rlF -- ${quote(secret)} /etc /srv /var/lib/conciliaextrato /root /home /var/log 2>/dev/null || true`,
    )
    assert.is(found, '', `a secret is in the image: ${found}`)
  }
  // The builder was deleted; the dry run creates nothing and shows the plan with the image there.
  const builders = drill.doApi.requests.filter(
    (r) => r.method === 'DELETE' && /^\/v2\/droplets\/\d+$/.test(r.path),
  )
  assert.is(builders.length, 1, 'the builder was deleted')
  const dry = await runCaptured(imageRunbook, ['--env', DRILL_ENV, '--yes', '--dry-run'])
  assert.is(dry.code, 0, dry.out)
  assert.match(dry.out, new RegExp(`golden images now +${g.name} \\(0 d\\)`))
  assert.match(dry.out, 'rm -f /etc/ssh/ssh_host_*')
  assert.is(creates(), 0)
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
    image: string
    rows_verified: number
    data_lost: number
    replayed_to: string | null
  }
  assert.is(summary.data_lost, 0)
  // B started from the golden image make image made, not from the distribution.
  assert.is(summary.image, drill.golden?.name)
  assert.match(
    first.output(),
    `from the golden image ${drill.golden?.name} (id ${drill.golden?.id}, 0 day(s) old)`,
  )
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
  const b = [...drill.made.values()].find((d) => d.ip === summary.host) as SandboxDroplet
  assert.ok(b, `no droplet made has ${summary.host}`)
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

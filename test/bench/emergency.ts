/**
 * make drill-emergency: the worst night, rehearsed. A production-like env runs on sandbox droplet A
 * (setup-server, deploy v1, its records at the local Cloudflare API, a table of ROWS rows, a backup with
 * its base backup, then ROWS/20 more rows whose WAL reached the store).
 * Droplet A is destroyed. `make emergency CREATE=1` then runs as its own process, as the on-call would:
 * droplet B from the local DigitalOcean API, setup, deploy, restore, health gates, the DNS switch, and
 * the verification of every row, the canary and every domain. Prints each phase and a final JSON line
 * {"total_s":..,"phases":{"create":..,"setup":..,"restore":..,"deploy":..,"dns":..,"verify":..},"rows_verified":..,"data_lost":..,"rows_after_backup":..,"rows_after_backup_lost":..}
 * Before A is lost, make image makes the env's golden image (a builder droplet set up and snapshotted),
 * so B starts from it; GOLDEN=0 starts B from the distribution image instead. DB_GB=10 grows the table in
 * batches of ROWS (5,000,000 by default then) until the database has 10 GiB (about 50 GB of disk free
 * needed: A's data, the store, B's recovery volume and scratch database; not part of CI).
 * Target: total under 15 minutes, data_lost 0, and no row committed after the backup lost (its WAL
 * was archived): restore replays it to the newest segment.
 */
import { availableParallelism, loadavg } from 'node:os'
import { destroyDroplet, runEmergency, startDrill } from '../sandbox/emergency-drill.ts'

// DB_GB=10: bank_lines grows in batches of ROWS (default 5,000,000 then) until the database has DB_GB GiB.
const DB_GB = Number(process.env.DB_GB ?? 0)
if (!(DB_GB >= 0))
  throw new Error(`DB_GB=${process.env.DB_GB}: give the database's size in GiB, e.g. DB_GB=10`)
const ROWS = Number(process.env.ROWS ?? (DB_GB ? 5_000_000 : 500_000))
const load = () => `load ${loadavg()[0]?.toFixed(1)} on ${availableParallelism()} cores`

console.log(
  `drill-emergency: setting up droplet A with ${DB_GB ? `a ${DB_GB} GiB database` : `${ROWS} rows`} (${load()})`,
)
// GOLDEN=0: B starts from the distribution image, as before make image (setup-server installs everything).
const golden = process.env.GOLDEN !== '0'
const drill = await startDrill({
  rows: ROWS,
  ...(DB_GB ? { minDbBytes: DB_GB * 1024 ** 3 } : {}),
  golden,
  log: (l) => console.log(l),
})
let failed = false
try {
  await destroyDroplet(drill, drill.image)
  console.log(`\ndroplet A (${drill.a.ip}) destroyed; records: ${JSON.stringify(drill.records())}`)
  const { summary, wallS: wall, b } = await runEmergency(drill)
  // The rows committed after the backup: on B only through the archived WAL.
  const onB = Number((await drill.pg(b, 'select count(*) from bank_lines')).trim())
  const afterLost = drill.bankLines + drill.walRows - onB
  const records = drill.records()
  const switched = Object.values(records).every((ips) => ips.length === 1 && ips[0] === summary.host)
  if (summary.host === drill.a.ip) throw new Error(`the new droplet has A's address ${drill.a.ip}`)
  if (!switched) throw new Error(`records do not name only ${summary.host}: ${JSON.stringify(records)}`)
  const p = summary.phases
  console.log(`\nrecords now: ${JSON.stringify(records)} (${load()})`)
  console.log(`wall time of make emergency: ${wall.toFixed(1)} s (target 900 s, aim 300 s)`)
  console.log(
    JSON.stringify({
      total_s: Math.round(wall * 10) / 10,
      phases: {
        create: p.create,
        setup: p.setup,
        restore: p.restore,
        deploy: p.deploy,
        health: p.health,
        dns: p.dns,
        verify: p.verify,
      },
      ...(DB_GB ? { db_gb: DB_GB } : {}),
      rows_verified: summary.rows_verified,
      data_lost: summary.data_lost,
      rows_after_backup: drill.walRows,
      rows_after_backup_lost: afterLost,
      // The golden image B started from (make image, before the disaster: not in total_s), or null.
      image: summary.image ?? null,
      image_build_s: drill.golden?.build_s ?? null,
    }),
  )
} catch (err) {
  failed = true
  console.error(`drill-emergency failed: ${(err as Error).message}`)
} finally {
  await drill.close().catch((e: Error) => console.error(`clean-up failed: ${e.message}`))
}
process.exit(failed ? 1 : 0)

/**
 * make bench-pitr: how much committed work a lost droplet costs. The emergency drill's world (droplet A
 * with ROWS rows, a backup with its base, WAL shipped to the store); then a writer commits one row
 * every 100 ms on A, each stamped with its commit-time clock and acknowledged here, for WRITE_S
 * seconds; A is destroyed at T; `make emergency CREATE=1` brings B up, restoring to the newest archived
 * WAL. On B: the rows must be a prefix of what A acknowledged (nothing out of order), and
 *   rpo_s: T minus the commit time of the newest row B has (the work lost);
 *   rows_lost_older_than_60s: rows A acknowledged more than 60 s before T that B lacks (must be 0).
 * One JSON line: {"db_mb":..,"rpo_s":..,"rows_lost_older_than_60s":0,"restore_s":..,"total_s":..}
 * Target: rpo_s <= 60. The droplets share this machine's clock, so A's times and T compare directly.
 */
import { spawn } from 'node:child_process'
import { availableParallelism, loadavg } from 'node:os'
import { DRILL_ENV, destroyDroplet, runEmergency, startDrill } from '../sandbox/emergency-drill.ts'

const ROWS = Number(process.env.ROWS ?? 100_000)
const WRITE_S = Number(process.env.WRITE_S ?? 150)
const load = () => `load ${loadavg()[0]?.toFixed(1)} on ${availableParallelism()} cores`
const PG = `docker exec -i $(docker ps -q --filter label=com.docker.compose.project=ce-${DRILL_ENV}-data --filter label=com.docker.compose.service=postgres) psql -XAtq -v ON_ERROR_STOP=1 -U conciliaextrato -d conciliaextrato`

interface Ack {
  id: number
  at: number
}

/** One psql session on A, fed an INSERT every 100 ms; each acknowledged row (id, commit clock) kept. */
function startWriter(container: string) {
  const acks: Ack[] = []
  const child = spawn('docker', ['exec', '-i', container, 'sh', '-c', PG], {
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let buf = ''
  child.stdout.on('data', (b: Buffer) => {
    buf += b.toString()
    const lines = buf.split('\n')
    buf = lines.pop() ?? ''
    for (const l of lines) {
      const [id, epoch] = l.trim().split('|')
      if (id && epoch) acks.push({ id: Number(id), at: Number(epoch) * 1000 })
    }
  })
  child.stdin.on('error', () => {}) // A is destroyed under it
  const timer = setInterval(() => {
    child.stdin.write('INSERT INTO ticks DEFAULT VALUES RETURNING id, extract(epoch from at);\n')
  }, 100)
  return {
    acks,
    stop() {
      clearInterval(timer)
      child.kill('SIGKILL')
    },
  }
}

console.log(`bench-pitr: droplet A with ${ROWS} rows (${load()})`)
const drill = await startDrill({ rows: ROWS, log: (l) => console.log(l) })
let failed = false
try {
  await drill.pg(
    drill.a,
    'create table ticks(id bigserial primary key, at timestamptz not null default clock_timestamp())',
  )
  const dbMb =
    Number((await drill.pg(drill.a, 'select pg_database_size(current_database())')).trim()) / 1048576
  const writer = startWriter(drill.a.container)
  console.log(`writing a row every 100 ms on A for ${WRITE_S} s (${load()})`)
  await new Promise((r) => setTimeout(r, WRITE_S * 1000))
  const destroyedAt = Date.now()
  await destroyDroplet(drill, drill.image)
  writer.stop()
  const acks = writer.acks
  console.log(
    `droplet A destroyed at ${new Date(destroyedAt).toISOString()}: ${acks.length} rows acknowledged, the last at ${new Date(acks.at(-1)?.at ?? 0).toISOString()} (${load()})`,
  )
  const { summary, wallS: totalS, b } = await runEmergency(drill)
  const [count = '0', maxId = '0', newest = '0'] = (
    await drill.pg(
      b,
      'select count(*), coalesce(max(id), 0), coalesce(extract(epoch from max(at)), 0) from ticks',
    )
  )
    .trim()
    .split('|')
  // Commits are in id order (one session): what B holds must be exactly ids 1..max.
  if (Number(count) !== Number(maxId))
    throw new Error(`B holds ${count} ticks but ids up to ${maxId}: not a prefix`)
  const newestMs = Number(newest) * 1000
  const rpoS = (destroyedAt - newestMs) / 1000
  const lostOld = acks.filter((a) => a.id > Number(maxId) && a.at < destroyedAt - 60_000).length
  const lost = acks.filter((a) => a.id > Number(maxId)).length
  console.log(
    `\nB holds ticks 1..${maxId}, the newest committed at ${new Date(newestMs).toISOString()}; ${lost} acknowledged rows lost, ${lostOld} of them older than 60 s (${load()})`,
  )
  console.log(`restored to ${summary.replayed_to}; make emergency took ${totalS.toFixed(1)} s`)
  console.log(
    JSON.stringify({
      db_mb: Math.round(dbMb * 10) / 10,
      rpo_s: Math.round(rpoS * 10) / 10,
      rows_lost_older_than_60s: lostOld,
      restore_s: summary.phases.restore,
      total_s: Math.round(totalS * 10) / 10,
    }),
  )
  if (rpoS > 60 || lostOld > 0) failed = true
} catch (err) {
  failed = true
  console.error(`bench-pitr failed: ${(err as Error).message}`)
} finally {
  await drill.close().catch((e: Error) => console.error(`clean-up failed: ${e.message}`))
}
process.exit(failed ? 1 : 0)

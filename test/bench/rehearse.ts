/**
 * make rehearse ENV=production|staging: the committed env file, end to end on the sandbox (see
 * test/sandbox/rehearsal.ts): setup-server -> dns APPLY=1 -> deploy -> backup -> health (edge path
 * on) -> restore-drill -> rollback, every step through `make`; then testssl against the origin,
 * origin pulls with a foreign Cloudflare client, HSTS and headers through the edge. Prints each step
 * and a final JSON line
 * {"env":..,"tls13_only":..,"aop_rejects_foreign_client":..,"notified":[..],"health_failures":..,"rollback_ok":..,"wal_archived":..,"secrets_by_runbook":{..},"total_s":..}
 * Exit 0 only when every check holds. SHORT=1: openssl probes instead of testssl (as in make test).
 */
import { availableParallelism, loadavg } from 'node:os'
import { rehearse } from '../sandbox/rehearsal.ts'

const env = process.argv[2] === '--env' ? process.argv[3] : process.env.ENV
if (env !== 'production' && env !== 'staging') {
  console.error('make rehearse needs ENV=production or ENV=staging (the committed env file to rehearse)')
  process.exit(2)
}
const load = () => `load ${loadavg()[0]?.toFixed(1)} on ${availableParallelism()} cores`
console.log(`rehearse ${env}: ${load()}`)
const r = await rehearse({ env, full: !process.env.SHORT, keep: Boolean(process.env.KEEP_TEST_BED) })
console.log('\nsteps:')
for (const s of r.steps) console.log(`  ${s.step.padEnd(14)} exit ${s.code}  ${s.s} s`)
console.log(`edge: HSTS and headers on every answer: ${r.edge_headers_ok}`)
if (r.testssl_medium_or_worse) console.log(`testssl MEDIUM or worse: ${r.testssl_medium_or_worse.length}`)
if (r.problems.length) console.log(`problems:\n  - ${r.problems.join('\n  - ')}`)
console.log(`(${load()} at the end)`)
console.log(
  JSON.stringify({
    env: r.env,
    tls13_only: r.tls13_only,
    aop_rejects_foreign_client: r.aop_rejects_foreign_client,
    notified: r.notified,
    health_failures: r.health_failures,
    health_as_checker: r.health_as_checker,
    rollback_ok: r.rollback_ok,
    wal_archived: r.wal_archived,
    secrets_by_runbook: r.secrets_by_runbook,
    total_s: r.total_s,
  }),
)
process.exit(r.problems.length ? 1 : 0)

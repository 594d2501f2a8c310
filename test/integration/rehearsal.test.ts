import * as assert from 'uvu/assert'
import { suite } from '../harness.ts'
import { rehearse } from '../sandbox/rehearsal.ts'

// The short form of `make rehearse`: the COMMITTED env/production.yaml and env/staging.yaml, end to
// end on the sandbox through `make` and the committed workflows' deploy and rollback steps, only addresses, host keys, endpoints and the age recipient overridden (openssl
// probes instead of testssl; the full form is `make rehearse ENV=...`).
const test = suite('rehearsal: the committed production and staging env files on the sandbox', {
  timeoutS: 1500,
})

for (const env of ['production', 'staging'] as const) {
  test(`${env}: setup-server, dns, deploy, backup, health through the edge, restore drill, rollback, rotate-secret`, async () => {
    const r = await rehearse({ env, full: false, log: () => {} })
    assert.equal(r.problems, [], `${env}:\n${JSON.stringify(r, null, 2)}`)
    assert.equal(
      r.steps.map((s) => [s.step, s.code]),
      [
        ['heartbeats', 0],
        ['setup-server', 0],
        ['dns', 0],
        // production promotes from staging: its twin takes the releases live first.
        ...(env === 'production'
          ? ([
              ['heartbeats (staging)', 0],
              ['setup-server (staging)', 0],
              ['dns (staging)', 0],
              ['deploy v1 (staging)', 0],
              ['deploy v2 (staging)', 0],
            ] as const)
          : []),
        ['deploy v1', 0],
        ['deploy v2 (deploy.yml)', 0],
        ['backup', 0],
        ['backups', 0],
        ['health', 0],
        ['restore-drill', 0],
        ['rollback (rollback.yml)', 0],
        ['rotate-secret', 0],
        ['deploy v2, stale secret (deploy.yml)', 3],
        ['deploy v2, secret updated (deploy.yml)', 0],
      ],
    )
    // The operator's rotation (age file), CI's stale copy refused, then updated.
    assert.equal(r.rotation, { rotated: true, stale_refused: true, deploy_after: true })
    assert.ok(r.tls13_only)
    assert.ok(r.aop_rejects_foreign_client)
    assert.ok(r.edge_headers_ok)
    assert.is(r.health_failures, 0)
    assert.ok(r.health_as_checker, 'health logs in as the checker account')
    assert.ok(r.rollback_ok)
    assert.ok(r.wal_archived, "the committed env's WAL shipper archived a segment")
    assert.ok(r.heartbeat_up, "the committed env's watchdog pinged its heartbeat check")
    // make uptime's outside view through the committed outside_view: production's is read from its
    // staging twin's history; staging's watcher (production) has no droplet in staging's world.
    assert.is(r.uptime_outside_view, env === 'production' ? 'read' : 'not read')
    assert.ok(r.status_page_published, 'make status-page published to the committed status_page store')
    // make report from the committed env's store: v1, v2 and the deploys around the rotation, the rollback.
    assert.ok(r.report && r.report.deploys >= 2 && r.report.rollbacks >= 1, JSON.stringify(r.report))
    // make loadtest through the committed env's edge: answered, within the limits.
    assert.ok(r.loadtest?.passed && r.loadtest.errors === 0, JSON.stringify(r.loadtest))
    // make security-scan against the committed thresholds: TLS through the edge tested (not skipped).
    const scan = r.security_scan
    assert.ok(
      scan?.passed && scan.ssh_audit_fail === 0 && scan.testssl_medium_or_worse === 0,
      JSON.stringify(scan),
    )
    assert.ok((scan?.lynis_index ?? 0) >= 80, JSON.stringify(scan))
    assert.not.ok(
      scan?.not_scanned.some((n) => /testssl/.test(n)),
      JSON.stringify(scan),
    )
    assert.ok(
      r.error_tracking_marked,
      'deploys marked their releases at the committed error_tracking service',
    )
    // production promotes from staging (promote_from): the twin first, then the same digests here.
    if (r.env === 'production')
      assert.equal(r.promotion, { from: 'staging', unstaged_refused: true, promoted: true })
    else assert.is(r.promotion.from, null)
    for (const event of ['deploy', 'rollback', 'backup', 'restore'])
      assert.ok(r.notified.includes(event), event)
    // The read-only health job carried the checker's key: no deploy key, no backup key, no cloud token.
    assert.equal(r.secrets_by_runbook.health, [
      'CHECKER_SSH_KEY',
      'SPACES_ACCESS_KEY_ID',
      'SPACES_SECRET_ACCESS_KEY',
    ])
  })
}

test.run()

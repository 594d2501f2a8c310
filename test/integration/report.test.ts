import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import type { StoreConfig } from '../../lib/env/backup.ts'
import { loadEnv } from '../../lib/env/load.ts'
import type { IncidentEvent } from '../../lib/incident/model.ts'
import { addEvent } from '../../lib/incident/store.ts'
import { putRunRecord } from '../../lib/run/records.ts'
import { openStore } from '../../lib/store/storage.ts'
import { suite } from '../harness.ts'
import { launchChromium, screenshot, visit } from '../support/browser.ts'
import { incidentEvent, novemberRecords } from '../support/delivery-records.ts'
import { ciEnvYaml } from '../unit/ci-env.ts'

// make report end to end: a month of runs' records put in a local backup store by the step runner's own
// writer (and again as a make ship-records copy: counted once), then `make report ENV=ci MONTH=2026-11
// JSON=1` as a person types it. Its host is a closed port on 127.0.0.1 (a dead droplet): the report still
// comes from the records, and the run's own audit record lands in the store. The HTML page opens in
// headless Chromium with both charts and no request.
const test = suite('make report: delivery figures from the records in the store', { timeoutS: 180 })
const ROOT = join(import.meta.dirname, '..', '..')

let dir = ''
const storeDir = () => join(dir, 'store')

function envFile(): string {
  return ciEnvYaml(['BACKUP_KEY'], `backup:\n  store: { type: local, dir: ${storeDir()} }\n`)
    .replace('address: 203.0.113.20', 'address: 127.0.0.1\n    ssh_port: 9')
    .replace('key: { file: /dev/null }', `key: { file: ${join(dir, 'id_ed25519')} }`)
}

function make(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('make', ['-s', ...args], {
    cwd: ROOT,
    env: { ...process.env, CE_ENV_DIR: dir, AUDIT_DIR: join(dir, 'audit') },
    encoding: 'utf8',
    timeout: 120_000,
  })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ce-report-'))
  // A key ssh can use (the host is a closed port: it is never offered).
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id_ed25519')])
  writeFileSync(join(dir, 'ci.yaml'), envFile())
  const saved = process.env.CE_ENV_DIR
  process.env.CE_ENV_DIR = dir
  try {
    const env = loadEnv('ci')
    const records = novemberRecords('ci')
    for (const r of records) await putRunRecord(env, {}, r.runbook, JSON.stringify(r), new Date(r.ended_at))
    // An incident in the register: detected 2026-11-12T10:30Z (v12 misbehaving), resolved 31 min later.
    const store = openStore(env.backup?.store as StoreConfig)
    const id = 'INC-20261112-1030-abcd'
    const event = (kind: IncidentEvent['kind'], at: string) =>
      incidentEvent(id, kind, at, { text: `${kind} v12` })
    await addEvent(store, { ...event('opened', '2026-11-12T10:30:00.000Z'), severity: 'sev1' })
    await addEvent(store, event('resolved', '2026-11-12T11:01:00.000Z'))
    // A machine's whole audit file, as make ship-records copies it: the same runs again.
    const copy = join(storeDir(), 'records', 'ci', '2026-11-30', '4242-1', 'audit')
    mkdirSync(copy, { recursive: true })
    writeFileSync(join(copy, 'audit.jsonl'), `${records.map((r) => JSON.stringify(r)).join('\n')}\n`)
  } finally {
    if (saved === undefined) delete process.env.CE_ENV_DIR
    else process.env.CE_ENV_DIR = saved
  }
})

test.after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true })
})

test('make report JSON=1: 20 deploys, 1 failed -> 0.95, from the store, with the droplet gone', () => {
  const runsBefore = readdirSync(join(storeDir(), 'records', 'ci', 'runs')).length
  const r = make(['report', 'ENV=ci', 'MONTH=2026-11', 'JSON=1'])
  assert.is(r.code, 0, r.stderr)
  const last = r.stdout.trim().split('\n').at(-1) ?? ''
  const summary = JSON.parse(last) as Record<string, unknown>
  assert.is(summary.deploys, 20)
  assert.is(summary.success_rate, 0.95)
  assert.is(summary.lead_time_p50_s, 2400)
  assert.is(summary.change_failure_rate, 0.053)
  assert.is(summary.mttr_s, 2130)
  assert.is(summary.uptime_pct, null)
  assert.is(summary.incidents, 1)
  assert.is(summary.incident_resolve_p50_s, 1860)
  // The report went on without the host, and said so.
  assert.match(r.stderr, 'qa-1')
  assert.match(r.stderr, 'no host answered: the uptime is not read')
  assert.match(r.stderr, '| success rate | 95.0% |')
  // The run's own audit record is in the store now (this month's folder).
  const month = new Date().toISOString().slice(0, 7)
  const own = readdirSync(join(storeDir(), 'records', 'ci', 'runs', month)).filter((f) =>
    f.includes('-report-'),
  )
  assert.is(own.length, 1, `${own}`)
  const record = JSON.parse(
    readFileSync(join(storeDir(), 'records', 'ci', 'runs', month, own[0] as string), 'utf8'),
  )
  assert.is(record.runbook, 'report')
  assert.is(record.outcome, 'success')
  assert.ok(readdirSync(join(storeDir(), 'records', 'ci', 'runs')).length >= runsBefore)
})

test('a dry run puts no record; bad MONTH= is refused with exit 2, naming it', () => {
  const month = new Date().toISOString().slice(0, 7)
  const count = () => readdirSync(join(storeDir(), 'records', 'ci', 'runs', month)).length
  const before = count()
  assert.is(make(['report', 'ENV=ci', 'MONTH=2026-11', 'DRY_RUN=1']).code, 0)
  const bad = make(['report', 'ENV=ci', 'MONTH=2026-13'])
  assert.is(bad.code, 2)
  assert.match(bad.stderr + bad.stdout, 'MONTH=2026-13: expected YYYY-MM')
  assert.is(count(), before)
})

test('the HTML page in headless Chromium: the figures, both charts, nothing requested, no error', async () => {
  const file = join(ROOT, 'reports', 'report-ci-2026-11.html')
  const browser = await launchChromium()
  try {
    const { page, errors, requests } = await visit(browser, `file://${file}`)
    assert.equal(errors, [])
    assert.equal(requests, [])
    const kpis = (await page.getByTestId('kpis').textContent()) ?? ''
    assert.match(kpis, '95.0%')
    assert.match(kpis, '20')
    // Deploys on the 1st..20th (the emergency's own deploy is not one); 19 with a lead time.
    assert.is(await page.getByTestId('deploys-chart').getAttribute('data-bars'), '20')
    assert.is(await page.locator('[data-testid="deploys-chart"] rect.failed').count(), 1)
    assert.is(await page.locator('[data-testid="deploys-chart"] rect.undone').count(), 1)
    assert.is(await page.locator('[data-testid="lead-chart"] rect.lead').count(), 19)
    const box = await page.getByTestId('lead-chart').boundingBox()
    assert.ok(box && box.width > 100 && box.height > 50, JSON.stringify(box))
    await screenshot(page, 'report-ci-2026-11')
    await page.close()
  } finally {
    await browser.close()
  }
})

test.run()

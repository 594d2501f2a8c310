import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { alert } from '../../runbooks/alert.ts'
import { suite } from '../harness.ts'
import { startReceiver } from '../sandbox/webhook-receiver.ts'
import { runOnFixtureEnv } from '../support/offline-run.ts'
import { ciEnvYaml } from './ci-env.ts'

// make alert: what a scheduled workflow runs when one of its steps failed.
const test = suite('make alert: to the targets subscribed to alert, needing no host')
const env = (notify: string) => ciEnvYaml(['ALERT_URL', 'DEPLOY_URL'], notify)

async function run(envText: string, args: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'ce-alert-'))
  writeFileSync(join(dir, 'ci.yaml'), envText)
  return runOnFixtureEnv(alert, dir, args)
}

test('the alert reaches the target subscribed to alert, and only it', async () => {
  const rx = await startReceiver()
  try {
    process.env.ALERT_URL = `${rx.url}/alerts`
    process.env.DEPLOY_URL = `${rx.url}/deploys`
    const notify = `notify:
  - { name: oncall, type: json, url_secret: ALERT_URL, events: [alert] }
  - { name: deploys, type: json, url_secret: DEPLOY_URL, events: [deploy] }`
    const { code, out } = await run(env(notify), [
      '--title',
      'scheduled health of ci failed',
      '--runbook',
      'docs/runbooks/health.md',
    ])
    assert.is(code, 0, out)
    assert.equal(
      rx.received.map((r) => r.path),
      ['/alerts'],
    )
    const body = JSON.parse(rx.received[0]?.body ?? '{}') as Record<string, unknown>
    assert.is(body.event, 'alert')
    assert.is(body.outcome, 'failed')
    assert.is(body.title, 'scheduled health of ci failed')
    assert.is(body.runbook, 'docs/runbooks/health.md')
  } finally {
    await rx.close()
  }
})

test('no TITLE, or no notify targets: a clear error, exit 2', async () => {
  const none = await run(env(''), ['--title', 'x'])
  assert.is(none.code, 2)
  assert.match(none.out, 'has no notify: targets, so there is no one to tell')
  const notitle = await run(env('notify: [{ name: oncall, type: json, url_secret: ALERT_URL }]'), [])
  assert.is(notitle.code, 2)
  assert.match(notitle.out, 'TITLE="<what failed>" is required')
})

test.run()

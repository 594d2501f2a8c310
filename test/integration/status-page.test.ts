import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import * as assert from 'uvu/assert'
import { renderPage } from '../../lib/uptime/html.ts'
import { buildReport, type History, type Probe } from '../../lib/uptime/index.ts'
import { suite } from '../harness.ts'
import { launchChromium, screenshot, TEST_OUTPUT, visit } from '../support/browser.ts'

// The status page and the monthly report's charts, rendered from a 90-day history and opened in a real
// headless Chromium (Debian's): it renders with no console error and asks for nothing else (no script,
// font or image from anywhere), each service has its bars (a mark per day per view) and its p95 chart,
// the incidents and deploys are listed, and a screenshot is kept in test-output/.
const test = suite('status page in headless Chromium', { timeoutS: 120 })

const DAY = 86_400_000
const NOW = Date.parse('2026-12-01T12:00:00Z')
const STEP = 10 * 60_000
const SERVICES = [
  { service: 'site', domain: 'conciliaextrato.com' },
  { service: 'saas', domain: 'app.conciliaextrato.com' },
  { service: 'api', domain: 'api.conciliaextrato.com' },
]
/** The api was down for 45 min 10 days ago (its droplet gone: no host probe then, outside ones failing). */
const OUTAGE = { from: NOW - 10 * DAY, to: NOW - 10 * DAY + 45 * 60_000 }
/** saas answered 502 for 30 min 40 days ago (seen from the host and from outside). */
const BAD_GATEWAY = { from: NOW - 40 * DAY, to: NOW - 40 * DAY + 30 * 60_000 }

function history(probes: Probe[]): History {
  return { probes, lines: probes.length, malformed: 0, clockBackwards: 0, unreadable: [] }
}

function probes(view: 'host' | 'outside'): Probe[] {
  const out: Probe[] = []
  for (let at = NOW - 90 * DAY - STEP; at < NOW; at += STEP)
    for (const { service, domain } of SERVICES) {
      const inOutage = service === 'api' && at >= OUTAGE.from && at < OUTAGE.to
      if (inOutage && view === 'host') continue
      const bad = inOutage || (service === 'saas' && at >= BAD_GATEWAY.from && at < BAD_GATEWAY.to)
      const day = Math.floor((at - (NOW - 90 * DAY)) / DAY)
      out.push({
        at,
        source: 'watchdog',
        host: view === 'host' ? 'web-1' : 'staging/web-1',
        check: view === 'host' ? `http:${domain}` : `outside:production/${domain}`,
        ok: !bad,
        // a slow week from day 60 on, through the edge more than from the host
        ms: (view === 'outside' ? 80 : 20) + (day >= 60 && day < 67 ? 150 : 0) + (at % 7),
      })
    }
  return out
}

const report = buildReport({
  env: 'production',
  now: NOW,
  days: 90,
  services: SERVICES,
  histories: [{ host: 'web-1', history: history(probes('host')) }],
  outside: { from: 'staging', histories: [{ host: 'staging/web-1', history: history(probes('outside')) }] },
  errors: [],
  p95DegradeFactor: 2,
  errorThresholds: { windowMin: 30, max5xxPerMin: 10, maxRestarts: 3, maxErrorLinesPerMin: 10 },
  options: { maxGapS: 700 },
})
const DEPLOYS = [
  { id: 'v41', action: 'deploy', outcome: 'live', at: '2026-11-20T14:02:11Z', duration_s: 212 },
  { id: 'v42<b>', action: 'deploy', outcome: 'rolled-back', at: '2026-11-28T09:15:00Z', duration_s: 190 },
  { id: 'v41', action: 'rollback', outcome: 'live', at: '2026-11-28T09:19:40Z', duration_s: 31 },
]

let browser: Browser
test.before(async () => {
  browser = await launchChromium()
})
test.after(async () => {
  await browser?.close()
})

test('the status page renders: bars per view, p95 charts, incidents, deploys; no error, no request', async () => {
  const html = renderPage(report, DEPLOYS, { title: 'ConciliaExtrato status' })
  const file = join(TEST_OUTPUT, 'status-page.html')
  const { mkdirSync } = await import('node:fs')
  mkdirSync(TEST_OUTPUT, { recursive: true })
  writeFileSync(file, html)
  const { page, errors, requests } = await visit(browser, `file://${file}`)
  assert.equal(errors, [])
  assert.equal(requests, [], 'the page is self-contained')
  assert.is(await page.title(), 'ConciliaExtrato status: production')
  // up now everywhere (the outages are over)
  assert.is((await page.textContent('[data-testid=summary]'))?.trim(), 'All services operational')
  for (const { service } of SERVICES) {
    for (const view of ['outside', 'host']) {
      const marks = page.locator(`[data-testid=bar-${service}-${view}] rect.day`)
      // 90 days from mid-day to mid-day: 91 calendar days, the first and last partial
      assert.is(await marks.count(), 91, `${service} ${view}`)
      const box = await page.locator(`[data-testid=bar-${service}-${view}]`).boundingBox()
      assert.ok(
        box && box.width > 500 && box.height >= 20,
        `${service} ${view} bar drawn: ${JSON.stringify(box)}`,
      )
    }
    const lines = page.locator(`[data-testid=p95-${service}] polyline`)
    assert.is(await lines.count(), 2, `${service}: a p95 line per view`)
    const points = (await lines.first().getAttribute('points'))?.trim().split(' ') ?? []
    assert.is(points.length, 91)
  }
  // the api's outage: a red mark from outside; from the host, that day only lost data (still up)
  const day = new Date(OUTAGE.from).toISOString().slice(0, 10)
  assert.is(
    await page.getAttribute(`[data-testid=bar-api-outside] rect[data-day="${day}"]`, 'class'),
    'day day-down',
  )
  assert.is(
    await page.getAttribute(`[data-testid=bar-api-host] rect[data-day="${day}"]`, 'class'),
    'day day-up',
  )
  assert.match(
    (await page.textContent(`[data-testid=bar-api-outside] rect[data-day="${day}"] title`)) ?? '',
    // five failed probes 10 min apart, each holding until the next: 50 min down
    `${day}: 96.528%, 50.0 min down`,
  )
  // incidents, newest first: the api from outside, then saas from both views
  const incidents = await page.locator('[data-testid=incidents] tbody tr').allTextContents()
  assert.is(incidents.length, 3, incidents.join('\n'))
  assert.match(incidents[0] ?? '', /^apioutside \(staging\).*50\.0$/)
  assert.match(incidents[1] ?? '', /^saas/)
  // deploys, newest first; the id shown as text, never as markup
  const deploys = await page.locator('[data-testid=deploys] tbody tr').allTextContents()
  assert.is(deploys.length, 3)
  assert.match(deploys[0] ?? '', /^v41rollbacklive2026-11-28 09:19/)
  assert.match(deploys[1] ?? '', /^v42<b>deployrolled-back/)
  assert.is(await page.locator('[data-testid=deploys] b').count(), 0)
  const shot = await screenshot(page, 'status-page')
  process.stdout.write(`\n  screenshot: ${shot}\n`)
  await page.close()
})

test('a service down now says so at the top; a page without an outside view has host bars only', async () => {
  const down = buildReport({
    env: 'staging',
    now: NOW,
    days: 30,
    services: SERVICES,
    histories: [
      {
        host: 'web-1',
        history: history(
          probes('host').map((p) =>
            p.check === 'http:api.conciliaextrato.com' && p.at > NOW - 25 * 60_000 ? { ...p, ok: false } : p,
          ),
        ),
      },
    ],
    errors: [],
    p95DegradeFactor: 2,
    errorThresholds: { windowMin: 30, max5xxPerMin: 10, maxRestarts: 3, maxErrorLinesPerMin: 10 },
    options: { maxGapS: 700 },
  })
  const file = join(TEST_OUTPUT, 'status-page-down.html')
  writeFileSync(file, renderPage(down, [], { title: 'Uptime report' }))
  const { page, errors } = await visit(browser, `file://${file}`)
  assert.equal(errors, [])
  assert.is((await page.textContent('[data-testid=summary]'))?.trim(), '1 service(s) down')
  assert.is(await page.getAttribute('[data-service=api]', 'data-state'), 'down')
  assert.is(await page.locator('[data-testid=bar-api-outside]').count(), 0)
  assert.is(await page.locator('[data-testid=bar-api-host] rect.day').count(), 31)
  assert.is((await page.textContent('[data-testid=deploys]'))?.trim(), 'No deploy in the record.')
  await page.close()
})

test.run()

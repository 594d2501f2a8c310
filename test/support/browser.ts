import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'

// Debian's Chromium (apt: chromium, installed by .ci/deps.sh), driven by playwright-core, headless. The
// flags keep it from calling home (this machine has no internet: background connections fail by the
// dozen otherwise) and let it run as root in a container.
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** Where tests keep what a person may want to look at afterwards (screenshots): git-ignored. */
export const TEST_OUTPUT = join(import.meta.dirname, '..', '..', 'test-output')

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} not found: run make deps (apt-get install chromium), or set CHROMIUM_PATH`)
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS })
}

export interface Visit {
  page: Page
  /** Console messages of type error, and uncaught page errors. */
  errors: string[]
  /** Every URL the page requested besides itself. */
  requests: string[]
}

/** Opens `url` in a new page, recording console errors, page errors and further requests. */
export async function visit(browser: Browser, url: string): Promise<Visit> {
  const page = await browser.newPage({ viewport: { width: 900, height: 1200 } })
  const errors: string[] = []
  const requests: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`)
  })
  page.on('pageerror', (e) => errors.push(`page: ${e.message}`))
  page.on('request', (r) => {
    if (r.url() !== url) requests.push(r.url())
  })
  await page.goto(url, { waitUntil: 'load' })
  return { page, errors, requests }
}

/** A full-page screenshot in test-output/, its path returned. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(TEST_OUTPUT, { recursive: true })
  const path = join(TEST_OUTPUT, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}

export interface PageInspection {
  title: string
  summary: string
  /** Per service: its state now, and the day marks of each view's bar. */
  /** p95: its chart ('chart'), the page's "no latency data" line ('no data'), or neither ('missing'). */
  services: {
    service: string
    state: string
    bars: Record<string, number>
    p95: 'chart' | 'no data' | 'missing'
  }[]
  incidents: number
  deploys: number
  errors: string[]
  requests: string[]
  screenshot: string
}

/** Opens a status page (or the uptime report) and reads what a person would see, with a screenshot. */
export async function inspectStatusPage(
  browser: Browser,
  url: string,
  name: string,
): Promise<PageInspection> {
  const { page, errors, requests } = await visit(browser, url)
  try {
    const services = await page.locator('article.service').evaluateAll((nodes) =>
      nodes.map((n) => ({
        service: n.getAttribute('data-service') ?? '',
        state: n.getAttribute('data-state') ?? '',
        bars: Object.fromEntries(
          [...n.querySelectorAll('.view')].map((v) => [
            v.getAttribute('data-view') ?? '',
            v.querySelectorAll('svg.bar rect.day').length,
          ]),
        ),
        p95: (n.querySelector('svg.chart')
          ? 'chart'
          : n.querySelector('.no-latency')
            ? 'no data'
            : 'missing') as 'chart' | 'no data' | 'missing',
      })),
    )
    return {
      title: await page.title(),
      summary: ((await page.textContent('[data-testid=summary]')) ?? '').trim(),
      services,
      incidents: await page.locator('[data-testid=incidents] tbody tr').count(),
      deploys: await page.locator('[data-testid=deploys] tbody tr').count(),
      errors,
      requests,
      screenshot: await screenshot(page, name),
    }
  } finally {
    await page.close()
  }
}

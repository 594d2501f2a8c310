import pRetry, { AbortError } from 'p-retry'
import type { NotifyTarget } from '../env/notify.ts'
import { print, printErr } from '../report/output.ts'
import { redact, redactDeep } from '../report/redact.ts'

// Webhook notifications for runbooks and alerts. Best effort by design: a failing webhook is reported
// and never changes a runbook's outcome, so nothing here throws.
export interface NotifyEvent {
  event: 'deploy' | 'rollback' | 'backup' | 'restore' | 'emergency' | 'alert' | string
  env: string
  outcome: 'success' | 'failed' | 'rolled-back' | 'recovered' | string
  title: string
  release?: string | null
  who?: string
  duration_s?: number
  link?: string | null
  details?: string[]
  runbook?: string
}

export interface NotifyResult {
  target: string
  ok: boolean
  status?: number
  error?: string
  attempts: number
}

export interface NotifyOptions {
  timeoutMs?: number
  retries?: number
  fetchImpl?: typeof fetch
  /** First backoff between attempts (doubling); a 429's retry-after replaces it. */
  retryDelayMs?: number
}

export const SOURCE = 'conciliaextrato-runbooks'
const RETRY_AFTER_CAP_MS = 5000
const STYLES: Record<string, { color: number; emoji: string }> = {
  success: { color: 0x2eb67d, emoji: '✅' },
  failed: { color: 0xe01e5a, emoji: '❌' },
  'rolled-back': { color: 0xf2a900, emoji: '↩️' },
  recovered: { color: 0x2eb67d, emoji: '🩹' },
}

export function outcomeStyle(outcome: string): { color: number; emoji: string } {
  return STYLES[outcome] ?? { color: 0x8a8f98, emoji: 'ℹ️' }
}

/** Cuts to at most `max` UTF-16 units with an ellipsis, never splitting a surrogate pair. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text
  let cut = Math.max(0, max - 1)
  const code = text.charCodeAt(cut - 1)
  if (code >= 0xd800 && code <= 0xdbff) cut--
  return `${text.slice(0, cut)}…`
}

function facts(e: NotifyEvent): [string, string][] {
  const rows: [string, string | undefined][] = [
    ['Environment', e.env],
    ['Outcome', e.outcome],
    ['Release', e.release ?? undefined],
    ['Who', e.who],
    ['Duration', e.duration_s === undefined ? undefined : duration(e.duration_s)],
    ['Runbook', e.runbook],
  ]
  return rows.filter((r): r is [string, string] => Boolean(r[1]))
}

function duration(s: number): string {
  const total = Math.round(s)
  return total < 60 ? `${total}s` : `${Math.floor(total / 60)}m ${total % 60}s`
}

function httpLink(link: string | null | undefined): string | undefined {
  return link && /^https?:\/\/\S+$/.test(link) ? link : undefined
}

// Slack mrkdwn treats <, > and & as markup (<!channel> pings everyone), so user text is escaped.
const mrkdwn = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

export function slackPayload(e: NotifyEvent): { text: string; blocks: object[] } {
  const { emoji } = outcomeStyle(e.outcome)
  const link = httpLink(e.link)
  const summary = facts(e)
    .map(([k, v]) => `${k.toLowerCase()}: ${v}`)
    .join(', ')
  const blocks: object[] = [
    { type: 'header', text: { type: 'plain_text', text: truncate(`${emoji} ${e.title}`, 150), emoji: true } },
    {
      type: 'section',
      fields: facts(e)
        .slice(0, 10)
        .map(([k, v]) => ({ type: 'mrkdwn', text: truncate(`*${k}*\n${mrkdwn(v)}`, 2000) })),
    },
  ]
  if (e.details?.length)
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: truncate(mrkdwn(e.details.join('\n')), 3000) },
    })
  if (link) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `<${mrkdwn(link)}|Open the run>` } })
  // Mattermost and Rocket.Chat show only `text`, so it carries the whole message in one line.
  const text = `${emoji} ${mrkdwn(e.title)} (${mrkdwn(summary)})${link ? ` ${mrkdwn(link)}` : ''}`
  return { text: truncate(text, 3000), blocks }
}

export function discordPayload(e: NotifyEvent, now = new Date()): Record<string, unknown> {
  const { color, emoji } = outcomeStyle(e.outcome)
  const title = truncate(`${emoji} ${e.title}`, 256)
  const fields = facts(e)
    .slice(0, 25)
    .map(([name, value]) => ({ name: truncate(name, 256), value: truncate(value, 1024), inline: true }))
  // Discord rejects an embed whose title, description and fields add up to more than 6000 characters.
  const used = title.length + fields.reduce((n, f) => n + f.name.length + f.value.length, 0)
  const description = truncate((e.details ?? []).join('\n'), Math.min(4096, 6000 - used))
  const link = httpLink(e.link)
  const embed = {
    title,
    description,
    color,
    fields,
    timestamp: now.toISOString(),
    ...(link ? { url: link } : {}),
  }
  // Text from a failed command must not ping @everyone.
  return { content: truncate(`${emoji} ${e.title}`, 2000), embeds: [embed], allowed_mentions: { parse: [] } }
}

export function jsonPayload(e: NotifyEvent, now = new Date()): NotifyEvent & { ts: string; source: string } {
  return { ...e, ts: now.toISOString(), source: SOURCE }
}

const BUILDERS = { slack: slackPayload, discord: discordPayload, json: jsonPayload }

/** Sends `e` to every target subscribed to it, in parallel; never throws, one result per target. */
export async function notify(
  targets: NotifyTarget[],
  secrets: Readonly<Record<string, string>>,
  e: NotifyEvent,
  options: NotifyOptions = {},
): Promise<NotifyResult[]> {
  const event = redactDeep(e)
  const subscribed = targets.filter((t) => t.events.includes(e.event))
  return Promise.all(subscribed.map((t) => sendSafely(t, secrets[t.urlSecret], event, options)))
}

async function sendSafely(
  target: NotifyTarget,
  url: string | undefined,
  e: NotifyEvent,
  options: NotifyOptions,
): Promise<NotifyResult> {
  const result: NotifyResult = { target: target.name, ok: false, attempts: 0 }
  if (!url) return { ...result, error: `secret ${target.urlSecret} is not set` }
  if (!isHttpUrl(url)) return { ...result, error: `secret ${target.urlSecret} is not an http(s) URL` }
  try {
    const body = JSON.stringify(BUILDERS[target.type](e))
    const status = await withRetries(url, body, options, (n) => {
      result.attempts = n
    })
    return { ...result, ok: true, status }
  } catch (err) {
    const known = err instanceof SendError ? err : undefined
    const error = scrub(redact(known?.message ?? `unexpected ${(err as Error)?.name ?? 'error'}`), url)
    return { ...result, error, ...(known?.status ? { status: known.status } : {}) }
  }
}

function withRetries(url: string, body: string, options: NotifyOptions, onAttempt: (n: number) => void) {
  return pRetry(
    (n) => {
      onAttempt(n)
      return post(url, body, options)
    },
    {
      retries: options.retries ?? 2,
      minTimeout: 0, // the delay is ours (onFailedAttempt), so a 429's retry-after can replace the backoff
      shouldRetry: ({ error }) => error instanceof SendError,
      onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
        if (retriesLeft > 0 && error instanceof SendError)
          await sleep(delayFor(error, attemptNumber, options.retryDelayMs ?? 500))
      },
    },
  )
}

class SendError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message)
  }
}

/** One POST: resolves with the status on 2xx, throws SendError (retryable) or AbortError (not). */
async function post(url: string, body: string, options: NotifyOptions): Promise<number> {
  const timeoutMs = options.timeoutMs ?? 5000
  let res: Response
  try {
    res = await (options.fetchImpl ?? fetch)(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    })
  } catch (err) {
    // Only a code or a name: fetch's own messages may quote the URL, which is a credential.
    throw new SendError(networkReason(err, timeoutMs))
  }
  const text = await res.text().catch(() => '')
  if (res.ok) return res.status
  const reason = `HTTP ${res.status}${snippet(text)}`
  if (res.status === 429) throw new SendError(reason, 429, retryAfterMs(res.headers.get('retry-after')))
  if (res.status >= 500) throw new SendError(reason, res.status)
  throw new AbortError(new SendError(reason, res.status))
}

function networkReason(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; cause?: { code?: string; name?: string } }
  if (e?.name === 'TimeoutError' || e?.cause?.name === 'TimeoutError')
    return `no answer within ${timeoutMs} ms`
  const code = e?.cause?.code ?? e?.cause?.name ?? e?.name ?? 'error'
  return `connection failed (${String(code).replace(/[^\w.-]/g, '')})`
}

function snippet(text: string): string {
  const line = text.trim().split('\n')[0] ?? ''
  return line ? `: ${truncate(line, 120)}` : ''
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined
  const ms = /^\d+(\.\d+)?$/.test(header.trim()) ? Number(header) * 1000 : Date.parse(header) - Date.now()
  return Number.isNaN(ms) ? undefined : Math.min(Math.max(ms, 0), RETRY_AFTER_CAP_MS)
}

function delayFor(err: Error, attempt: number, baseMs: number): number {
  if (err instanceof SendError && err.retryAfterMs !== undefined) return err.retryAfterMs
  return Math.min(baseMs * 2 ** (attempt - 1), RETRY_AFTER_CAP_MS)
}

function isHttpUrl(url: string): boolean {
  return URL.canParse(url) && /^https?:$/.test(new URL(url).protocol)
}

/** Removes the URL and its path from a message even when the secret was never registered. */
function scrub(message: string, url: string): string {
  let out = message
  const parsed = new URL(url)
  const forms = [url, encodeURIComponent(url), parsed.href, `${parsed.pathname}${parsed.search}`]
  for (const form of forms.filter((f) => f.length >= 8)) out = out.split(form).join('[webhook url]')
  return out
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** One line per target; a failure says the runbook's outcome did not change. */
export function reportNotifyResults(results: NotifyResult[]): void {
  for (const r of results) {
    if (r.ok) print(`notified ${r.target}`)
    else {
      const tries = r.attempts > 0 ? ` after ${r.attempts} attempt${r.attempts === 1 ? '' : 's'}` : ''
      printErr(`could not notify ${r.target}: ${r.error}${tries} (the runbook's outcome is unchanged)`)
    }
  }
}

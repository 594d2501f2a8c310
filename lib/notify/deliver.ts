import pRetry, { AbortError } from 'p-retry'
import { truncate } from './format.ts'

// Delivery over HTTP (webhooks, Telegram, PagerDuty) with retries: a 5xx, a 429 (after its retry-after),
// a timeout or a refused connection is tried again; another 4xx is final.
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

const RETRY_AFTER_CAP_MS = 5000

/**
 * `attempt` until it resolves, at most `retries` more times when it throws a SendError (an AbortError
 * wrapping one is final); resolves with its status.
 */
export function withRetries(
  attempt: () => Promise<number>,
  options: NotifyOptions,
  onAttempt: (n: number) => void,
): Promise<number> {
  return pRetry(
    (n) => {
      onAttempt(n)
      return attempt()
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

/** A delivery that failed, with a message safe to print (no URL, no credential). */
export class SendError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message)
  }
}

/** One POST: resolves with the status on 2xx, throws SendError (retryable) or AbortError (not). */
export async function post(url: string, body: string, options: NotifyOptions): Promise<number> {
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

/** Why a request got no answer, in words that never quote its URL (which may be a credential). */
export function networkReason(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; cause?: { code?: string; name?: string } }
  if (e?.name === 'TimeoutError' || e?.cause?.name === 'TimeoutError')
    return `no answer within ${timeoutMs} ms`
  const code = e?.cause?.code ?? e?.cause?.name ?? e?.name ?? 'error'
  return `connection failed (${String(code).replace(/[^\w.-]/g, '')})`
}

export function snippet(text: string): string {
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

export function isHttpUrl(url: string): boolean {
  return URL.canParse(url) && /^https?:$/.test(new URL(url).protocol)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

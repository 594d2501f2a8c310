import { type NotifyOptions, post, SendError, withRetries } from '../notify/deliver.ts'

// One heartbeat ping, with retries (a 5xx, a timeout or a refused connection is tried again). Never
// throws: a ping that does not arrive is reported, and the service's silence alert is the backstop.
export interface PingResult {
  ok: boolean
  status?: number
  error?: string
  attempts: number
}

/** POSTs `body` (a one-line summary the service keeps with the ping) to the ping URL. */
export async function ping(url: string, body: string, options: NotifyOptions = {}): Promise<PingResult> {
  let attempts = 0
  try {
    const status = await withRetries(
      () => post(url, body, options),
      options,
      (n) => {
        attempts = n
      },
    )
    return { ok: true, status, attempts }
  } catch (err) {
    const e = err instanceof SendError ? err : undefined
    // Only SendError's own message: it never quotes the URL (which holds the ping key).
    return {
      ok: false,
      error: e?.message ?? 'ping failed',
      ...(e?.status ? { status: e.status } : {}),
      attempts,
    }
  }
}

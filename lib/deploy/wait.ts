import pRetry, { AbortError } from 'p-retry'

/**
 * Polls `check` every `intervalMs` (twice a second by default) until it returns true, for at most
 * `timeoutS` seconds. `check` returns true, or a short description of what is not ready yet (shown
 * when the time runs out).
 */
export async function waitUntil(
  what: string,
  timeoutS: number,
  check: () => Promise<true | string>,
  intervalMs = 500,
): Promise<void> {
  const deadline = Date.now() + timeoutS * 1000
  let last = ''
  await pRetry(
    async () => {
      const result = await check()
      if (result === true) return
      last = result
      if (Date.now() > deadline) throw new AbortError(`${what}: not ready after ${timeoutS} s (${last})`)
      throw new Error(last)
    },
    {
      retries: Math.ceil((timeoutS * 1000) / intervalMs) + 5,
      minTimeout: intervalMs,
      maxTimeout: intervalMs,
      factor: 1,
    },
  )
}

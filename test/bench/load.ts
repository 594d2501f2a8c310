import { Agent, request } from 'node:http'
import { Worker } from 'node:worker_threads'

// A bounded load generator on loopback: continuous GETs through nginx, for the deploy benchmarks.
export interface LoadResult {
  requests: number
  failed: number
  maxGapMs: number
  /** What the failed requests were, `<host> <status|error|timeout>` -> count: to tell a 503 from a reset. */
  failures: Record<string, number>
  /** The first answers of each failing kind (status and body, cut to 300 characters): who answered, and why. */
  samples: Record<string, string[]>
  /**
   * Requests sent again, once, on a new connection: the kept-alive connection they went out on was
   * reset before any answer (nginx closes idle keep-alive connections when it reloads). A browser does
   * the same for an idempotent request (RFC 9112 9.3.1; Node's http docs, request.reusedSocket). Only
   * the second attempt's outcome counts.
   */
  retried: number
  /** The slowest request that got an answer (ms): slowness is reported, not counted as a failure. */
  slowestMs: number
  /** Per host that ever failed: ms from its first failed request's start to its last failed one's end. */
  failSpanMs: Record<string, number>
  /** Failed answers that carried Retry-After (the maintenance page does; nginx's own 502 does not). */
  withRetryAfter: number
}

export function startLoad(
  port: number,
  hosts: string[],
  path: string,
  concurrency = 6,
  maxRequests = 200_000,
  /** At most this many requests a second in all (paced per worker); 0: as fast as they answer. */
  perSecond = 0,
  /**
   * A request with no answer after this long counts as failed (`timeout`). 5 s for the benchmarks; a
   * test on a loaded shared machine passes the 30 s interruption bound the team promised, so that a
   * slow answer on a host at load 15 is reported (slowestMs), not counted as a failed request.
   */
  timeoutMs = 5000,
) {
  const gapMs = perSecond > 0 ? (1000 * concurrency) / perSecond : 0
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  let running = true
  let requests = 0
  let failed = 0
  let lastOk = performance.now()
  let maxGapMs = 0
  const failures: Record<string, number> = {}
  const samples: Record<string, string[]> = {}
  let retried = 0
  let slowestMs = 0
  let withRetryAfter = 0
  const spans: Record<string, { first: number; last: number }> = {}
  const once = (host: string, retry = true): Promise<boolean> =>
    new Promise<boolean>((done) => {
      let timedOut = false
      const sent = performance.now()
      const fail = (what: string, body = '') => {
        const span = spans[host] ?? { first: sent, last: sent }
        spans[host] = { first: Math.min(span.first, sent), last: Math.max(span.last, performance.now()) }
        const kind = `${host} ${what}`
        failures[kind] = (failures[kind] ?? 0) + 1
        samples[kind] ??= []
        const kept = samples[kind]
        if (kept.length < 3) kept.push(`${new Date().toISOString()} ${body.slice(0, 300)}`.trim())
        done(false)
      }
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          agent: retry ? agent : false,
          headers: { Host: host },
          timeout: timeoutMs,
        },
        (res) => {
          let body = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => {
            if (res.statusCode !== 200 && body.length < 300) body += c
          })
          res.on('end', () => {
            if (res.statusCode === 200) return done(true)
            if (res.headers['retry-after']) withRetryAfter++
            fail(String(res.statusCode), body)
          })
        },
      )
      req.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code
        if (retry && !timedOut && req.reusedSocket && code === 'ECONNRESET') {
          retried++
          once(host, false).then(done)
          return
        }
        fail(timedOut ? 'timeout' : `error ${code ?? err.message}`)
      })
      req.on('timeout', () => {
        timedOut = true
        req.destroy()
      })
      req.end()
    })
  const worker = async (i: number) => {
    while (running && requests < maxRequests) {
      const started = performance.now()
      const ok = await once(hosts[(requests + i) % hosts.length] ?? '')
      requests++
      const now = performance.now()
      if (ok) {
        slowestMs = Math.max(slowestMs, now - started)
        maxGapMs = Math.max(maxGapMs, now - lastOk)
        lastOk = now
      } else failed++
      const wait = gapMs - (performance.now() - started)
      if (wait > 0 && running) await new Promise((r) => setTimeout(r, wait))
    }
  }
  const workers = Array.from({ length: concurrency }, (_, i) => worker(i))
  return {
    async stop(): Promise<LoadResult> {
      running = false
      await Promise.all(workers)
      agent.destroy()
      maxGapMs = Math.max(maxGapMs, performance.now() - lastOk)
      return {
        requests,
        failed,
        maxGapMs: Math.round(maxGapMs),
        failures,
        samples,
        retried,
        slowestMs: Math.round(slowestMs),
        failSpanMs: Object.fromEntries(
          Object.entries(spans).map(([h, sp]) => [h, Math.round(sp.last - sp.first)]),
        ),
        withRetryAfter,
      }
    },
  }
}

/**
 * startLoad in a worker thread: the same requests and figures, but timed on an event loop of their own,
 * so a busy moment of the runbook running in this process (SSH crypto, parsing) does not show as a gap
 * in the visitors' answers, which it would not be for real visitors.
 */
export async function startLoadApart(
  ...args: Parameters<typeof startLoad>
): Promise<{ stop(): Promise<LoadResult> }> {
  // The worker loads TypeScript as this process does (tsx's loader, registered in the thread first).
  const file = new URL('./load-worker.ts', import.meta.url).href
  const boot = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(file)}) })`
  const worker = new Worker(boot, { eval: true, workerData: { args } })
  const failed = new Promise<never>((_, reject) => worker.once('error', reject))
  // Sending before it returns: the first message is the thread's word that the requests have begun.
  await Promise.race([failed, new Promise((resolve) => worker.once('message', resolve))])
  return {
    stop: () =>
      Promise.race([
        failed,
        new Promise<LoadResult>((resolve) => {
          worker.once('message', (r: LoadResult) => {
            void worker.terminate()
            resolve(r)
          })
          worker.postMessage('stop')
        }),
      ]),
  }
}

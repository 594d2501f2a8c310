import autocannon from 'autocannon'
import type { Target, TargetResult } from './plan.ts'

// One target loaded with autocannon at its rate for the duration: every answer's time and status kept
// (the p95 is computed from all of them), connection errors and timeouts counted. The certificate is
// not checked here (autocannon does not): the preflight (lib/health/edge.ts) checked it through the edge.

/**
 * Connections per target: one per request a second (autocannon gives each a whole share of the rate;
 * each sends its first request at once, so more would start with a burst above the rate), at most 100.
 * A server slower than a second per answer then gets fewer requests than the rate: the throughput says so.
 */
export const connectionsFor = (rps: number) => Math.min(100, Math.max(1, rps))

export function loadOne(target: Target, seconds: number, timeoutS = 10): Promise<TargetResult> {
  return new Promise((done, fail) => {
    const latenciesMs: number[] = []
    let failedAnswers = 0
    const instance = autocannon(
      {
        url: `${target.via === 'edge' ? 'https' : 'http'}://${target.address}:${target.port}${target.path}`,
        headers: { host: target.domain, 'user-agent': 'conciliaextrato-loadtest' },
        servername: target.domain,
        connections: connectionsFor(target.rps),
        overallRate: target.rps,
        duration: seconds,
        timeout: timeoutS,
      },
      (err, result) => {
        if (err) return fail(err)
        done({
          target,
          requests: latenciesMs.length,
          errors: result.errors,
          failedAnswers,
          latenciesMs,
          durationS: result.duration,
        })
      },
    )
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      latenciesMs.push(responseTime)
      if (statusCode >= 400) failedAnswers++
    })
  })
}

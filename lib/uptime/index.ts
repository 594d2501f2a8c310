// Uptime, latency and error tracking from the hosts' health history (`make uptime`): the pure half.
// The rules (overlap, gaps, clock changes, percentiles, thresholds) are documented where they are
// applied: uptime/history.ts, uptime/availability.ts, uptime/latency.ts, uptime/errors.ts.
export * from './availability.ts'
export * from './errors.ts'
export * from './history.ts'
export * from './latency.ts'
export * from './report.ts'

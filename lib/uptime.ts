// Uptime, latency and error tracking from the hosts' health history (`make uptime`): the pure half.
// The rules (overlap, gaps, clock changes, percentiles, thresholds) are documented where they are
// applied: uptime/history.ts, uptime/availability.ts, uptime/latency.ts, uptime/errors.ts.
export * from './uptime/availability.ts'
export * from './uptime/errors.ts'
export * from './uptime/history.ts'
export * from './uptime/latency.ts'
export * from './uptime/report.ts'

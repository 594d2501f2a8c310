// The floors of lib/, lowest first (docs/architecture.md). A file imports only from its own floor or
// lower. The domains share the top floor; among them the folder graph must stay free of circles.
export const FLOORS: readonly (readonly string[])[] = [
  ['report'],
  ['env'],
  ['commands'],
  ['host', 'store'],
  ['stack'],
  ['run'],
  ['notify'],
  [
    'backup',
    'ci',
    'delivery',
    'deploy',
    'dns',
    'emergency',
    'gates',
    'health',
    'heartbeat',
    'incident',
    'loadtest',
    'security',
    'migration',
    'release',
    'secrets',
    'setup',
    'swarm',
    'uptime',
    'watchdog',
  ],
]

export function floorOf(folder: string): number {
  return FLOORS.findIndex((floor) => floor.includes(folder))
}

/** Arrows kept although they run up a floor, each with its reason (docs/architecture.md repeats them). */
export const KEPT_UP_ARROWS: Record<string, string> = {}

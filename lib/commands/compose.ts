import { quote } from './shell.ts'

// Compose, v2 plugin (`docker compose`) or v1 (`docker-compose`): detected per host, same arguments.
export type ComposeFlavour = 'v2' | 'v1'
export type Colour = 'blue' | 'green'

export const COLOURS: Colour[] = ['blue', 'green']
export const otherColour = (c: Colour): Colour => (c === 'blue' ? 'green' : 'blue')

/** 127.0.0.1 ports of each colour: nginx's upstreams point at one set or the other. */
export function colourPorts(colour: Colour): { site: number; saas: number; api: number } {
  const base = colour === 'blue' ? 18080 : 18090
  return { site: base + 1, saas: base + 2, api: base + 3 }
}

export const composeFlavourProbe =
  'if docker compose version >/dev/null 2>&1; then echo v2; elif command -v docker-compose >/dev/null 2>&1; then echo v1; else echo none; fi'

export function projectName(env: string, part: Colour | 'data'): string {
  return `ce-${env}-${part}`
}

/**
 * `docker compose -p P -f FILE <args>` in the env's directory, its interpolation variables exported
 * from VARS (a shell file of quoted values: stack/files.ts shellVars). Not `--env-file`: Compose's
 * .env parsers (v1 and v2 differ) would expand a `$` or cut at ` #` inside a password.
 */
export function compose(
  flavour: ComposeFlavour,
  dir: string,
  project: string,
  file: string | string[],
  envFile: string,
  args: string,
): string {
  const bin = flavour === 'v2' ? 'docker compose' : 'docker-compose'
  const files = (Array.isArray(file) ? file : [file]).map((f) => `-f ${quote(f)}`).join(' ')
  return `cd ${quote(dir)} && set -a && . ${quote(envFile)} && set +a && ${bin} --ansi never -p ${quote(project)} ${files} ${args}`
}

/** Container ids of a compose project (and service), found by label: the same for v1 and v2. */
export function projectContainers(project: string, service?: string, all = false): string {
  const svc = service ? ` --filter ${quote(`label=com.docker.compose.service=${service}`)}` : ''
  return `docker ps${all ? ' -a' : ''} -q --filter ${quote(`label=com.docker.compose.project=${project}`)}${svc}`
}

/** Prints `<service> <state> <health>` for every container of a project. */
export function projectHealth(project: string): string {
  return inspectEach(
    projectContainers(project, undefined, true),
    '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}',
  )
}

/**
 * One `docker inspect` for every container the listing prints (one docker call, not one each: a
 * docker call costs ~0.15 s on a small droplet). Nothing listed: nothing printed. A container removed
 * between the two is skipped (its error is not printed; the others still are).
 */
export function inspectEach(listing: string, format: string): string {
  return `ids=$(${listing}); [ -z "$ids" ] || docker inspect -f '${format}' $ids 2>/dev/null; true`
}

/** Prints `<service> <image> <state> <health>` for every running container of a project (what it runs right now). */
export function projectRunningImages(project: string): string {
  return inspectEach(
    projectContainers(project),
    '{{index .Config.Labels "com.docker.compose.service"}} {{.Config.Image}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}',
  )
}

/** projectRunningImages's lines (`<service> <image> <state> <health>`), without what a command printed after them. */
function containerLines(out: string): string[] {
  return out
    .trim()
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('answers '))
}

/** Whether every container projectRunningImages listed is running and healthy (or has no health check). */
export function allHealthy(out: string): boolean {
  const lines = containerLines(out)
  return (
    lines.length > 0 &&
    lines.every((l) => {
      const [, , state, health] = l.split(' ')
      return state === 'running' && (health === 'healthy' || health === 'none')
    })
  )
}

/** Whether the running containers are exactly `images`, one per service (the instant-rollback window kept them). */
export function runsExactly(out: string, images: Record<string, string>): boolean {
  const running = containerLines(out).map((l) => l.split(' '))
  const wanted = Object.entries(images)
  return (
    running.length === wanted.length &&
    wanted.every(([svc, image]) => running.some(([s, i]) => s === svc && i === image))
  )
}

export interface ServiceHealth {
  service: string
  state: string
  health: string
}

export function parseProjectHealth(out: string): ServiceHealth[] {
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [service = '', state = '', health = ''] = line.split(' ')
      return { service, state, health }
    })
}

/** Prints `<image ref> <image id>` for each image, or `<ref> missing`. */
export function imageIds(refs: string[]): string {
  return inspectImages(
    refs.map((r) => [r, r]),
    '{{.Id}}',
    'missing',
  )
}

/**
 * `<label> <what format prints>` per image: one docker call when all are there (it prints them in the
 * order asked; each docker call costs ~0.15 s on a small droplet), else one each, a missing image's
 * line being `<label> <missing>`.
 */
export function inspectImages(entries: [label: string, ref: string][], format: string, missing = ''): string {
  const refs = entries.map(([, r]) => quote(r)).join(' ')
  const one = ([label, r]: [string, string]) =>
    `echo ${quote(label)} $(docker image inspect -f '${format}' ${quote(r)} 2>/dev/null${missing ? ` || echo ${quote(missing)}` : ''})`
  return `if out=$(docker image inspect -f '${format}' ${refs} 2>/dev/null); then set -- ${entries.map(([l]) => quote(l)).join(' ')}; printf '%s\n' "$out" | while read -r l; do echo "$1 $l"; shift; done; else ${entries.map(one).join('; ')}; fi`
}

export const networkEnsure = (network: string) =>
  `docker network inspect ${quote(network)} >/dev/null 2>&1 || docker network create ${quote(network)} >/dev/null`

import type { RegistryConfig } from '../env/load.ts'
import { inspectImages } from './compose.ts'
import { quote } from './shell.ts'

// Registry delivery: the host pulls the release's images itself. Credentials never stay on the host:
// each command logs in with a throwaway Docker config directory (the password comes on stdin) that
// is removed when the command ends, whatever happens.

/** Runs `body` with `$cfg` set to a throwaway Docker config that is logged in when credentials exist. */
function withLogin(registry: RegistryConfig | undefined, body: string[]): string {
  const lines = ['set -e', 'cfg=$(mktemp -d)', `trap 'rm -rf "$cfg"' EXIT`]
  if (registry?.username && registry.passwordSecret)
    lines.push(
      `docker --config "$cfg" login --username ${quote(registry.username)} --password-stdin ${quote(registry.server)} >/dev/null`,
    )
  return [...lines, ...body].join('\n')
}

/** True when the command reads the registry password on stdin. */
export function needsPassword(registry: RegistryConfig | undefined): boolean {
  return Boolean(registry?.username && registry.passwordSecret)
}

/**
 * One line per ref: `<ref> present` or `<ref> missing`. An image the host already holds is present
 * (no registry is asked: postgres:15 pulled once is not looked up on Docker Hub at every deploy);
 * otherwise the registry is asked for its manifest (nothing is pulled).
 */
export function manifestProbe(refs: string[], registry: RegistryConfig | undefined): string {
  const insecure = registry?.insecure ? ' --insecure' : ''
  return withLogin(
    registry,
    refs.map(
      (r) =>
        `if docker image inspect ${quote(r)} >/dev/null 2>&1 || docker --config "$cfg" manifest inspect${insecure} ${quote(r)} >/dev/null 2>&1; then echo ${quote(`${r} present`)}; else echo ${quote(`${r} missing`)}; fi`,
    ),
  )
}

export function parseManifestProbe(out: string): string[] {
  return out
    .split('\n')
    .filter((l) => l.endsWith(' missing'))
    .map((l) => l.slice(0, -' missing'.length))
}

/** Pulls the refs; the daemon then holds them, the credentials are gone with `$cfg`. */
export function pullImages(refs: string[], registry: RegistryConfig | undefined): string {
  return withLogin(
    registry,
    refs.map((r) => `docker --config "$cfg" pull -q ${quote(r)} >/dev/null && echo ${quote(`pulled ${r}`)}`),
  )
}

/**
 * One line per pinned image: `<ref> pinned` when the host's `<ref>` (repo:<release>) is the image of
 * `<digestRef>` (repo@sha256:..., among its RepoDigests), else `<ref> unpinned` (absent, or another image).
 */
export function pinnedProbe(pairs: Array<[ref: string, digestRef: string]>): string {
  return pairs
    .map(
      ([ref, digestRef]) =>
        `if docker image inspect -f '{{join .RepoDigests " "}}' ${quote(ref)} 2>/dev/null | tr ' ' '\\n' | grep -qxF ${quote(digestRef)}; then echo ${quote(`${ref} pinned`)}; else echo ${quote(`${ref} unpinned`)}; fi`,
    )
    .join('\n')
}

export function parsePinnedProbe(out: string): string[] {
  return out
    .split('\n')
    .filter((l) => l.endsWith(' unpinned'))
    .map((l) => l.slice(0, -' unpinned'.length))
}

/** Pulls each image by its digest and tags it as the release locally (what compose and the records name). */
export function pullPinned(
  pairs: Array<[ref: string, digestRef: string]>,
  registry: RegistryConfig | undefined,
): string {
  return withLogin(
    registry,
    pairs.map(
      ([ref, digestRef]) =>
        `docker --config "$cfg" pull -q ${quote(digestRef)} >/dev/null && docker tag ${quote(digestRef)} ${quote(ref)} && echo ${quote(`pulled ${digestRef} as ${ref}`)}`,
    ),
  )
}

/** `<service> <image id> <repo digest or ->` for each image, as the host has it. */
export function imageDigests(images: Record<string, string>): string {
  return inspectImages(
    Object.entries(images),
    '{{.Id}} {{if .RepoDigests}}{{index .RepoDigests 0}}{{else}}-{{end}}',
  )
}

export function parseImageDigests(out: string): {
  ids: Record<string, string>
  repoDigests: Record<string, string>
} {
  const ids: Record<string, string> = {}
  const repoDigests: Record<string, string> = {}
  for (const line of out.trim().split('\n').filter(Boolean)) {
    const [svc, id, repo] = line.split(' ')
    if (!svc || !id) continue
    ids[svc] = id
    if (repo && repo !== '-') repoDigests[svc] = repo
  }
  return { ids, repoDigests }
}

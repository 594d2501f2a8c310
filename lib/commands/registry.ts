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
function needsPassword(registry: RegistryConfig | undefined): boolean {
  return Boolean(registry?.username && registry.passwordSecret)
}

/** The exec option that hands a login's password to the command's stdin (never its command line). */
export function registryStdin(
  registry: RegistryConfig | undefined,
  secrets: Readonly<Record<string, string | undefined>>,
): { stdin?: string } {
  return needsPassword(registry) && registry?.passwordSecret
    ? { stdin: secrets[registry.passwordSecret] ?? '' }
    : {}
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

/**
 * Whether the registry holds each ref, and its digest: pulled (the host then holds it for the deploy
 * that follows) and read back from the image's RepoDigests. One line per ref: `<ref> found <repo
 * digests...>`, `<ref> missing` (the registry answered: no such tag), or `<ref> unreachable <the
 * error's last line>` (no answer, or a refused login: not the same as missing).
 */
export function releaseImagesProbe(refs: string[], registry: RegistryConfig | undefined): string {
  return withLogin(
    registry,
    refs.map((r) =>
      [
        `if out=$(docker --config "$cfg" pull -q ${quote(r)} 2>&1); then`,
        `  echo ${quote(r)}" found $(docker image inspect -f '{{join .RepoDigests " "}}' ${quote(r)})"`,
        `elif printf '%s' "$out" | grep -qiE 'manifest unknown|not found'; then echo ${quote(`${r} missing`)}`,
        `else echo ${quote(r)}" unreachable $(printf '%s' "$out" | tail -n 1)"; fi`,
      ].join('\n'),
    ),
  )
}

export type ReleaseImage =
  | { state: 'found'; digest: string }
  | { state: 'missing' }
  | { state: 'unreachable'; error: string }

/** Each ref's answer; a found ref's digest is the RepoDigest of its own repository (`sha256:...`). */
export function parseReleaseImages(out: string, refs: string[]): Map<string, ReleaseImage> {
  const answers = new Map<string, ReleaseImage>()
  for (const ref of refs) {
    const line = out.split('\n').find((l) => l.startsWith(`${ref} `))
    const rest = line?.slice(ref.length + 1) ?? ''
    const repo = ref.replace(/:[^:/]+$/, '')
    if (rest.startsWith('found ')) {
      const digest = rest
        .slice('found '.length)
        .split(' ')
        .find((d) => d.startsWith(`${repo}@sha256:`))
        ?.split('@')[1]
      answers.set(
        ref,
        digest ? { state: 'found', digest } : { state: 'unreachable', error: 'pulled, but no digest of it' },
      )
    } else if (rest === 'missing') answers.set(ref, { state: 'missing' })
    else answers.set(ref, { state: 'unreachable', error: rest.replace(/^unreachable ?/, '') || 'no answer' })
  }
  return answers
}

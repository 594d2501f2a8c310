/**
 * Old app images off the host after a successful deploy: the images of the newest
 * images.keep_releases live releases stay (the one just deployed and the rollback target always),
 * every other tag of the app's repositories goes. Postgres and Redis images are never touched, and
 * Docker itself refuses to remove an image a container (even a stopped one) still uses.
 */
import { quote } from '../commands/shell.ts'
import type { Env } from '../env/load.ts'
import { SERVICES } from '../env/load.ts'
import type { HostSession } from '../host/session.ts'
import { print } from '../report/output.ts'
import type { ReleaseRecord } from '../stack/releases.ts'

/** Every tagged image on the host: `repository:tag` per line. */
export const imageListing = `docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -v ':<none>$' || true`

/**
 * The releases whose images stay: the current one, the newest live releases of the history up to
 * `keep` in all, and `previous` (the rollback target) whatever its age.
 */
export function releasesToKeep(
  history: ReleaseRecord[],
  current: string,
  previous: string | null,
  keep: number,
): string[] {
  const kept = [current]
  for (const r of [...history].reverse()) {
    if (kept.length >= keep) break
    if (r.outcome === 'live' && !kept.includes(r.id)) kept.push(r.id)
  }
  if (previous && !kept.includes(previous)) kept.push(previous)
  return kept
}

/**
 * The tags to remove: those of the app's repositories (site, saas, api of the env) that no kept
 * release names. A kept release's images are kept by its record's refs and by repo:<release id>.
 */
export function imagesToPrune(listing: string, env: Env, history: ReleaseRecord[], kept: string[]): string[] {
  const repos = new Set(SERVICES.map((s) => env.images[s]))
  const keep = new Set<string>()
  for (const id of kept) {
    for (const repo of repos) keep.add(`${repo}:${id}`)
    for (const r of history.filter((h) => h.id === id))
      for (const ref of Object.values(r.images)) keep.add(ref)
  }
  return listing
    .split('\n')
    .map((l) => l.trim())
    .filter((ref) => {
      const at = ref.lastIndexOf(':')
      return at > 0 && repos.has(ref.slice(0, at)) && !keep.has(ref)
    })
    .sort()
}

/** Removes each tag; one Docker refuses (a container uses it) is reported as kept, not a failure. */
export function removeImages(refs: string[]): string {
  return `for r in ${refs.map(quote).join(' ')}; do if docker image rm -- "$r" >/dev/null 2>&1; then echo "removed $r"; else echo "kept $r (in use)"; fi; done`
}

/** On each host: the app images of releases outside the kept ones, removed. Returns whether any went. */
export async function pruneImages(
  hosts: HostSession[],
  env: Env,
  history: ReleaseRecord[],
  current: string,
  previous: string | null,
): Promise<boolean> {
  const kept = releasesToKeep(history, current, previous, env.images.keepReleases)
  let removed = false
  for (const host of hosts) {
    const listing = (await host.exec(imageListing, { probe: true, echo: false })).stdout
    const refs = imagesToPrune(listing, env, history, kept)
    if (refs.length === 0) continue
    const out = (await host.exec(removeImages(refs), { echo: false, timeoutS: 300 })).stdout.trim()
    for (const line of out.split('\n').filter(Boolean)) print(`      ${host.name}: ${line}`)
    removed ||= out.includes('removed ')
  }
  print(
    `      images kept for releases ${kept.join(', ')} (images.keep_releases: ${env.images.keepReleases})`,
  )
  return removed
}

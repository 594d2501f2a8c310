import type { Env, Service } from '../env/load.ts'
import { SERVICES } from '../env/load.ts'
import { InputError } from '../report/errors.ts'
import { perRun } from '../run/per-run.ts'
import type { ReleaseRecord } from '../stack/releases.ts'

// A release pinned by digest: the registry manifest digests CI built (DIGESTS=), or those a release
// record kept (a rollback). The host pulls `repo@sha256:...` and tags it `repo:<release>` locally, so
// a tag overwritten in the registry can never change what runs; what it holds is checked after.

export type Pins = Record<Service, string>

const DIGEST = /^sha256:[0-9a-f]{64}$/

const pins = perRun<Pins>('image pins')
export const setPins = pins.set
export const runPins = pins.maybe

/** DIGESTS=site=sha256:...,saas=sha256:...,api=sha256:... (images.yml's outputs); undefined when not given. */
export function parseDigestsArg(raw: string | undefined, env: Env): Pins | undefined {
  if (raw === undefined || raw.trim() === '') return undefined
  const how =
    'Pass DIGESTS=site=sha256:<64 hex>,saas=sha256:<64 hex>,api=sha256:<64 hex> (the digests the image build printed), or leave it out to deploy by tag.'
  if (env.images.delivery !== 'registry')
    throw new InputError(
      `DIGESTS: ${env.file} delivers images over SSH (images.delivery: ssh), so there is no registry digest to pin`,
      [],
      'Leave DIGESTS out, or use images.delivery: registry.',
    )
  const problems: string[] = []
  const found: Partial<Pins> = {}
  for (const part of raw.split(',').map((p) => p.trim())) {
    const [name, digest, ...rest] = part.split('=')
    if (!(SERVICES as readonly string[]).includes(name ?? '') || rest.length > 0 || !digest) {
      problems.push(`DIGESTS: "${part}" is not <service>=sha256:<digest> (services: ${SERVICES.join(', ')})`)
      continue
    }
    if (!DIGEST.test(digest)) problems.push(`DIGESTS: ${name}'s "${digest}" is not sha256: and 64 hex digits`)
    else if (found[name as Service]) problems.push(`DIGESTS: ${name} is given twice`)
    else found[name as Service] = digest
  }
  for (const s of SERVICES)
    if (!found[s] && !problems.some((p) => p.includes(` ${s}`))) problems.push(`DIGESTS: ${s} is missing`)
  if (problems.length) throw new InputError('DIGESTS is not usable:', problems, how)
  return found as Pins
}

/** The pins a release record kept (repo@sha256:... per service), when it kept one for every service. */
export function pinsOfRecord(record: ReleaseRecord | undefined): Pins | undefined {
  const repo = record?.repo_digests
  if (!repo) return undefined
  const out: Partial<Pins> = {}
  for (const s of SERVICES) {
    const digest = repo[s]?.split('@')[1]
    if (!digest || !DIGEST.test(digest)) return undefined
    out[s] = digest
  }
  return out as Pins
}

/** What the host pulls for each pinned image ref (`repo:<release>` -> `repo@sha256:...`). */
export function pinnedRefs(images: Record<Service, string>, p: Pins): Map<string, string> {
  return new Map(SERVICES.map((s) => [images[s], `${images[s].replace(/:[^:/]+$/, '')}@${p[s]}`]))
}

import { readKeySource } from './key-source.ts'
import type { SshKeySource } from './terms.ts'
import type { Validator } from './validate.ts'

// Another env read through its read-only checker account: `promote_from:` (production promotes a
// release only as it went live on staging: the same release, the same image digests, read from
// staging's release history) and `outside_view:` (make uptime reads the outside probes of this env that
// the other env's watchdog wrote into its own health history: watchdog.watch there).
export interface PeerChecker {
  /** The other env (an env file's name). */
  env: string
  /** That env's checker key (its ssh.checker login): reads its history, can change nothing. */
  checkerKey: SshKeySource
}
export type PromoteFrom = PeerChecker
export type OutsideView = PeerChecker

const NAME = /^[a-z][a-z0-9-]{0,31}$/

function readPeerChecker(
  v: Validator,
  raw: unknown,
  field: string,
  secrets: string[],
  self: string,
): PeerChecker | undefined {
  if (raw === undefined) return undefined
  const p = v.object(raw, field, ['env', 'checker_key'])
  const env = v.string(p, 'env', field, { pattern: NAME, form: 'an env name (a file in env/)' }) ?? ''
  if (env === self) v.problem(`${field}.env`, `names ${self} itself: it must be another env`)
  const checkerKey = readKeySource(v, p?.checker_key, `${field}.checker_key`, {
    agent: false,
    secrets,
    hint: `${env || 'that env'}'s checker key: read-only, never its deploy key`,
  })
  return { env, checkerKey }
}

export function readPromoteFrom(
  v: Validator,
  raw: unknown,
  secrets: string[],
  self: string,
): PromoteFrom | undefined {
  return readPeerChecker(v, raw, 'promote_from', secrets, self)
}

export function readOutsideView(
  v: Validator,
  raw: unknown,
  secrets: string[],
  self: string,
): OutsideView | undefined {
  return readPeerChecker(v, raw, 'outside_view', secrets, self)
}

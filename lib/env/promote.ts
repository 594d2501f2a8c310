import { readKeySource } from './key-source.ts'
import type { SshKeySource } from './terms.ts'
import type { Validator } from './validate.ts'

// `promote_from:` of an env file (production): a release goes live here only as it went live on that
// env (staging): the same release, the same image digests, read from its release history through its
// read-only checker account. Build once, promote by digest.
export interface PromoteFrom {
  /** The env whose live releases this one promotes (an env file's name). */
  env: string
  /** That env's checker key (its ssh.checker login): reads its history, can change nothing. */
  checkerKey: SshKeySource
}

const NAME = /^[a-z][a-z0-9-]{0,31}$/

export function readPromoteFrom(
  v: Validator,
  raw: unknown,
  secrets: string[],
  self: string,
): PromoteFrom | undefined {
  if (raw === undefined) return undefined
  const p = v.object(raw, 'promote_from', ['env', 'checker_key'])
  const env =
    v.string(p, 'env', 'promote_from', { pattern: NAME, form: 'an env name (a file in env/)' }) ?? ''
  if (env === self) v.problem('promote_from.env', `${self} cannot promote from itself`)
  const checkerKey = readKeySource(v, p?.checker_key, 'promote_from.checker_key', {
    agent: false,
    secrets,
    hint: `${env || 'that env'}'s checker key: read-only, never its deploy key`,
  })
  return { env, checkerKey }
}

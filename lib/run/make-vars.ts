import { InputError } from '../report/errors.ts'
import { COMMON_OPTIONS, type OptionSpec } from './cli.ts'

// `make deploy ENV=staging RELEASE=abc` and `tsx runbooks/run.ts deploy ENV=staging RELEASE=abc`: the
// variables reach the runbook through the environment (make exports its command-line variables), never
// pasted into a shell line, so a value is only ever a value. Each runbook's options name their variable.

const ON = new Set(['1', 'yes', 'true', 'on', 'y'])
const OFF = new Set(['0', 'no', 'false', 'off', 'n'])

/** A `make` target that runs a runbook with a fixed flag (make restore-drill: restore --drill). */
export const TARGET_ALIASES: Record<string, { runbook: string; argv: string[] }> = {
  'restore-drill': { runbook: 'restore', argv: ['--drill'] },
}

/** The runbook's argv from the variables: VAR=value for options with a value, VAR=1 (or 0) for flags. */
export function argvFromVars(options: OptionSpec[], vars: Record<string, string | undefined>): string[] {
  const argv: string[] = []
  const problems: string[] = []
  for (const spec of [...COMMON_OPTIONS, ...options]) {
    if (!spec.makeVar) continue
    const name = spec.makeVar.split('=')[0] ?? ''
    const raw = vars[name]
    if (raw === undefined || raw === '') continue
    if (spec.value) argv.push(`--${spec.name}=${raw}`)
    else if (ON.has(raw.toLowerCase())) argv.push(`--${spec.name}`)
    else if (!OFF.has(raw.toLowerCase()))
      problems.push(
        `${name}=${JSON.stringify(raw)}: expected ${name}=1 to ${spec.help} (or ${name}=0, or leave it out)`,
      )
  }
  if (problems.length) throw new InputError('Bad make variables:', problems)
  return argv
}

/** `VAR=value` words (as on make's command line) over the environment; anything else is an error. */
export function varsFromWords(words: string[], environment: Record<string, string | undefined>) {
  const vars: Record<string, string | undefined> = { ...environment }
  const problems: string[] = []
  for (const word of words) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/s.exec(word)
    if (m) vars[m[1] ?? ''] = m[2]
    else problems.push(`"${word}" is not VAR=value (as with make: ENV=staging RELEASE=<sha>)`)
  }
  if (problems.length) throw new InputError('Bad arguments:', problems)
  return vars
}

import { InputError } from '../report/errors.ts'

export interface OptionSpec {
  name: string
  /** `make` variable that sets it, for messages (e.g. RELEASE). */
  makeVar?: string
  value?: boolean
  help: string
}

export const COMMON_OPTIONS: OptionSpec[] = [
  { name: 'env', makeVar: 'ENV', value: true, help: 'environment: the name of a file in env/' },
  { name: 'dry-run', makeVar: 'DRY_RUN=1', help: "print each step's commands, change nothing" },
  { name: 'yes', makeVar: 'YES=1', help: 'do not ask for confirmation (CI, scripted runs)' },
]

/** HOST=<name>: run on one host of the env only (setup-server, verify-server). */
export const HOST_OPTION: OptionSpec = {
  name: 'host',
  makeVar: 'HOST',
  value: true,
  help: 'only this host (a name from the env file)',
}

export type ParsedArgs = Record<string, string | boolean>

/** Parses `--name value`, `--name=value` and boolean `--flag`; unknown flags are an error. */
export function parseArgs(argv: string[], specs: OptionSpec[]): ParsedArgs {
  const all = [...COMMON_OPTIONS, ...specs]
  const out: ParsedArgs = {}
  const problems: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ''
    const match = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(arg)
    const spec = match && all.find((s) => s.name === match[1])
    if (!match || !spec) {
      problems.push(`unknown argument "${arg}"`)
      continue
    }
    if (!spec.value) {
      if (match[2] !== undefined) problems.push(`--${spec.name} takes no value`)
      out[spec.name] = true
      continue
    }
    const value = match[2] ?? (argv[i + 1]?.startsWith('--') ? undefined : argv[++i])
    if (value === undefined || value === '' || value.startsWith('--'))
      problems.push(`--${spec.name} needs a value`)
    else out[spec.name] = value
  }
  if (problems.length) {
    const usage = all.map(
      (s) => `--${s.name}${s.value ? ' <value>' : ''}${s.makeVar ? ` (make: ${s.makeVar})` : ''}: ${s.help}`,
    )
    throw new InputError('Bad arguments:', [...problems, ...usage.map((u) => `usage: ${u}`)])
  }
  return out
}

export function stringArg(args: ParsedArgs, name: string): string | undefined {
  const value = args[name]
  return typeof value === 'string' ? value : undefined
}

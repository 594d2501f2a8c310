import type { Env } from '../env/load.ts'
import type { Need } from '../env/needs.ts'
import type { Secrets } from '../env/secrets.ts'
import type { HostSession } from '../host/session.ts'
import type { OptionSpec, ParsedArgs } from './cli.ts'

// The runner's words: a runbook is a list of steps; each step runs with the run's context.

export type StepStatus = 'ok' | 'changed' | 'skipped' | 'failed' | 'not run' | 'dry-run'

/** What every run has, whether or not it has an env (make gates runs on this machine only). */
export interface RunContext {
  args: ParsedArgs
  dryRun: boolean
  /** The release this run is about, for the audit record (deploy/rollback set it). */
  release: string | null
  /** Registers work that must happen however the run ends (release a lock): run in reverse order. */
  onCleanup(fn: () => Promise<void>): void
  /** Something this run did that its audit record must show (a swarm join token used): never a secret. */
  auditEvent(event: string): void
  /** The step that failed and why (for cleanups that report, like notifications); null while all is well. */
  failure(): { step: string; message: string } | null
}

/** A run on an env: its file, its secrets, one SSH session per host. */
export interface Context extends RunContext {
  env: Env
  secrets: Secrets
  hosts: HostSession[]
  /** Hosts that did not answer, with why (only a runbook with `unreachableOk` goes on without them). */
  unreachable?: { host: string; reason: string }[]
}

export interface Step<C extends RunContext = Context> {
  title: string
  /** What the on-call should do if this step fails (a function when it depends on the env: swarm or not). */
  next?: string | ((ctx: C) => string)
  /** Why this step does not apply to this run (a drill, a swarm env...), or false: it runs. Printed, recorded as skipped. */
  skip?: (ctx: C) => string | false
  /** A failure is reported and the run goes on to the next step (it still fails in the end): every gate runs. */
  keepGoing?: boolean
  run(ctx: C): Promise<StepStatus | undefined>
}

export interface RunbookSpec {
  name: string
  /** Changes hosts: production asks a person to confirm. */
  mutates: boolean
  /** Needs no host (listing backups while the droplet is gone): no SSH connection is made. */
  offline?: boolean
  /**
   * Root's work (setup-server): as ssh.admin with sudo on a set-up host (ssh.user with sudo on an env
   * without one), as ssh.bootstrap_user on a fresh droplet.
   */
  bootstrap?: boolean
  /** Root's work on a set-up host only (make access): as ssh.admin with sudo, never as root. */
  admin?: boolean
  /** Read-only: log in as the env's checker account (ssh.checker) when it has one. */
  checker?: boolean
  /**
   * Read-only, and worth running with a host gone (make uptime: a dead droplet is what it reports): a
   * host that does not answer at all is named in ctx.unreachable and the run goes on with the others.
   * A refused login or a changed host key still stops the run.
   */
  unreachableOk?: boolean
  options?: OptionSpec[]
  /** Checks the arguments before the env is loaded or any host contacted (an InputError: exit 2). */
  validate?(args: ParsedArgs): void
  /** What it uses, for the secrets it loads (and only those): lib/env/needs.ts. */
  needs(env: Env, args: ParsedArgs): Need[]
  steps: Step[]
}

/** A runbook that runs on this machine only (make gates): no env file, no secrets, no host. */
export interface LocalRunbookSpec {
  name: string
  local: true
  options?: OptionSpec[]
  /** Checks the arguments before any step (an InputError here is bad input, exit 2); says what the run is on. */
  check?(args: ParsedArgs): string
  steps: Step<RunContext>[]
}

export interface StepRecord {
  title: string
  status: StepStatus
  ms: number
}

export function nextOf<C extends RunContext>(step: Step<C>, ctx: C): string | undefined {
  return typeof step.next === 'function' ? step.next(ctx) : step.next
}

/** A step's status from whether its work changed anything. */
export function changedIf(changed: boolean): StepStatus {
  return changed ? 'changed' : 'ok'
}

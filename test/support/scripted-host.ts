import type { Host } from '../../lib/env/load.ts'
import { type ExecOptions, HostSession } from '../../lib/host/session.ts'

/** What a scripted host answers to a command: the first rule whose pattern matches wins. */
export type Rule = [pattern: RegExp | string, answer: { code?: number; stdout?: string; stderr?: string }]

/**
 * A HostSession whose transport is a script instead of SSH: exec() itself (dry runs, allowFail,
 * CommandError, the recorded `commands`) is the real one. For unit tests of what a step decides and
 * runs; what a host really does is proved on sandbox droplets.
 */
export class ScriptedHost extends HostSession {
  /** What each command got on its stdin (uploads: the file's content), in the order of `commands`. */
  readonly inputs: string[] = []

  constructor(
    name: string,
    private readonly rules: Rule[],
    opts: { dryRun?: boolean; roles?: string[] } = {},
  ) {
    const host: Host = {
      name,
      address: '127.0.0.1',
      sshPort: 22,
      hostKey: 'SHA256:test',
      roles: opts.roles ?? ['web', 'data'],
    }
    super(host, { user: 'deploy', connectTimeoutS: 5, commandTimeoutS: 5, dryRun: opts.dryRun ?? false })
  }

  override async connect(): Promise<void> {}

  protected override async run(_wrapped: string, _timeoutS: number, opts: ExecOptions) {
    const command = this.commands.at(-1) ?? ''
    this.inputs.push(
      typeof opts.stdin === 'string' || Buffer.isBuffer(opts.stdin) ? opts.stdin.toString() : '',
    )
    const rule = this.rules.find(([p]) => (typeof p === 'string' ? command.includes(p) : p.test(command)))
    const answer = rule?.[1] ?? {}
    return { code: answer.code ?? 0, stdout: answer.stdout ?? '', stderr: answer.stderr ?? '' }
  }
}

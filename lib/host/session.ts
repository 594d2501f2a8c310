import { randomBytes } from 'node:crypto'
import { appendFileSync } from 'node:fs'
import { NodeSSH } from 'node-ssh'
import type { ClientChannel } from 'ssh2'
import { writeFileFromStdin } from '../commands/files.ts'
import { cancelMarked, TIMED_OUT_STATUS, withTimeout } from '../commands/shell.ts'
import { sshFingerprint } from '../env/fingerprint.ts'
import type { Host } from '../env/load.ts'
import { CommandError, LoginRefusedError, PreconditionError, UnreachableError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import { redact } from '../report/redact.ts'

export interface ConnectOptions {
  user: string
  privateKey?: string
  agent?: string
  connectTimeoutS: number
  commandTimeoutS: number
  dryRun?: boolean
  /** Print remote output live, prefixed by the host name. */
  echo?: boolean
  /** Run every command through `sudo -n` (a non-root login doing root's work). */
  sudo?: boolean
  /** The checker account's login: reads that need root go through this helper (lib/commands/checker.ts). */
  readHelper?: string
}

export interface ExecOptions {
  /** A probe only reads: it runs even in --dry-run. Everything else is printed, not run, in --dry-run. */
  probe?: boolean
  timeoutS?: number
  /** Bytes for the command's stdin; a stream is piped (image transfers). */
  stdin?: string | Buffer | NodeJS.ReadableStream
  /** Return a non-zero exit instead of throwing. */
  allowFail?: boolean
  /** Receives stdout as raw chunks instead of collecting it (streams: dumps, image transfers). */
  onStdout?: (chunk: Buffer) => void
  /**
   * Pipes stdout into this stream with backpressure (dumps). It is ended only when the command exits
   * 0, and destroyed otherwise, so a failed dump never looks like a complete one. If it fails first,
   * the command is stopped.
   */
  stdoutTo?: NodeJS.WritableStream & { destroy(error?: Error): unknown; destroyed?: boolean }
  /** Print output live (default: the session's echo setting). */
  echo?: boolean
  /** What the on-call should do if this command fails. */
  next?: string
  /** Stops the command (closes its channel) when aborted: a stdin producer that failed. */
  signal?: AbortSignal
  /** Run as the login user even on a sudo session (to read the login's own environment). */
  noSudo?: boolean
}

export interface ExecResult {
  code: number
  stdout: string
  stderr: string
  durationMs: number
  dryRun: boolean
}

const KEEP_BYTES = 8 * 1024 * 1024
const TAIL_LINES = 20

/** One SSH connection to one host for the whole run, with the host key pinned. */
export class HostSession {
  private ssh = new NodeSSH()
  private lost: Error | undefined
  private running = new Set<(err: Error) => void>()
  readonly commands: string[] = []
  /** The last word of every command this session starts: what cancelRunning stops on the host. */
  readonly marker = `ce-run-${randomBytes(6).toString('hex')}`

  constructor(
    readonly host: Host,
    readonly options: ConnectOptions,
  ) {}

  get name(): string {
    return this.host.name
  }

  async connect(): Promise<void> {
    const { host, options } = this
    let presented: string | undefined
    try {
      await this.ssh.connect({
        host: host.address,
        port: host.sshPort,
        username: options.user,
        privateKey: options.privateKey,
        agent: options.agent,
        readyTimeout: options.connectTimeoutS * 1000,
        // A silently dead connection (host gone, packets dropped) is noticed in ~15 s, not at the command timeout.
        keepaliveInterval: 5000,
        keepaliveCountMax: 3,
        algorithms: { serverHostKey: ['ssh-ed25519'] },
        hostVerifier: (key: Buffer) => {
          presented = sshFingerprint(key)
          return presented === host.hostKey
        },
      })
    } catch (err) {
      throw this.connectError(err as Error & { code?: string; level?: string }, presented)
    }
    const connection = this.ssh.connection
    // ssh2 emits 'error' after connect (ECONNRESET): unhandled, it would crash the process.
    connection?.on('error', (err: Error) => this.fail(err))
    connection?.on('close', () => this.fail(new Error('the SSH connection closed')))
  }

  private connectError(err: Error & { code?: string; level?: string }, presented?: string): Error {
    const where = `${this.host.name} (${this.options.user}@${this.host.address}:${this.host.sshPort})`
    if (presented && presented !== this.host.hostKey) {
      return new PreconditionError(
        `Host key of ${where} does not match the pinned one.\n  expected:  ${this.host.hostKey}\n  presented: ${presented}`,
        'If the droplet was rebuilt, check the new key out-of-band (DigitalOcean console: ' +
          '`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) and update host_key in the env file. ' +
          'If nobody rebuilt it, stop: the connection may be intercepted.',
      )
    }
    if (err.level === 'client-authentication') {
      return new LoginRefusedError(
        `SSH login as ${this.options.user} refused by ${where}: ${err.message}`,
        'Check the key in ssh.key of the env file and that this user exists on the host.',
      )
    }
    return new UnreachableError(
      `Cannot reach ${where}: ${err.code ?? ''} ${err.message}`.replace(/\s+/g, ' '),
      'Check the address and port in the env file, that the droplet is running, and the firewall.',
    )
  }

  /** The connection dropped during the run (and was not reconnected since). */
  get connectionLost(): boolean {
    return this.lost !== undefined
  }

  /**
   * A new connection after a lost one, for the cleanups (release the lock, stop what was started,
   * record the run): a few tries, with the same pinned host key. False when the host stays unreachable.
   */
  async reconnect(tries = 3, pauseMs = 2000): Promise<boolean> {
    if (!this.lost) return true
    for (let i = 0; i < tries; i++) {
      const old = this.ssh.connection
      old?.removeAllListeners('close')
      old?.removeAllListeners('error')
      old?.on('error', () => {})
      this.ssh.dispose()
      this.ssh = new NodeSSH()
      try {
        await this.connect()
        this.lost = undefined
        return true
      } catch {
        if (i < tries - 1) await new Promise((r) => setTimeout(r, pauseMs * (i + 1)))
      }
    }
    return false
  }

  /**
   * Logs in again as another user, on the same pinned host key (setup-server moving from the deploy
   * login to the administrator's before it narrows the deploy user's sudo). Every holder of this
   * session keeps it; the old connection closes only once the new one is in.
   */
  async relogin(user: string, privateKey: string | undefined): Promise<void> {
    const before = { ssh: this.ssh, user: this.options.user, privateKey: this.options.privateKey }
    this.ssh = new NodeSSH()
    Object.assign(this.options, { user, privateKey })
    try {
      await this.connect()
    } catch (err) {
      this.ssh.dispose()
      this.ssh = before.ssh
      Object.assign(this.options, { user: before.user, privateKey: before.privateKey })
      throw err
    }
    const old = before.ssh.connection
    old?.removeAllListeners('close')
    old?.removeAllListeners('error')
    old?.on('error', () => {})
    before.ssh.dispose()
  }

  private fail(err: Error): void {
    this.lost ??= err
    for (const reject of this.running) reject(err)
  }

  /** Runs a command on the host; throws CommandError on non-zero exit, timeout or a lost connection. */
  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const timeoutS = opts.timeoutS ?? this.options.commandTimeoutS
    this.commands.push(command)
    if (this.options.dryRun && !opts.probe) {
      print(`  [${this.name}] would run: ${command}`)
      return { code: 0, stdout: '', stderr: '', durationMs: 0, dryRun: true }
    }
    const started = Date.now()
    const result = await this.run(this.wrap(command, timeoutS, !opts.noSudo, this.marker), timeoutS, opts)
    const durationMs = Date.now() - started
    // CE_TRACE=<file>: each command's duration, for finding where a runbook's seconds go (redacted).
    if (process.env.CE_TRACE)
      appendFileSync(
        process.env.CE_TRACE,
        redact(
          `${new Date(started).toISOString()} ${durationMs}ms ${this.name} ${command.replace(/\s+/g, ' ').slice(0, 160)}\n`,
        ),
      )
    if (opts.stdoutTo && !opts.stdoutTo.destroyed) {
      if (result.code === 0) opts.stdoutTo.end()
      else
        opts.stdoutTo.destroy(
          new Error(`${command.split('\n')[0]} ended with status ${result.code} on ${this.name}`),
        )
    }
    if (
      typeof result.code === 'number' &&
      (result.code === 0 || opts.allowFail) &&
      result.code !== TIMED_OUT_STATUS
    ) {
      return { code: result.code, stdout: result.stdout, stderr: result.stderr, durationMs, dryRun: false }
    }
    const status = result.code === TIMED_OUT_STATUS ? `timed out after ${timeoutS}s` : result.code
    throw commandFailure(this.name, command, status, result, opts.next)
  }

  /** The line the host runs: its own timeout, the run's marker if given, sudo on a sudo session. */
  private wrap(command: string, timeoutS: number, sudo: boolean, marker?: string): string {
    const wrapped = withTimeout(command, timeoutS, marker)
    return this.options.sudo && sudo ? `sudo -n ${wrapped}` : wrapped
  }

  // protected: test/support/scripted-host.ts replaces the transport (and only that) in unit tests.
  protected run(
    wrapped: string,
    timeoutS: number,
    opts: ExecOptions,
  ): Promise<{ code: number | string; stdout: string; stderr: string }> {
    const connection = this.ssh.connection
    if (this.lost || !connection)
      return Promise.resolve({ code: 'connection lost', stdout: '', stderr: this.lost?.message ?? '' })
    const echo = opts.echo ?? this.options.echo ?? false
    return new Promise((resolve) => {
      const out = new Collector(echo ? `[${this.name}] ` : undefined)
      const err = new Collector(echo ? `[${this.name}] ` : undefined)
      let code: number | string = 'no exit status'
      let channel: ClientChannel | undefined
      const finish = (final?: number | string) => {
        clearTimeout(backstop)
        this.running.delete(onLost)
        out.flush()
        err.flush()
        resolve({ code: final ?? code, stdout: out.text(), stderr: err.text() })
      }
      const onLost = (e: Error) => {
        channel?.close()
        finish(`connection lost (${e.message})`)
      }
      // Our own clock, in case the host's `timeout` cannot act (host frozen, network gone).
      const backstop = setTimeout(
        () => {
          channel?.close()
          finish(`timed out after ${timeoutS}s (no answer from the host)`)
        },
        (timeoutS + 15) * 1000,
      )
      this.running.add(onLost)
      connection.exec(wrapped, (error, stream) => {
        if (error) return finish(`could not start (${error.message})`)
        channel = stream
        opts.signal?.addEventListener('abort', () => stream.close(), { once: true })
        stream.on('exit', (c: number | null, signal?: string) => {
          code = c ?? `killed by ${signal ?? 'a signal'}`
        })
        stream.on('close', () => finish())
        if (opts.stdoutTo) {
          const dest = opts.stdoutTo
          stream.pipe(dest, { end: false })
          // The consumer failed (upload refused, disk full): stop the command instead of blocking it.
          dest.once('error', () => stream.close())
          dest.once('close', () => stream.close())
        } else stream.on('data', (chunk: Buffer) => (opts.onStdout ? opts.onStdout(chunk) : out.add(chunk)))
        stream.stderr.on('data', (chunk: Buffer) => err.add(chunk))
        if (opts.stdin === undefined) stream.end()
        else if (typeof opts.stdin === 'string' || Buffer.isBuffer(opts.stdin)) stream.end(opts.stdin)
        else opts.stdin.pipe(stream)
      })
    })
  }

  /**
   * Stops this session's commands still running on the host (TERM to their process groups), then
   * waits up to `waitS` for them to end: a Ctrl-C must not leave `compose up` going beside the
   * cleanup's `compose stop`. A command sent a moment before the signal may not have started on the
   * host yet (sshd, sudo still starting it on a loaded host): the stop is sent again, each second,
   * until every command that was running has ended. Commands started after this call (the cleanups)
   * are not waited for. Best effort: a lost connection has nothing left to stop through.
   */
  async cancelRunning(waitS = 10): Promise<void> {
    if (this.running.size === 0 || this.lost || this.options.dryRun) return
    const stopping = [...this.running]
    const ended = () => stopping.every((c) => !this.running.has(c))
    const deadline = Date.now() + waitS * 1000
    while (!ended() && !this.lost && Date.now() < deadline) {
      // Without the marker itself: pkill must not match the line that runs it.
      await this.run(this.wrap(cancelMarked(this.marker), 15, true), 15, { echo: false })
      const next = Math.min(Date.now() + 1000, deadline)
      while (!ended() && Date.now() < next) await new Promise((r) => setTimeout(r, 100))
    }
  }

  /** Writes content to a file on the host atomically, with an explicit mode; dotfiles are just files. */
  async upload(remotePath: string, content: string | Buffer, mode: string, owner?: string): Promise<void> {
    await this.exec(writeFileFromStdin(remotePath, mode, owner), { stdin: content })
  }

  close(): void {
    this.running.clear()
    this.ssh.connection?.removeAllListeners('close')
    this.ssh.dispose()
  }
}

/** Collects a stream (bounded), and echoes complete lines live with a prefix when asked. */
class Collector {
  private chunks: Buffer[] = []
  private size = 0
  private partial = ''

  constructor(private prefix?: string) {}

  add(chunk: Buffer): void {
    if (this.size < KEEP_BYTES) {
      this.chunks.push(chunk)
      this.size += chunk.length
    }
    if (this.prefix === undefined) return
    const lines = (this.partial + chunk.toString('utf8')).split('\n')
    this.partial = lines.pop() ?? ''
    for (const line of lines) print(`  ${this.prefix}${line}`)
  }

  flush(): void {
    if (this.prefix !== undefined && this.partial) print(`  ${this.prefix}${this.partial}`)
    this.partial = ''
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8')
  }
}

/**
 * The error exec throws for a failed command (its output's tail, redacted): also for a caller that ran
 * it with allowFail to look at the status first.
 */
export function commandFailure(
  host: string,
  command: string,
  status: number | string,
  output: { stdout: string; stderr: string },
  next?: string,
): CommandError {
  return new CommandError(
    `Command ${typeof status === 'number' ? `exited with status ${status}` : status} on ${host}`,
    host,
    command,
    status,
    tail(output.stderr || output.stdout),
    next,
  )
}

export function tail(text: string, lines = TAIL_LINES): string {
  return redact(text.trimEnd().split('\n').slice(-lines).join('\n'))
}

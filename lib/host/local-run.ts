import { spawn } from 'node:child_process'
import type { Readable } from 'node:stream'
import { $ } from 'zx'

// Every process this machine runs for a runbook (git, docker, cargo, openssl, ssh-keygen) goes through
// zx's $ here: arguments are quoted by construction, never pasted into a shell string. The bundled
// host watchdog is one exception (it carries no dependencies onto the host), binary streams the other.

export interface LocalRun {
  code: number
  stdout: string
  stderr: string
}

export interface LocalRunOptions {
  cwd?: string
  env?: Record<string, string>
  /** Written to its stdin (otherwise stdin is closed). */
  input?: string
  /** Ends it with SIGTERM after this long (default 30 minutes). */
  timeoutS?: number
}

const options = (opts: LocalRunOptions) => ({
  quiet: true,
  nothrow: true,
  ...(opts.cwd ? { cwd: opts.cwd } : {}),
  env: { ...process.env, ...opts.env },
})

/** Runs a program and collects its output: the exit code is returned, not thrown (127: not found). */
export async function runLocal(argv: string[], opts: LocalRunOptions = {}): Promise<LocalRun> {
  const [cmd = '', ...args] = argv
  const child = $({
    ...options(opts),
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    timeout: `${opts.timeoutS ?? 1800}s`,
  })`${cmd} ${args}`
  if (opts.input !== undefined) {
    // A program may exit before it reads its input: EPIPE then is no failure, its exit code says.
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input)
  }
  const out = await child
  return { code: out.exitCode ?? 1, stdout: out.stdout, stderr: out.stderr }
}

/** The same, for the few callers that cannot wait (who am I, which branch, is this image here). */
export function runLocalSync(argv: string[], opts: Omit<LocalRunOptions, 'input'> = {}): LocalRun {
  const [cmd = '', ...args] = argv
  const out = $.sync({ ...options(opts), stdio: ['ignore', 'pipe', 'pipe'] })`${cmd} ${args}`
  return { code: out.exitCode ?? 1, stdout: out.stdout, stderr: out.stderr }
}

/**
 * A program whose stdout is streamed elsewhere as raw bytes (docker save into an SSH channel). Not
 * through zx: its $ collects stdout as text, and a tar decoded as UTF-8 reaches `docker load` corrupt.
 */
export function streamLocal(argv: string[]): { stdout: Readable; done: Promise<LocalRun> } {
  const [cmd = '', ...args] = argv
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString()
  })
  const done = new Promise<LocalRun>((resolve) => {
    child.on('error', (e) => resolve({ code: 127, stdout: '', stderr: `${stderr}${e.message}` }))
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: '', stderr }))
  })
  return { stdout: child.stdout, done }
}

import { spawn } from 'node:child_process'

export interface LocalRun {
  code: number
  stdout: string
  stderr: string
}

/**
 * Runs a program on this machine (no shell) and collects its output: the exit code is returned, not
 * thrown. `input` is written to its stdin (otherwise stdin is closed); `timeoutS` ends it with SIGTERM.
 */
export function runLocal(
  argv: string[],
  opts: { cwd?: string; env?: Record<string, string>; input?: string; timeoutS?: number } = {},
): Promise<LocalRun> {
  return new Promise((resolve) => {
    const [cmd = '', ...args] = argv
    const child = spawn(cmd, args, {
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      env: { ...process.env, ...opts.env },
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => child.kill('SIGTERM'), (opts.timeoutS ?? 1800) * 1000)
    child.stdout?.on('data', (b: Buffer) => {
      stdout += b.toString()
    })
    child.stderr?.on('data', (b: Buffer) => {
      stderr += b.toString()
    })
    child.on('error', (e) => {
      clearTimeout(timer)
      resolve({ code: 127, stdout, stderr: `${stderr}${e.message}` })
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code: code ?? 1, stdout, stderr })
    })
    if (opts.input !== undefined) child.stdin?.end(opts.input)
  })
}

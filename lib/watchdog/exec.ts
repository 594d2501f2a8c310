import { execFile } from 'node:child_process'

// The one way the watchdog runs a tool (docker, systemctl): no shell, no TTY, a timeout, never throws.
export interface ToolResult {
  code: number
  stdout: string
  stderr: string
}

export type Exec = (file: string, args: string[], timeoutMs?: number) => Promise<ToolResult>

export const execTool: Exec = (file, args, timeoutMs = 20_000) =>
  new Promise((resolve) => {
    execFile(
      file,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr })
        const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean }
        const code = typeof e.code === 'number' ? e.code : e.code === 'ENOENT' ? 127 : 1
        const why = e.killed
          ? `timed out after ${timeoutMs / 1000} s`
          : e.code === 'ENOENT'
            ? `${file}: not found`
            : ''
        resolve({ code, stdout, stderr: why ? `${why}\n${stderr}` : stderr })
      },
    )
  })

/** `12:03:04 UTC` of an ISO time (Docker's nanoseconds are fine). */
export function shortTime(iso: string): string {
  const ms = Date.parse(iso)
  return Number.isNaN(ms) ? iso : `${new Date(ms).toISOString().slice(11, 19)} UTC`
}

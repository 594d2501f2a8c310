import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * A stand-in for the docker CLI, for unit tests that run a host script (a pure command builder's
 * output) with bash: `program` is the body of the `docker` put first on PATH. The returned function
 * runs a script under bash: its stdout when it exits 0, stdout then stderr when it does not.
 */
export function withFakeDocker(program: string): (bash: string) => { code: number; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ce-fake-docker-'))
  writeFileSync(join(dir, 'docker'), program, { mode: 0o755 })
  return (bash) => {
    try {
      const out = execFileSync('bash', ['-c', bash], {
        env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      return { code: 0, out }
    } catch (e) {
      const err = e as { status: number; stderr: string; stdout: string }
      return { code: err.status, out: `${err.stdout}${err.stderr}` }
    }
  }
}

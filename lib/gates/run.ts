/**
 * Running the gates: every one runs (a failure does not hide the next), each timed, its output kept
 * for the report and shown folded (a group per gate under GitHub Actions).
 */
import { randomBytes } from 'node:crypto'
import { type LocalRun, runLocal } from '../host/local-run.ts'
import { print } from '../report/output.ts'
import { inActions } from '../run/github-actions.ts'

export interface GateResult {
  gate: string
  status: 'passed' | 'failed' | 'skipped'
  seconds: number
  /** What failed, by name (files, tests, diagnostics), or why it was skipped. */
  details: string[]
}

/** Shows a gate's output: all of it in Actions (folded in its step's group), else its last lines when it failed. */
export function showOutput(_gate: string, ran: LocalRun, failed: boolean): void {
  const text = `${ran.stdout}${ran.stderr}`.trimEnd()
  // Under Actions the gate's step is already a folded group (the runner opens one per step).
  if (inActions()) {
    if (text) print(text)
    return
  }
  if (!failed || !text) return
  const lines = text.split('\n')
  const tail = lines.slice(-25)
  if (lines.length > tail.length) print(`      … ${lines.length - tail.length} earlier line(s)`)
  for (const l of tail) print(`      │ ${l}`)
}

/** A throwaway Postgres (a container on this machine's Docker) for the migrations gate. */
export async function scratchPostgres(image: string): Promise<{ url: string; stop(): Promise<void> }> {
  const password = randomBytes(12).toString('hex')
  const name = `ce-gates-pg-${process.pid}-${randomBytes(3).toString('hex')}`
  const started = await runLocal([
    'docker',
    'run',
    '-d',
    '--rm',
    '--name',
    name,
    '--label',
    'conciliaextrato.gates=1',
    '-e',
    'POSTGRES_USER=gates',
    '-e',
    `POSTGRES_PASSWORD=${password}`,
    '-e',
    'POSTGRES_DB=gates',
    image,
  ])
  if (started.code !== 0) {
    const lines = started.stderr.trim().split('\n')
    const why = lines.find((l) => /error/i.test(l)) ?? lines[0] ?? `exit ${started.code}`
    throw new Error(`could not start a scratch Postgres from ${image}: ${why.trim()}`)
  }
  const stop = async () => {
    await runLocal(['docker', 'rm', '-f', name])
  }
  try {
    const deadline = Date.now() + 90_000
    for (;;) {
      const ready = await runLocal([
        'docker',
        'exec',
        name,
        'psql',
        '-U',
        'gates',
        '-d',
        'gates',
        '-XAtqc',
        'select 1',
      ])
      if (ready.code === 0 && ready.stdout.trim() === '1') break
      if (Date.now() > deadline) throw new Error(`the scratch Postgres (${image}) was not ready within 90 s`)
      await new Promise((r) => setTimeout(r, 500))
    }
    const ip = (
      await runLocal([
        'docker',
        'inspect',
        '-f',
        '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}',
        name,
      ])
    ).stdout.trim()
    return { url: `postgres://gates:${password}@${ip}:5432/gates`, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

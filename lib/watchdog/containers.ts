import type { CheckResult } from '../notify/alerts.ts'
import {
  budgetNote,
  mayRestart,
  type RestartLog,
  type RestartRules,
  recentRestarts,
  recordRestart,
} from './budget.ts'
import { type Exec, shortTime } from './exec.ts'

// The containers of the data project and of the live colour: running and not unhealthy, or restarted
// within the restart budget. Parsing and verdicts are pure; `watchContainers` drives the docker CLI.

export interface ContainerInfo {
  id: string
  project: string
  service: string
  number: string
  oneoff: boolean
  status: string
  exitCode: number
  /** healthy, unhealthy, starting; null when the image has no HEALTHCHECK. */
  health: string | null
  healthOutput: string
  finishedAt: string | null
}

interface Inspected {
  Id?: string
  State?: {
    Status?: string
    ExitCode?: number
    FinishedAt?: string
    Health?: { Status?: string; Log?: { Output?: string }[] }
  }
  Config?: { Labels?: Record<string, string> | null }
}

/** `docker inspect` JSON (an array) into what the verdicts need. */
export function parseInspect(json: string): ContainerInfo[] {
  const list = JSON.parse(json || '[]') as Inspected[]
  return list.map((c) => {
    const labels = c.Config?.Labels ?? {}
    const state = c.State ?? {}
    const finished = state.FinishedAt && !state.FinishedAt.startsWith('0001-') ? state.FinishedAt : null
    return {
      id: c.Id ?? '',
      project: labels['com.docker.compose.project'] ?? '',
      service: labels['com.docker.compose.service'] ?? '',
      number: labels['com.docker.compose.container-number'] ?? '1',
      oneoff: (labels['com.docker.compose.oneoff'] ?? '').toLowerCase() === 'true',
      status: state.Status ?? 'unknown',
      exitCode: state.ExitCode ?? 0,
      health: state.Health?.Status ?? null,
      healthOutput: (state.Health?.Log?.at(-1)?.Output ?? '').trim().replace(/\s+/g, ' ').slice(0, 120),
      finishedAt: finished,
    }
  })
}

export function containerCheckName(c: Pick<ContainerInfo, 'project' | 'service' | 'number'>): string {
  return `container:${c.project}/${c.service}${c.number === '1' ? '' : `-${c.number}`}`
}

export interface Verdict {
  ok: boolean
  /** What would bring it back: `start` a stopped one, `restart` an unhealthy one. */
  action: 'none' | 'start' | 'restart'
  detail: string
}

export function containerVerdict(c: ContainerInfo): Verdict {
  if (c.status === 'running' && c.health !== 'unhealthy')
    return { ok: true, action: 'none', detail: c.health ? `running, ${c.health}` : 'running' }
  if (c.status === 'running')
    return {
      ok: false,
      action: 'restart',
      detail: `unhealthy${c.healthOutput ? ` (last check: ${c.healthOutput})` : ''}`,
    }
  if (['exited', 'created', 'dead'].includes(c.status)) {
    const when = c.finishedAt ? ` at ${shortTime(c.finishedAt)}` : ''
    return { ok: false, action: 'start', detail: `${c.status} (${c.exitCode})${when}` }
  }
  // restarting: Docker's restart policy is already at it; paused: a person did that on purpose.
  return { ok: false, action: 'none', detail: c.status }
}

/** Data services' containers point at the restore page, the app's at rollback (as `make health` does). */
export function containerRunbook(service: string): string {
  return ['postgres', 'redis'].includes(service) ? 'docs/runbooks/restore.md' : 'docs/runbooks/rollback.md'
}

export interface ContainerWatch {
  results: CheckResult[]
  containers: ContainerInfo[]
  restartLog: RestartLog
  /** False when Docker did not answer: the containers' state is unknown, not fine. */
  complete: boolean
}

export interface WatchOptions {
  now: Date
  rules: RestartRules
  /** How long a restarted container may take to be running and not unhealthy before the run goes on. */
  settleS?: number
  sleep?: (ms: number) => Promise<void>
}

/** Lists, judges and (within the budget) restarts every container of `projects`. */
export async function watchContainers(
  exec: Exec,
  projects: string[],
  log: RestartLog,
  opts: WatchOptions,
): Promise<ContainerWatch> {
  const listed = await listContainers(exec, projects)
  const docker = { check: 'docker', ok: !('error' in listed), runbook: 'docs/runbooks/health.md' }
  if ('error' in listed)
    return {
      results: [{ ...docker, detail: listed.error }],
      containers: [],
      restartLog: log,
      complete: false,
    }
  let restartLog = log
  const results: CheckResult[] = [{ ...docker, detail: 'answers' }]
  const restarted: { index: number; id: string; note: string }[] = []
  for (const c of listed.containers) {
    const check = containerCheckName(c)
    const v = containerVerdict(c)
    const result: CheckResult = { check, ok: v.ok, detail: v.detail, runbook: containerRunbook(c.service) }
    results.push(result)
    if (v.action === 'none') continue
    result.threshold = 1 // acted on (or gave up): tell now, the next run may find it well again
    if (!mayRestart(restartLog, check, opts.now, opts.rules)) {
      const used = recentRestarts(restartLog, check, opts.now, opts.rules).length
      result.detail += `; ${budgetNote(used, opts.rules, false)}`
      continue
    }
    restartLog = recordRestart(restartLog, check, opts.now, opts.rules)
    const out = await exec('docker', [v.action, c.id], 60_000)
    const note = budgetNote((restartLog[check] ?? []).length, opts.rules, true)
    if (out.code !== 0) result.detail += `; ${note} but docker ${v.action} failed: ${firstLine(out.stderr)}`
    else restarted.push({ index: results.length - 1, id: c.id, note })
  }
  await settle(exec, restarted, results, opts)
  return { results, containers: listed.containers, restartLog, complete: true }
}

async function listContainers(
  exec: Exec,
  projects: string[],
): Promise<{ containers: ContainerInfo[] } | { error: string }> {
  const ids: string[] = []
  for (const p of projects) {
    const ps = await exec('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${p}`])
    if (ps.code !== 0) return { error: `docker ps failed: ${firstLine(ps.stderr)}` }
    ids.push(...ps.stdout.split('\n').filter(Boolean))
  }
  if (ids.length === 0) return { containers: [] }
  const inspect = await exec('docker', ['inspect', ...ids])
  // A container removed between ps and inspect: inspect prints the others and exits 1.
  if (inspect.code !== 0 && !inspect.stdout.trim().startsWith('['))
    return { error: `docker inspect failed: ${firstLine(inspect.stderr)}` }
  const containers = parseInspect(inspect.stdout)
    .filter((c) => !c.oneoff)
    .sort((a, b) => containerCheckName(a).localeCompare(containerCheckName(b)))
  return { containers }
}

/** Waits (bounded) for restarted containers, and says in their result how they came back. */
async function settle(
  exec: Exec,
  restarted: { index: number; id: string; note: string }[],
  results: CheckResult[],
  opts: WatchOptions,
): Promise<void> {
  if (restarted.length === 0) return
  const limitS = opts.settleS ?? 20
  const sleep = opts.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)))
  const started = Date.now()
  let states: ContainerInfo[] = []
  for (;;) {
    const out = await exec('docker', ['inspect', ...restarted.map((r) => r.id)])
    states = out.stdout.trim().startsWith('[') ? parseInspect(out.stdout) : []
    const settled = states.length === restarted.length && states.every(isSettled)
    if (settled || Date.now() - started >= limitS * 1000) break
    await sleep(1000)
  }
  const s = Math.round((Date.now() - started) / 1000)
  for (const r of restarted) {
    const result = results[r.index] as CheckResult
    const now = states.find((c) => c.id === r.id)
    const back =
      now && isSettled(now)
        ? `${containerVerdict(now).detail} again after ${s} s`
        : `still ${now ? containerVerdict(now).detail : 'unknown'} ${s} s later`
    result.detail += `; ${r.note}, ${back}`
  }
}

const isSettled = (c: ContainerInfo) =>
  c.status === 'running' && (c.health === null || c.health === 'healthy')

const firstLine = (text: string) => text.trim().split('\n')[0]?.slice(0, 200) || 'no output'

/**
 * The host watchdog: one run, started by its systemd timer every watchdog.interval_s
 * (conciliaextrato-watchdog@<env>.timer). Checks the env's containers, nginx, Postgres, Redis, every
 * domain through nginx, disk and memory; restarts a stopped or unhealthy container within the restart
 * budget; appends every result to the history; sends alerts, reminders and recoveries to the env's
 * 'alert' webhooks. Runs on the host's own Node (18+), bundled into one file by setup-server.
 * Usage: node watchdog.mjs /etc/conciliaextrato/watchdog-<env>.json
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { WatchdogFile } from '../commands/watchdog.ts'
import { pingUrl } from '../env/heartbeat.ts'
import { ping } from '../heartbeat/ping.ts'
import { isEntryModule, writeJsonAtomic } from '../host/program-entry.ts'
import {
  type AlertState,
  emptyAlertState,
  evaluate,
  formatNotice,
  markUndelivered,
} from '../notify/alerts.ts'
import { notify, reportNotifyResults } from '../notify/send.ts'
import { print, printErr } from '../report/output.ts'
import { redact, registerSecret } from '../report/redact.ts'
import { liveRelease, parseReleases } from '../stack/releases.ts'
import { collectAppErrors } from './app-logs.ts'
import { pruneRestarts, type RestartLog } from './budget.ts'
import { runChecks, type TimedResult } from './checks.ts'
import { type ErrorState, emptyErrorState, evaluateErrors } from './error-signatures.ts'
import { type Exec, execTool } from './exec.ts'

export interface RunOptions {
  exec?: Exec
  now?: Date
  settleS?: number
}

export async function runWatchdog(cfg: WatchdogFile, options: RunOptions = {}): Promise<void> {
  for (const [name, url] of Object.entries(cfg.urls)) registerSecret(name, url)
  const now = options.now ?? new Date()
  const files = stateFiles(cfg)
  const restarts = pruneRestarts(readJson<RestartLog>(files.restarts, {}), now, cfg.watchdog)
  const { results, restartLog, complete, pausedBy } = await runChecks(cfg, restarts, {
    exec: options.exec ?? execTool,
    now,
    ...(options.settleS !== undefined ? { settleS: options.settleS } : {}),
  })
  writeJsonAtomic(files.restarts, restartLog, 2)
  appendHistory(cfg, results, now)

  const previous = readJson<AlertState>(files.alerts, emptyAlertState())
  // Docker not answering: the containers' checks are unknown this run, not recovered.
  let { state, notices } = evaluate(previous, results, now, cfg.alerts, { partial: !complete })
  const failing = results.filter((r) => !r.ok)
  if (pausedBy) print(`containers left alone this run: ${pausedBy}`)
  print(
    `watchdog ${cfg.env} on ${cfg.host}: ${results.length} checks, ${failing.length} failing${failing.length ? `: ${failing.map((r) => `${r.check} (${r.detail})`).join('; ')}` : ''}`,
  )
  for (const notice of notices) {
    const event = formatNotice(notice, cfg.env, `watchdog on ${cfg.host}`)
    print(`${notice.kind}: ${event.title}`)
    const sent = await notify(cfg.targets, cfg.urls, event)
    reportNotifyResults(sent)
    if (sent.length > 0 && sent.every((r) => !r.ok)) state = markUndelivered(state, notice)
  }
  writeJsonAtomic(files.alerts, state, 2)
  // The heartbeat says the checks ran and their alerts went out: pinged before the app's logs are read,
  // so a slow `docker logs` on a loaded host never makes the dead man's switch think the watchdog died.
  await heartbeat(cfg, 'success', `${results.length} checks, ${failing.length} failing`)
  // While a runbook holds the lock the logs wait: the next run reads from where this one would have.
  if (!pausedBy) await trackErrors(cfg, options.exec ?? execTool, now)
}

/** The longest log window one run reads (a watchdog stopped for a day does not read a day of logs). */
const MAX_ERROR_WINDOW_MS = 3_600_000

/**
 * Error tracking: the app's error lines since the last run, grouped by signature; a new signature, or
 * a jump of the live release's error rate, alerts the team (personal data scrubbed: error-signatures.ts).
 */
export async function trackErrors(cfg: WatchdogFile, exec: Exec, now: Date): Promise<void> {
  if (!cfg.errors) return
  const file = join(cfg.stateDir, 'errors.json')
  const previous = readJson<ErrorState>(file, emptyErrorState())
  const last = previous.lastRun ? Date.parse(previous.lastRun) : Number.NaN
  const since = new Date(
    Number.isFinite(last) && last < now.getTime()
      ? Math.max(last, now.getTime() - MAX_ERROR_WINDOW_MS)
      : now.getTime() - cfg.watchdog.intervalS * 1000,
  )
  const { errors, unread } = await collectAppErrors(exec, cfg, since)
  let record = ''
  try {
    record = readFileSync(cfg.errors.releasesFile, 'utf8')
  } catch {
    // nothing deployed yet
  }
  const release = liveRelease(parseReleases(record))?.id ?? null
  const windowMin = (now.getTime() - since.getTime()) / 60_000
  const { state, alerts } = evaluateErrors(previous, errors, release, now, windowMin, cfg.errors.rules)
  for (const u of unread) printErr(`error tracking: could not read the logs of ${u}`)
  print(
    `error tracking: ${errors.length} error line(s) in ${windowMin.toFixed(1)} min, ${alerts.length} alert(s)${previous.lastRun ? '' : ' (first run: signatures learnt, not alerted)'}`,
  )
  for (const a of alerts) {
    print(`${a.kind}: ${a.title}`)
    reportNotifyResults(
      await notify(cfg.targets, cfg.urls, {
        event: 'alert',
        env: cfg.env,
        outcome: 'failed',
        title: `${cfg.env}: ${a.title}`,
        release,
        who: `watchdog on ${cfg.host}`,
        details: a.details,
        runbook: 'docs/runbooks/alerts.md#new-error',
        severity: a.panic ? 'critical' : 'warning',
        resolves: false,
      }),
    )
  }
  writeJsonAtomic(file, state, 2)
}

/**
 * The dead man's switch: a run that finished pings (whatever its checks found: those alert on their
 * own); a run that crashed pings /fail. A ping that fails is said in the journal, never fatal.
 */
export async function heartbeat(cfg: WatchdogFile, kind: 'success' | 'fail', summary: string): Promise<void> {
  const base = cfg.heartbeat ? cfg.urls[cfg.heartbeat.secret] : undefined
  if (!cfg.heartbeat || !base) return
  const sent = await ping(pingUrl(base, cfg.heartbeat.slug, kind), summary, { timeoutMs: 10_000, retries: 2 })
  if (sent.ok) print(`heartbeat ${cfg.heartbeat.slug}${kind === 'fail' ? '/fail' : ''} sent`)
  else
    printErr(
      `heartbeat ${cfg.heartbeat.slug} not sent after ${sent.attempts} attempt(s): ${sent.error}${sent.status === 404 ? ` (no such check at the service: make heartbeats ENV=${cfg.env} creates it)` : ''}`,
    )
}

function stateFiles(cfg: WatchdogFile) {
  return { alerts: join(cfg.stateDir, 'alerts.json'), restarts: join(cfg.stateDir, 'restarts.json') }
}

/** One JSON line per check, in the shape uptime reports read: {at, source, host, check, ok, ms?, detail}. */
export function historyLines(cfg: Pick<WatchdogFile, 'host'>, results: TimedResult[], now: Date): string {
  return results
    .map((r) =>
      JSON.stringify({
        at: now.toISOString(),
        source: 'watchdog',
        host: cfg.host,
        check: r.check,
        ok: r.ok,
        ...(r.ms !== undefined ? { ms: r.ms } : {}),
        detail: r.detail,
      }),
    )
    .map((l) => `${l}\n`)
    .join('')
}

function appendHistory(cfg: WatchdogFile, results: TimedResult[], now: Date): void {
  try {
    mkdirSync(dirname(cfg.historyFile), { recursive: true })
    appendFileSync(cfg.historyFile, redact(historyLines(cfg, results, now)), { mode: 0o640 })
  } catch (err) {
    printErr(`could not append to ${cfg.historyFile}: ${(err as Error).message}`)
  }
}

function readJson<T>(path: string, fallback: T): T {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return fallback // the first run
  }
  try {
    return JSON.parse(text) as T
  } catch {
    printErr(`${path} is not valid JSON: starting from an empty state`)
    return fallback
  }
}

function readConfig(path: string | undefined): WatchdogFile {
  try {
    return JSON.parse(readFileSync(path ?? '', 'utf8')) as WatchdogFile
  } catch (err) {
    printErr(`watchdog: cannot read its config ${path ?? '(none given)'}: ${(err as Error).message}`)
    printErr('Run make setup-server ENV=<env> again: it writes the config.')
    process.exit(2)
  }
}

if (isEntryModule(import.meta.url)) {
  const cfg = readConfig(process.argv[2])
  for (const [name, url] of Object.entries(cfg.urls ?? {})) registerSecret(name, url)
  await runWatchdog(cfg).catch(async (err: Error) => {
    printErr(redact(`watchdog ${cfg.env}: ${err.stack ?? err.message}`))
    await heartbeat(cfg, 'fail', redact(`crashed: ${err.message}`)).catch(() => {})
    process.exit(1)
  })
}

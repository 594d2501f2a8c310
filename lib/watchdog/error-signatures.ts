import { createHash } from 'node:crypto'
import type { ErrorRules } from '../commands/watchdog.ts'

// Error tracking on the host: the app containers' log lines that say error, fatal or panic, grouped
// by signature (the service, the code location without its line numbers, the message normalised);
// alerted when a signature never seen before appears, or when the error rate of the live release
// jumps past its predecessor's. Personal data never leaves the host in an alert, nor stays in the
// watchdog's state: CPF, CNPJ, e-mail addresses and account numbers are replaced before anything is
// kept or sent (LGPD). Pure: text and state in, state and alerts out.

export interface AppError {
  service: string
  /** The code location of a panic (`crates/api/src/app.rs`), line numbers dropped; null for a log line. */
  location: string | null
  /** Scrubbed and normalised: what the signature is made of and what an alert shows. */
  message: string
  panic: boolean
}

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g
const CNPJ = /\b\d{2}\.?\d{3}\.?\d{3}\/?\d{4}-?\d{2}\b/g
const CPF = /\b\d{3}\.?\d{3}\.?\d{3}-?\d{2}\b/g
/** Bank account and branch numbers as people write them: 12345-6, 0001-9, 123456-X. */
const ACCOUNT = /\b\d{3,}-[\dXx]\b/g
const UUID = /\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b/g
const HEX = /\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b/g
const NUMBER = /\b\d+(\.\d+)?\b/g

/** Personal data out: CPF, CNPJ, e-mail addresses, account numbers (then any long digit run). */
export function scrub(text: string): string {
  return text
    .replace(EMAIL, '<email>')
    .replace(CNPJ, '<cnpj>')
    .replace(CPF, '<cpf>')
    .replace(ACCOUNT, '<account>')
    .replace(/\b\d{5,}\b/g, '<number>')
}

/** Scrubbed, then what varies between two occurrences of one error (ids, numbers, times) made equal. */
export function normalise(message: string): string {
  // ids and times first (their digit runs are no one's data), then personal data, then what varies
  const marked = message.replace(UUID, '<uuid>').replace(/\b\d{4}-\d{2}-\d{2}[T ][\d:.]+Z?/g, '<time>')
  return scrub(marked).replace(HEX, '<hex>').replace(NUMBER, '<n>').replace(/\s+/g, ' ').trim().slice(0, 240)
}

// `thread 'conn' panicked at src/x.rs:1:2:` (Rust 1.73+), `thread 'conn' (29598) panicked at ...` (with
// the thread's id, newer), `thread 'conn' panicked at 'message', src/x.rs:1:2` (older).
const PANIC_NEW = /^thread '([^']*)'(?: \(\d+\))? panicked at (.+?):\d+:\d+:\s*$/
const PANIC_OLD = /^thread '([^']*)'(?: \(\d+\))? panicked at '(.*)', (.+?):\d+:\d+\s*$/
const ERROR_WORD = /\b(error|fatal|panic|panicked)\b/i

/** The errors in one container's log text (`docker logs`): panics (one or two lines) and error lines. */
export function appErrors(service: string, text: string): AppError[] {
  const out: AppError[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim()
    if (!line || line.startsWith('note: run with `RUST_BACKTRACE')) continue
    const fresh = line.match(PANIC_NEW)
    if (fresh) {
      // Rust 1.73 and later: the message is on the next line.
      const message = (lines[i + 1] ?? '').trim()
      i++
      out.push({ service, location: fresh[2] ?? null, message: normalise(message), panic: true })
      continue
    }
    const old = line.match(PANIC_OLD)
    if (old) {
      out.push({ service, location: old[3] ?? null, message: normalise(old[2] ?? ''), panic: true })
      continue
    }
    if (ERROR_WORD.test(line)) out.push({ service, location: null, message: normalise(line), panic: false })
  }
  return out
}

/** What identifies an error across occurrences and releases, and its short id. */
export function signatureOf(e: AppError): { id: string; text: string } {
  const text = `${e.service}: ${e.panic ? 'panic' : 'error'}${e.location ? ` at ${e.location}` : ''}: ${e.message}`
  return { id: createHash('sha256').update(text).digest('hex').slice(0, 12), text }
}

export interface KnownSignature {
  text: string
  service: string
  panic: boolean
  firstSeen: string
  lastSeen: string
  count: number
  /** The release live when it first appeared. */
  release: string | null
}

export interface ErrorState {
  version: 1
  /** The end of the last run's log window (the next run reads from here). */
  lastRun?: string
  signatures: Record<string, KnownSignature>
  /** Error lines and minutes watched per release: the baseline of the next one. */
  rates: Record<string, { lines: number; minutes: number; jumpAlerted?: boolean }>
  /** Releases in the order they went live here. */
  releases: string[]
}

export const emptyErrorState = (): ErrorState => ({ version: 1, signatures: {}, rates: {}, releases: [] })

export interface ErrorAlert {
  kind: 'new-signature' | 'rate-jump'
  title: string
  details: string[]
  panic: boolean
}

/**
 * One run's errors against what is known. The first run ever only learns (what was in the logs before
 * the watchdog watched is no news). A new signature alerts once, naming the live release; the rate of
 * the live release alerts once when it jumps past `rateFactor` times its predecessor's.
 */
export function evaluateErrors(
  previous: ErrorState,
  errors: AppError[],
  release: string | null,
  now: Date,
  windowMin: number,
  rules: ErrorRules,
): { state: ErrorState; alerts: ErrorAlert[] } {
  const state: ErrorState = structuredClone(previous)
  const learning = state.lastRun === undefined
  state.lastRun = now.toISOString()
  const at = now.toISOString()
  const alerts: ErrorAlert[] = []
  const since = release ? `since release ${release}` : 'on a host with no release record'
  const byId = new Map<string, { sig: { id: string; text: string }; e: AppError; n: number }>()
  for (const e of errors) {
    const sig = signatureOf(e)
    const seen = byId.get(sig.id)
    if (seen) seen.n++
    else byId.set(sig.id, { sig, e, n: 1 })
  }
  for (const { sig, e, n } of byId.values()) {
    const known = state.signatures[sig.id]
    if (known) {
      known.lastSeen = at
      known.count += n
      continue
    }
    state.signatures[sig.id] = {
      text: sig.text,
      service: e.service,
      panic: e.panic,
      firstSeen: at,
      lastSeen: at,
      count: n,
      release,
    }
    if (learning) continue
    alerts.push({
      kind: 'new-signature',
      panic: e.panic,
      title: `NEW ERROR in ${e.service} ${since}: ${e.panic ? 'panic' : 'error'}${e.location ? ` at ${e.location}` : ''}: ${e.message}`,
      details: [
        `${n} time(s) in the last ${Math.round(windowMin * 10) / 10} min; signature ${sig.id}`,
        `release: ${release ?? 'unknown'} (a new error after a deploy: make rollback ENV=<env> if it hurts users)`,
      ],
    })
  }
  if (release) {
    if (!state.releases.includes(release)) state.releases.push(release)
    const rate = state.rates[release] ?? { lines: 0, minutes: 0 }
    state.rates[release] = rate
    rate.lines += errors.length
    rate.minutes += windowMin
    const before = state.releases[state.releases.indexOf(release) - 1]
    const base = before ? state.rates[before] : undefined
    if (!learning && base && base.minutes >= rules.baselineMin && !rate.jumpAlerted) {
      const baseRate = base.lines / base.minutes
      const nowRate = errors.length / Math.max(windowMin, 1e-9)
      if (errors.length >= rules.minLines && nowRate > rules.rateFactor * Math.max(baseRate, 0.1)) {
        rate.jumpAlerted = true
        alerts.push({
          kind: 'rate-jump',
          panic: errors.some((e) => e.panic),
          title: `ERROR RATE JUMP ${since}: ${nowRate.toFixed(1)} error lines/min, ${before} had ${baseRate.toFixed(2)}/min`,
          details: [
            `${errors.length} error line(s) in the last ${Math.round(windowMin * 10) / 10} min, more than ${rules.rateFactor}x the rate of ${before}`,
            ...[...byId.values()].slice(0, 5).map(({ sig, n }) => `${n}x ${sig.text}`),
          ],
        })
      }
    }
  }
  // Keep the state small: at most 500 signatures (the least recently seen go) and 20 releases.
  const ids = Object.keys(state.signatures)
  if (ids.length > 500)
    for (const id of ids
      .sort((a, b) =>
        (state.signatures[a]?.lastSeen ?? '').localeCompare(state.signatures[b]?.lastSeen ?? ''),
      )
      .slice(0, ids.length - 500))
      delete state.signatures[id]
  for (const old of state.releases.splice(0, Math.max(0, state.releases.length - 20))) delete state.rates[old]
  return { state, alerts }
}

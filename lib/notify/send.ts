import { AbortError } from 'p-retry'
import { type NotifyTarget, SEVERITIES } from '../env/notify.ts'
import { print, printErr } from '../report/output.ts'
import { redact, redactDeep } from '../report/redact.ts'
import { isHttpUrl, type NotifyOptions, type NotifyResult, post, SendError, withRetries } from './deliver.ts'
import { isSmtpUrl, sendEmail } from './email.ts'
import {
  discordPayload,
  jsonPayload,
  type NotifyEvent,
  pagerdutyEvent,
  resolvesIncident,
  severityOf,
  slackPayload,
  telegramPayload,
} from './format.ts'

// Notifications for runbooks and alerts, to every target subscribed to the event and severe enough for
// it. Best effort by design: a failing target is reported and never changes a runbook's outcome, so
// nothing here throws.
export type { NotifyOptions, NotifyResult } from './deliver.ts'
export type { NotifyEvent } from './format.ts'

/**
 * The target gets `e`: it is one of its events, and at least its min_severity. A PagerDuty target also
 * gets what resolves an incident (its page closes when the failure ends), whatever its min_severity.
 */
export function wants(target: NotifyTarget, e: NotifyEvent): boolean {
  if (!target.events.includes(e.event)) return false
  if (target.type === 'pagerduty' && resolvesIncident(e)) return true
  return SEVERITIES.indexOf(severityOf(e)) >= SEVERITIES.indexOf(target.minSeverity)
}

/** Sends `e` to every target that wants it, in parallel; never throws, one result per target. */
export async function notify(
  targets: NotifyTarget[],
  secrets: Readonly<Record<string, string>>,
  e: NotifyEvent,
  options: NotifyOptions = {},
): Promise<NotifyResult[]> {
  const event = redactDeep(e)
  const chosen = targets.filter((t) => wants(t, e))
  return Promise.all(chosen.map((t) => sendSafely(t, secrets[t.secret], event, options)))
}

async function sendSafely(
  target: NotifyTarget,
  secret: string | undefined,
  e: NotifyEvent,
  options: NotifyOptions,
): Promise<NotifyResult> {
  const result: NotifyResult = { target: target.name, ok: false, attempts: 0 }
  if (!secret) return { ...result, error: `secret ${target.secret} is not set` }
  const invalid = secretProblem(target, secret)
  if (invalid) return { ...result, error: `secret ${target.secret} is not ${invalid}` }
  try {
    const status = await withRetries(attempt(target, secret, e, options), options, (n) => {
      result.attempts = n
    })
    return { ...result, ok: true, status }
  } catch (err) {
    const known = err instanceof SendError ? err : undefined
    const error = scrub(
      redact(known?.message ?? `unexpected ${(err as Error)?.name ?? 'error'}`),
      target,
      secret,
    )
    return { ...result, error, ...(known?.status ? { status: known.status } : {}) }
  }
}

/** What the secret should be, when it is not (an http(s) URL, an SMTP URL, a routing key). */
function secretProblem(target: NotifyTarget, secret: string): string | undefined {
  if (target.type === 'email') return isSmtpUrl(secret) ? undefined : 'an smtp:// or smtps:// URL'
  if (target.type === 'pagerduty')
    return /^[A-Za-z0-9]{20,64}$/.test(secret) ? undefined : "a PagerDuty integration's routing key"
  return isHttpUrl(secret) ? undefined : 'an http(s) URL'
}

/** One delivery of `e` to the target, as withRetries calls it. */
function attempt(target: NotifyTarget, secret: string, e: NotifyEvent, options: NotifyOptions) {
  switch (target.type) {
    case 'email':
      return () => sendEmail(secret, e, target, options)
    case 'telegram':
      return () =>
        post(
          `${secret.replace(/\/+$/, '')}/sendMessage`,
          JSON.stringify(telegramPayload(e, target.chatId ?? '')),
          options,
        )
    case 'pagerduty':
      return () =>
        post(
          `${target.apiBase}/v2/enqueue`,
          JSON.stringify({ routing_key: secret, ...pagerdutyEvent(e) }),
          options,
        )
    case 'slack':
      return () => post(secret, JSON.stringify(slackPayload(e)), options)
    case 'discord':
      return () => post(secret, JSON.stringify(discordPayload(e)), options)
    case 'json':
      return () => post(secret, JSON.stringify(jsonPayload(e)), options)
    default:
      return () => Promise.reject(new AbortError(new SendError(`unknown target type`)))
  }
}

/** Removes the credential (whole, and its URL's path and password) from a message, registered or not. */
function scrub(message: string, target: NotifyTarget, secret: string): string {
  let out = message
  const forms = [secret, encodeURIComponent(secret)]
  if (URL.canParse(secret)) {
    const parsed = new URL(secret)
    // A bot's token or a webhook's key is a segment of the path, and a reply may echo it alone.
    const segments = parsed.pathname.split('/').map((p) => decodeURIComponent(p))
    forms.push(parsed.href, `${parsed.pathname}${parsed.search}`, ...segments)
    forms.push(parsed.password, decodeURIComponent(parsed.password))
  }
  const label =
    target.type === 'pagerduty' ? '[routing key]' : target.type === 'email' ? '[smtp url]' : '[webhook url]'
  for (const form of forms.filter((f) => f.length >= 8)) out = out.split(form).join(label)
  return out
}

/** One line per target; a failure says the runbook's outcome did not change. */
export function reportNotifyResults(results: NotifyResult[]): void {
  for (const r of results) {
    if (r.ok) print(`notified ${r.target}`)
    else {
      const tries = r.attempts > 0 ? ` after ${r.attempts} attempt${r.attempts === 1 ? '' : 's'}` : ''
      printErr(`could not notify ${r.target}: ${r.error}${tries} (the runbook's outcome is unchanged)`)
    }
  }
}

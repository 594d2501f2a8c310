import { SECRET_NAME } from './key-source.ts'
import type { Validator } from './validate.ts'

// The `notify:` section of an env file: where the team hears of runbooks and alerts, which events and
// how severe. Every credential (a webhook URL, an SMTP URL with its password, a bot's URL with its
// token, a PagerDuty routing key) is a secret named here, never the value.
export const NOTIFY_TYPES = ['slack', 'discord', 'json', 'email', 'telegram', 'pagerduty'] as const
export const NOTIFY_EVENTS = ['deploy', 'rollback', 'backup', 'restore', 'emergency', 'alert']
/** Least to most severe: a target with `min_severity: critical` gets pages only (and their resolves). */
export const SEVERITIES = ['info', 'warning', 'critical'] as const
export type Severity = (typeof SEVERITIES)[number]
export const PAGERDUTY_API = 'https://events.pagerduty.com'

export interface NotifyTarget {
  type: (typeof NOTIFY_TYPES)[number]
  /**
   * The secret holding the credential: the webhook URL (slack, discord, json), the SMTP URL
   * (`smtps://user:password@host:465`, email), the bot's API URL (`https://api.telegram.org/bot<token>`,
   * telegram) or the routing key (pagerduty). Never the value in the env file.
   */
  secret: string
  name: string
  events: string[]
  /** Events less severe than this are not sent to the target (default info: all). */
  minSeverity: Severity
  /** email: the recipients and the sender. */
  to?: string[]
  from?: string
  /** telegram: the chat (a number, or @channel). */
  chatId?: string
  /** pagerduty: the Events API v2's base URL (the sandbox's stand-in in tests). */
  apiBase?: string
}

const NAME = /^[a-z][a-z0-9-]{0,30}$/
const EMAIL = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/
const CHAT = /^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$/
const FIELDS: Record<NotifyTarget['type'], string[]> = {
  slack: ['url_secret'],
  discord: ['url_secret'],
  json: ['url_secret'],
  email: ['url_secret', 'to', 'from'],
  telegram: ['url_secret', 'chat_id'],
  pagerduty: ['key_secret', 'api_base'],
}
const COMMON = ['name', 'type', 'events', 'min_severity']

/** Validates `notify:` (a list of targets); a missing section means no notifications. */
export function readNotify(v: Validator, raw: unknown): NotifyTarget[] {
  const items = v.list({ notify: raw }, 'notify', '', { optional: true })
  const targets = items.flatMap((item, i) => {
    const target = readTarget(v, item, `notify[${i}]`)
    return target ? [target] : []
  })
  const names = targets.map((t) => t.name)
  for (const dup of new Set(names.filter((n, i) => names.indexOf(n) !== i)))
    v.problem('notify', `target name "${dup}" is used twice; names must be unique`)
  return targets
}

function readTarget(v: Validator, raw: unknown, path: string): NotifyTarget | undefined {
  const loose = v.object(raw, path)
  if (!loose) return undefined
  const type = v.string(loose, 'type', path, { oneOf: [...NOTIFY_TYPES] }) as NotifyTarget['type'] | undefined
  const obj = v.object(
    raw,
    path,
    type ? [...COMMON, ...FIELDS[type]] : [...COMMON, 'url_secret', 'key_secret'],
  )
  const name = v.string(obj, 'name', path, { pattern: NAME, form: 'a lowercase name like team-slack' })
  const secretField = type === 'pagerduty' ? 'key_secret' : 'url_secret'
  const secret = v.string(obj, secretField, path, {
    pattern: SECRET_NAME,
    form:
      type === 'pagerduty'
        ? 'an UPPER_CASE secret name (the routing key of the PagerDuty service is a secret)'
        : `an UPPER_CASE secret name (the ${type === 'email' ? 'SMTP URL with its password' : type === 'telegram' ? "bot's API URL with its token" : 'webhook URL'} is a secret)`,
  })
  const listed = obj?.events !== undefined && obj?.events !== null
  const events = v.stringList(obj, 'events', path, { optional: true, min: 1, oneOf: NOTIFY_EVENTS })
  const minSeverity = v.string(obj, 'min_severity', path, {
    default: 'info',
    oneOf: [...SEVERITIES],
  }) as Severity
  const extra = type ? readExtra(v, obj, path, type) : undefined
  if (!name || !type || !secret || !extra) return undefined
  return {
    name,
    type,
    secret,
    events: listed ? [...new Set(events)] : [...NOTIFY_EVENTS],
    minSeverity: minSeverity ?? 'info',
    ...extra,
  }
}

/** The fields of one type; undefined when one of them is wrong (reported). */
function readExtra(
  v: Validator,
  obj: Record<string, unknown> | undefined,
  path: string,
  type: NotifyTarget['type'],
): Partial<NotifyTarget> | undefined {
  if (type === 'email') {
    const to = v.stringList(obj, 'to', path, { min: 1, pattern: EMAIL, form: 'an e-mail address' })
    const from = v.string(obj, 'from', path, {
      pattern: EMAIL,
      form: 'an e-mail address like alerts@example.com',
    })
    return to.length > 0 && from && to.length === (obj?.to as unknown[] | undefined)?.length
      ? { to, from }
      : undefined
  }
  if (type === 'telegram') {
    const raw = obj?.chat_id
    const chatId = v.string({ chat_id: typeof raw === 'number' ? String(raw) : raw }, 'chat_id', path, {
      pattern: CHAT,
      form: 'a chat id (a number, negative for groups) or @channelname',
    })
    return chatId ? { chatId } : undefined
  }
  if (type === 'pagerduty') {
    const apiBase = v.string(obj, 'api_base', path, {
      default: PAGERDUTY_API,
      pattern: /^https?:\/\/[^\s/]+(\/\S*)?$/,
      form: 'an http(s) URL (the Events API v2; https://events.pagerduty.com by default)',
    })
    return apiBase ? { apiBase: apiBase.replace(/\/+$/, '') } : undefined
  }
  return {}
}

/** The secret names the targets read, for the env loader to check against `secrets:`. */
export function notifySecretNames(targets: NotifyTarget[]): string[] {
  return [...new Set(targets.map((t) => t.secret))]
}

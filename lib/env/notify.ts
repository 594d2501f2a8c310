import { SECRET_NAME } from './key-source.ts'
import type { Validator } from './validate.ts'

// The `notify:` section of an env file: the team's webhooks and which runbook events each one gets.
export const NOTIFY_TYPES = ['slack', 'discord', 'json'] as const
export const NOTIFY_EVENTS = ['deploy', 'rollback', 'backup', 'restore', 'emergency', 'alert']

export interface NotifyTarget {
  type: (typeof NOTIFY_TYPES)[number]
  /** The secret holding the webhook URL: the URL itself is a credential, so it never sits in the env file. */
  urlSecret: string
  name: string
  events: string[]
}

const NAME = /^[a-z][a-z0-9-]{0,30}$/

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
  const obj = v.object(raw, path, ['name', 'type', 'url_secret', 'events'])
  if (!obj) return undefined
  const name = v.string(obj, 'name', path, { pattern: NAME, form: 'a lowercase name like team-slack' })
  const type = v.string(obj, 'type', path, { oneOf: [...NOTIFY_TYPES] }) as NotifyTarget['type'] | undefined
  const urlSecret = v.string(obj, 'url_secret', path, {
    pattern: SECRET_NAME,
    form: 'an UPPER_CASE secret name (the webhook URL is a secret)',
  })
  const listed = obj.events !== undefined && obj.events !== null
  const events = v.stringList(obj, 'events', path, { optional: true, min: 1, oneOf: NOTIFY_EVENTS })
  if (!name || !type || !urlSecret) return undefined
  return { name, type, urlSecret, events: listed ? [...new Set(events)] : [...NOTIFY_EVENTS] }
}

/** The secret names the targets read, for the env loader to check against `secrets:`. */
export function notifySecretNames(targets: NotifyTarget[]): string[] {
  return [...new Set(targets.map((t) => t.urlSecret))]
}

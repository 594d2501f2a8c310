import type { Severity } from '../env/notify.ts'

// What the team is told, and its form for each kind of target: one message, the same facts in each
// (Slack blocks, a Discord embed, JSON, an e-mail, a Telegram message, a PagerDuty event). Pure.
export interface NotifyEvent {
  event: 'deploy' | 'rollback' | 'backup' | 'restore' | 'emergency' | 'alert' | string
  env: string
  outcome: 'success' | 'failed' | 'rolled-back' | 'recovered' | string
  title: string
  release?: string | null
  who?: string
  duration_s?: number
  link?: string | null
  details?: string[]
  runbook?: string
  /** How loud: critical pages, warning and info inform (default from the outcome: severityOf). */
  severity?: Severity
  /**
   * This event ends the incident its kind opened (a deploy that works again, every check ok again):
   * PagerDuty resolves it. Default: a success or recovered outcome.
   */
  resolves?: boolean
}

export const SOURCE = 'conciliaextrato-runbooks'
const STYLES: Record<string, { color: number; emoji: string }> = {
  success: { color: 0x2eb67d, emoji: '✅' },
  failed: { color: 0xe01e5a, emoji: '❌' },
  'rolled-back': { color: 0xf2a900, emoji: '↩️' },
  recovered: { color: 0x2eb67d, emoji: '🩹' },
}

export function outcomeStyle(outcome: string): { color: number; emoji: string } {
  return STYLES[outcome] ?? { color: 0x8a8f98, emoji: 'ℹ️' }
}

/** Cuts to at most `max` UTF-16 units with an ellipsis, never splitting a surrogate pair. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text
  let cut = Math.max(0, max - 1)
  const code = text.charCodeAt(cut - 1)
  if (code >= 0xd800 && code <= 0xdbff) cut--
  return `${text.slice(0, cut)}…`
}

function facts(e: NotifyEvent): [string, string][] {
  const rows: [string, string | undefined][] = [
    ['Environment', e.env],
    ['Outcome', e.outcome],
    ['Release', e.release ?? undefined],
    ['Who', e.who],
    ['Duration', e.duration_s === undefined ? undefined : duration(e.duration_s)],
    ['Runbook', e.runbook],
  ]
  return rows.filter((r): r is [string, string] => Boolean(r[1]))
}

function duration(s: number): string {
  const total = Math.round(s)
  return total < 60 ? `${total}s` : `${Math.floor(total / 60)}m ${total % 60}s`
}

function httpLink(link: string | null | undefined): string | undefined {
  return link && /^https?:\/\/\S+$/.test(link) ? link : undefined
}

// Slack mrkdwn treats <, > and & as markup (<!channel> pings everyone), so user text is escaped.
const mrkdwn = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

export function slackPayload(e: NotifyEvent): { text: string; blocks: object[] } {
  const { emoji } = outcomeStyle(e.outcome)
  const link = httpLink(e.link)
  const summary = facts(e)
    .map(([k, v]) => `${k.toLowerCase()}: ${v}`)
    .join(', ')
  const blocks: object[] = [
    { type: 'header', text: { type: 'plain_text', text: truncate(`${emoji} ${e.title}`, 150), emoji: true } },
    {
      type: 'section',
      fields: facts(e)
        .slice(0, 10)
        .map(([k, v]) => ({ type: 'mrkdwn', text: truncate(`*${k}*\n${mrkdwn(v)}`, 2000) })),
    },
  ]
  if (e.details?.length)
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: truncate(mrkdwn(e.details.join('\n')), 3000) },
    })
  if (link) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `<${mrkdwn(link)}|Open the run>` } })
  // Mattermost and Rocket.Chat show only `text`, so it carries the whole message in one line.
  const text = `${emoji} ${mrkdwn(e.title)} (${mrkdwn(summary)})${link ? ` ${mrkdwn(link)}` : ''}`
  return { text: truncate(text, 3000), blocks }
}

export function discordPayload(e: NotifyEvent, now = new Date()): Record<string, unknown> {
  const { color, emoji } = outcomeStyle(e.outcome)
  const title = truncate(`${emoji} ${e.title}`, 256)
  const fields = facts(e)
    .slice(0, 25)
    .map(([name, value]) => ({ name: truncate(name, 256), value: truncate(value, 1024), inline: true }))
  // Discord rejects an embed whose title, description and fields add up to more than 6000 characters.
  const used = title.length + fields.reduce((n, f) => n + f.name.length + f.value.length, 0)
  const description = truncate((e.details ?? []).join('\n'), Math.min(4096, 6000 - used))
  const link = httpLink(e.link)
  const embed = {
    title,
    description,
    color,
    fields,
    timestamp: now.toISOString(),
    ...(link ? { url: link } : {}),
  }
  // Text from a failed command must not ping @everyone.
  return { content: truncate(`${emoji} ${e.title}`, 2000), embeds: [embed], allowed_mentions: { parse: [] } }
}

export function jsonPayload(e: NotifyEvent, now = new Date()): NotifyEvent & { ts: string; source: string } {
  return { ...e, ts: now.toISOString(), source: SOURCE }
}

/** A failed run or an alert pages; a rollback warns; the rest informs. */
export function severityOf(e: NotifyEvent): Severity {
  if (e.severity) return e.severity
  if (e.outcome === 'failed') return 'critical'
  if (e.outcome === 'rolled-back') return 'warning'
  return 'info'
}

export function resolvesIncident(e: NotifyEvent): boolean {
  return e.resolves ?? (e.outcome === 'success' || e.outcome === 'recovered')
}

/**
 * The message as plain text, the same lines as the Slack message: the title, one `Key: value` line per
 * fact, the details, the link. E-mail and Telegram send this.
 */
export function plainText(e: NotifyEvent): { subject: string; body: string } {
  const { emoji } = outcomeStyle(e.outcome)
  const link = httpLink(e.link)
  const lines = [
    e.title,
    '',
    ...facts(e).map(([k, v]) => `${k}: ${v}`),
    ...(e.details?.length ? ['', ...e.details] : []),
    ...(link ? ['', `Open the run: ${link}`] : []),
    '',
    `Severity: ${severityOf(e)} · sent by ${SOURCE}`,
  ]
  return {
    subject: truncate(`${emoji} ${e.title}`.replace(/[\r\n]+/g, ' '), 200),
    body: `${lines.join('\n')}\n`,
  }
}

/** Telegram's sendMessage body (plain text: no markup to escape; at most 4096 characters). */
export function telegramPayload(e: NotifyEvent, chatId: string): Record<string, unknown> {
  const { subject, body } = plainText(e)
  const text = truncate(`${subject}\n\n${body.split('\n').slice(2).join('\n')}`.trim(), 4096)
  return { chat_id: chatId, text, disable_web_page_preview: true }
}

const PD_SEVERITY: Record<Severity, string> = { critical: 'critical', warning: 'warning', info: 'info' }

/**
 * A PagerDuty Events API v2 event: one incident per env and kind of event (its dedup_key), triggered
 * by a failure and resolved by what ends it. The routing key is added by the sender.
 */
export function pagerdutyEvent(e: NotifyEvent, now = new Date()): Record<string, unknown> {
  const dedup = `conciliaextrato/${e.env}/${e.event}`
  if (resolvesIncident(e)) return { event_action: 'resolve', dedup_key: dedup }
  const link = httpLink(e.link)
  return {
    event_action: 'trigger',
    dedup_key: dedup,
    payload: {
      summary: truncate(e.title, 1024),
      source: e.who ? truncate(e.who, 255) : SOURCE,
      severity: PD_SEVERITY[severityOf(e)],
      timestamp: now.toISOString(),
      component: e.env,
      group: e.event,
      custom_details: {
        ...Object.fromEntries(facts(e)),
        ...(e.details?.length ? { details: e.details } : {}),
      },
    },
    ...(link ? { links: [{ href: link, text: 'Open the run' }] } : {}),
  }
}

import { createTransport } from 'nodemailer'
import { AbortError } from 'p-retry'
import type { NotifyTarget } from '../env/notify.ts'
import { type NotifyOptions, SendError } from './deliver.ts'
import { type NotifyEvent, plainText, severityOf } from './format.ts'

// E-mail alerts over SMTP (nodemailer: STARTTLS, implicit TLS, AUTH, SMTP's reply codes). The target's
// secret is the SMTP URL, its password included: `smtps://alerts%40example.com:pw@smtp.example.com:465`
// or `smtp://...:587` (STARTTLS then required; a local relay without TLS says `?requireTLS=false`).

/**
 * nodemailer's transport options for `url`, spelled out (nodemailer drops every other option when given
 * a `url`): TLS required on smtp:// (STARTTLS; `?requireTLS=false` for a local relay), implicit TLS on
 * smtps://, every wait bounded, no file or URL access from a message.
 */
export function smtpOptions(url: string, timeoutMs: number): Record<string, unknown> {
  const u = new URL(url)
  const secure = u.protocol === 'smtps:'
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: Number(u.port) || (secure ? 465 : 587),
    secure,
    ...(secure ? {} : { requireTLS: u.searchParams.get('requireTLS') !== 'false' }),
    ...(u.username
      ? { auth: { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } }
      : {}),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    disableFileAccess: true,
    disableUrlAccess: true,
  }
}

export function isSmtpUrl(url: string): boolean {
  return URL.canParse(url) && /^smtps?:$/.test(new URL(url).protocol) && new URL(url).hostname !== ''
}

/** The message: the same text as the Slack one (lib/notify/format.ts plainText), and its severity. */
export function emailMessage(e: NotifyEvent, target: NotifyTarget): Record<string, unknown> {
  const { subject, body } = plainText(e)
  const severity = severityOf(e)
  return {
    from: target.from,
    to: target.to,
    subject,
    text: body,
    headers: {
      'X-ConciliaExtrato-Env': e.env,
      'X-ConciliaExtrato-Event': e.event,
      'X-ConciliaExtrato-Severity': severity,
      ...(severity === 'critical' ? { Importance: 'high', 'X-Priority': '1' } : {}),
    },
  }
}

/**
 * One SMTP delivery: resolves with the server's reply code. A 4xx reply or a connection failure is
 * retried (SendError); a 5xx (a refused recipient, bad credentials) is final. Messages carry only
 * SMTP's code and the error's kind, never the server's text (it may echo the login).
 */
export async function sendEmail(
  url: string,
  e: NotifyEvent,
  target: NotifyTarget,
  options: NotifyOptions,
): Promise<number> {
  const transport = createTransport(smtpOptions(url, options.timeoutMs ?? 5000))
  try {
    const info = await transport.sendMail(emailMessage(e, target))
    const code = Number(/^(\d{3})/.exec(String(info.response ?? ''))?.[1] ?? 250)
    if (info.rejected.length > 0)
      throw new AbortError(new SendError(`SMTP refused ${info.rejected.length} recipient(s)`, code))
    return code
  } catch (err) {
    if (err instanceof AbortError) throw err
    const x = err as { code?: string; responseCode?: number; command?: string; message?: string }
    const what = x.responseCode
      ? `SMTP ${x.responseCode}${x.command ? ` to ${x.command.split(' ')[0]}` : ''}`
      : smtpNetworkReason(x, options.timeoutMs ?? 5000)
    const failure = new SendError(what, x.responseCode)
    if (x.responseCode && x.responseCode >= 500) throw new AbortError(failure)
    if (x.code === 'EAUTH' || x.code === 'ETLS' || x.code === 'EENVELOPE') throw new AbortError(failure)
    throw failure
  } finally {
    transport.close()
  }
}

/** A failure before any reply: the socket's code only (nodemailer's message names the host). */
function smtpNetworkReason(x: { code?: string; message?: string }, timeoutMs: number): string {
  if (x.code === 'ETIMEDOUT') return `no answer within ${timeoutMs} ms`
  const errno = /\b(E[A-Z]{3,})\b/.exec(x.message ?? '')?.[1]
  if (x.code === 'ESOCKET' || x.code === 'ECONNECTION') return `connection failed (${errno ?? x.code})`
  return `SMTP ${String(x.code ?? 'error').replace(/[^\w.-]/g, '')}`
}

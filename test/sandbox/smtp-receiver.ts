import type { AddressInfo } from 'node:net'
import { simpleParser } from 'mailparser'
import { SMTPServer } from 'smtp-server'

// A local SMTP server for tests (smtp-server, the receiver nodemailer's authors keep): takes AUTH PLAIN
// or LOGIN with one user and password, records every message parsed (mailparser), and can refuse the
// next messages with a reply code.
export interface ReceivedMail {
  from: string
  to: string[]
  subject: string
  text: string
  headers: Record<string, string>
  /** The user that logged in. */
  user: string
}

export interface SmtpReceiver {
  host: string
  port: number
  /** The SMTP URL with the credentials (plain SMTP: the sandbox has no TLS certificate for it). */
  url: string
  user: string
  password: string
  received: ReceivedMail[]
  /** The next messages get these reply codes (e.g. 451, 550) instead of 250, in order. */
  refuse(codes: number[]): void
  /** Resolves when `n` messages have arrived (at most `timeoutMs`). */
  waitFor(n: number, timeoutMs: number): Promise<ReceivedMail[]>
  close(): Promise<void>
}

export async function startSmtpReceiver(host = '127.0.0.1'): Promise<SmtpReceiver> {
  const user = 'alerts@conciliaextrato.test'
  const password = `smtp-${Math.random().toString(36).slice(2)}-secret`
  const received: ReceivedMail[] = []
  let refusals: number[] = []
  const server = new SMTPServer({
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, done) {
      if (auth.username === user && auth.password === password) done(null, { user })
      else done(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }))
    },
    onData(stream, session, done) {
      const code = refusals.shift()
      simpleParser(stream)
        .then((mail) => {
          if (code) {
            done(Object.assign(new Error(`refused by the test (${code})`), { responseCode: code }))
            return
          }
          received.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            subject: mail.subject ?? '',
            text: mail.text ?? '',
            headers: Object.fromEntries(
              [...mail.headers.entries()].map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
            ),
            user: String(session.user ?? ''),
          })
          done()
        })
        .catch((err: Error) => done(err))
    },
  })
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()))
  const { port } = server.server.address() as AddressInfo
  return {
    host,
    port,
    url: `smtp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/?requireTLS=false`,
    user,
    password,
    received,
    refuse: (codes) => {
      refusals = [...codes]
    },
    async waitFor(n, timeoutMs) {
      const t0 = Date.now()
      while (received.length < n) {
        if (Date.now() - t0 > timeoutMs)
          throw new Error(`${received.length} of ${n} e-mails arrived within ${timeoutMs} ms`)
        await new Promise((r) => setTimeout(r, 100))
      }
      return received.slice(0, n)
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

// A local webhook endpoint for tests: records every request and answers from a script of replies.
export interface Received {
  method: string
  path: string
  headers: IncomingHttpHeaders
  body: string
}

/** A status with optional headers and body, or 'hang' (never answers). */
export type Reply = { status: number; headers?: Record<string, string>; body?: string } | 'hang'

export interface Receiver {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string
  received: Received[]
  /** Replies used in order; once used up, every request gets 200 "ok". */
  script(replies: Reply[]): void
  close(): Promise<void>
}

/** Listens on 127.0.0.1, or on `host` (a test bed's gateway, where its droplets reach this machine). */
export async function startReceiver(host = '127.0.0.1'): Promise<Receiver> {
  const received: Received[] = []
  let replies: Reply[] = []
  const hanging: ServerResponse[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body })
      const reply = replies.shift() ?? { status: 200, body: 'ok' }
      if (reply === 'hang') {
        hanging.push(res)
        return
      }
      res.writeHead(reply.status, reply.headers).end(reply.body ?? '')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${host}:${port}`,
    received,
    script: (next) => {
      replies = [...next]
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** A port on 127.0.0.1 that nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

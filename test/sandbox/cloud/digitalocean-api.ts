/**
 * A local stand-in for the DigitalOcean API v2 for what the `emergency` and `image` runbooks do with
 * droplets: create (202, `status: new`; from a distribution or a snapshot), read until `active`, list by
 * tag with `links.pages`/`meta.total`, delete, actions (shutdown, power_off, power_on, snapshot: 201),
 * droplet snapshots (list, read, delete), and the account's SSH keys. A droplet turns active only when the `onCreate` provisioner hook resolves
 * with its address (the project plugs in a sandbox droplet container); `onDelete` runs after a delete.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isIPv4 } from 'node:net'
import { IMAGES, type Image, regionView, snapshotView } from './digitalocean-catalog.ts'
import {
  type Action,
  type Droplet,
  type DropletSpec,
  dropletView,
  md5Fingerprint,
  newDroplet,
  now,
  pageBody,
  parseCreate,
  type SshKey,
  Unprocessable,
} from './digitalocean-droplets.ts'
import {
  bearerToken,
  FaultInjector,
  findRoute,
  type LoggedRequest,
  listenLocal,
  logRequest,
  parseJson,
  type Route,
  readBody,
  sendEmpty,
  sendJson,
} from './http-util.ts'

export type { DropletSpec, SshKey } from './digitalocean-droplets.ts'

export interface DigitalOceanApiOptions {
  /** Accepted personal access tokens. */
  tokens: string[]
  /** The account's SSH keys (`GET /v2/account/keys`); ids are assigned in order. */
  sshKeys?: Array<{ name: string; publicKey: string }>
  /** Provisions a new droplet; it turns `active` with this address only once the promise resolves. */
  onCreate?: (droplet: DropletSpec) => Promise<{ ip: string; ipv6?: string }>
  /** Called after a delete, once the droplet's creation has settled. */
  onDelete?: (droplet: DropletSpec) => Promise<void>
  /** The account's droplet limit (default 25). */
  dropletLimit?: number
  /** A shutdown or power_off action: the droplet turns `off` once it resolves. */
  onPowerOff?: (droplet: DropletSpec) => Promise<void>
  /** A snapshot action: the snapshot (a private image of that id) is listed once it resolves. */
  onSnapshot?: (droplet: DropletSpec, snapshot: { id: number; name: string }) => Promise<{ sizeGb: number }>
  /** After a snapshot is deleted. */
  onSnapshotDelete?: (snapshot: { id: number; name: string }) => Promise<void>
}

export type DigitalOceanApi = Awaited<ReturnType<typeof startDigitalOceanApi>>

interface Reply {
  status: number
  body?: unknown
}

interface Ctx {
  params: Record<string, string>
  query: URLSearchParams
  body: unknown
}

class DoError extends Error {
  constructor(
    readonly status: number,
    readonly id: string,
    message: string,
  ) {
    super(message)
  }
}

const notFound = () => new DoError(404, 'not_found', 'The resource you requested could not be found.')

export async function startDigitalOceanApi(options: DigitalOceanApiOptions) {
  const tokens = new Set(options.tokens)
  const keys: SshKey[] = (options.sshKeys ?? []).map((k, i) => ({
    id: 512_189 + i,
    name: k.name,
    public_key: k.publicKey.trim(),
    fingerprint: md5Fingerprint(k.publicKey),
  }))
  const droplets = new Map<number, Droplet & { settled: Promise<void> }>()
  /** Droplet snapshots: private images, with the droplet each was taken of. */
  const snapshots = new Map<number, { image: Image; resourceId: number }>()
  const actions = new Map<number, Action>()
  const hookErrors: Array<{ droplet: number; hook: string; error: string }> = []
  const tasks = new Set<Promise<void>>()
  const faults = new FaultInjector()
  const requests: LoggedRequest[] = []
  const vpc = randomUUID()
  let nextId = 3_164_444
  let nextAction = 36_804_636
  let nextImage = 170_000_001
  let base = ''
  const rate = { limit: 5000, remaining: 5000, reset: Math.floor(Date.now() / 1000) + 3600 }

  const track = (task: Promise<void>) => {
    tasks.add(task)
    task.finally(() => tasks.delete(task))
  }
  const newAction = (type: Action['type'], d: Droplet): Action => {
    const action: Action = {
      id: nextAction++,
      status: 'in-progress',
      type,
      started_at: now(),
      completed_at: null,
      resource_id: d.spec.id,
      resource_type: 'droplet',
      region_slug: d.spec.region,
    }
    actions.set(action.id, action)
    return action
  }
  const finish = (action: Action, ok: boolean) => {
    action.status = ok ? 'completed' : 'errored'
    action.completed_at = now()
  }
  const actionLink = (a: Action) => ({ id: a.id, rel: a.type, href: `${base}/v2/actions/${a.id}` })

  function create(ctx: Ctx): Reply {
    if (typeof ctx.body !== 'object' || ctx.body === null || Array.isArray(ctx.body))
      throw new DoError(400, 'bad_request', 'The request body must be a JSON object.')
    const body = ctx.body as Record<string, unknown>
    const req = parseCreate(body, keys, [...IMAGES, ...[...snapshots.values()].map((x) => x.image)])
    if (droplets.size + req.names.length > (options.dropletLimit ?? 25))
      throw new Unprocessable('creating this/these droplet(s) will exceed your droplet limit')
    const made = req.names.map((name) => {
      const droplet = newDroplet(nextId++, name, req, vpc)
      const { spec } = droplet
      const id = spec.id
      const action = newAction('create', droplet)
      const settled = (async () => {
        try {
          const got = options.onCreate ? await options.onCreate(spec) : { ip: `203.0.113.${(id % 250) + 2}` }
          if (!isIPv4(got?.ip ?? '')) throw new Error(`onCreate must resolve to { ip: IPv4 }, got ${got?.ip}`)
          droplet.ip = got.ip
          if (spec.ipv6) droplet.ipv6Address = got.ipv6 ?? `2604:a880:400:d1::${id.toString(16)}`
          droplet.status = 'active'
          finish(action, true)
        } catch (err) {
          hookErrors.push({ droplet: id, hook: 'onCreate', error: (err as Error).message })
          finish(action, false)
        }
      })()
      track(settled)
      droplets.set(id, Object.assign(droplet, { settled }))
      return { droplet, action }
    })
    const links = { actions: made.map((m) => actionLink(m.action)) }
    const views = made.map((m) => dropletView(m.droplet))
    return { status: 202, body: 'names' in body ? { droplets: views, links } : { droplet: views[0], links } }
  }

  function destroy(d: Droplet & { settled: Promise<void> }) {
    droplets.delete(d.spec.id)
    const action = newAction('destroy', d)
    const task = d.settled.then(async () => {
      try {
        await options.onDelete?.(d.spec)
        finish(action, true)
      } catch (err) {
        hookErrors.push({ droplet: d.spec.id, hook: 'onDelete', error: (err as Error).message })
        finish(action, false)
      }
    })
    track(task)
  }

  /** `POST /v2/droplets/:id/actions`: shutdown, power_off, power_on and snapshot; 201 with the action. */
  function act(ctx: Ctx): Reply {
    const d = dropletOf(ctx)
    const body = (ctx.body ?? {}) as Record<string, unknown>
    const type = body.type
    const run = (action: Action, work: () => Promise<void>) =>
      track(
        d.settled.then(async () => {
          try {
            await work()
            finish(action, true)
          } catch (err) {
            hookErrors.push({ droplet: d.spec.id, hook: `on ${action.type}`, error: (err as Error).message })
            finish(action, false)
          }
        }),
      )
    if (type === 'shutdown' || type === 'power_off') {
      if (d.status === 'off') throw new Unprocessable('Droplet is already powered off.')
      const action = newAction(type, d)
      run(action, async () => {
        await options.onPowerOff?.(d.spec)
        d.status = 'off'
      })
      return { status: 201, body: { action } }
    }
    if (type === 'power_on') {
      const action = newAction('power_on', d)
      run(action, async () => {
        d.status = 'active'
      })
      return { status: 201, body: { action } }
    }
    if (type === 'snapshot') {
      if (body.name !== undefined && (typeof body.name !== 'string' || body.name === ''))
        throw new Unprocessable('name must be a non-empty string')
      const name = (body.name as string | undefined) ?? `${d.spec.name}-${Date.now()}`
      const id = nextImage++
      const action = newAction('snapshot', d)
      run(action, async () => {
        const got = options.onSnapshot ? await options.onSnapshot(d.spec, { id, name }) : { sizeGb: 2.5 }
        const image: Image = {
          id,
          slug: null,
          name,
          distribution: d.image.distribution,
          snapshot: { createdAt: now(), regions: [d.spec.region], sizeGb: got.sizeGb },
        }
        snapshots.set(id, { image, resourceId: d.spec.id })
      })
      return { status: 201, body: { action } }
    }
    throw new Unprocessable(`the action type ${String(type)} is not one this double knows`)
  }

  function snapshotOf(ctx: Ctx) {
    const raw = ctx.params.id ?? ''
    const snap = /^\d+$/.test(raw) ? snapshots.get(Number(raw)) : undefined
    if (!snap) throw notFound()
    return snap
  }

  function dropletOf(ctx: Ctx) {
    const raw = ctx.params.id ?? ''
    const d = /^\d+$/.test(raw) ? droplets.get(Number(raw)) : undefined
    if (!d) throw notFound()
    return d
  }

  const page = <T>(items: T[], ctx: Ctx, path: string, key: string, keep: string[] = []): Reply => ({
    status: 200,
    body: pageBody(items, ctx.query, `${base}${path}`, key, keep),
  })

  function filtered(ctx: Ctx) {
    const tag = ctx.query.get('tag_name')
    const name = ctx.query.get('name')
    return [...droplets.values()].filter(
      (d) => (tag === null || d.spec.tags.includes(tag)) && (name === null || d.spec.name === name),
    )
  }

  const r = (method: string, pattern: string, handler: (ctx: Ctx) => Reply): Route<(ctx: Ctx) => Reply> => ({
    method,
    pattern,
    handler,
  })
  const table = [
    r('GET', '/v2/account', () => ({
      status: 200,
      body: {
        account: {
          droplet_limit: options.dropletLimit ?? 25,
          floating_ip_limit: 3,
          email: 'ops@conciliaextrato.com',
          uuid: vpc,
          email_verified: true,
          status: 'active',
          status_message: '',
        },
      },
    })),
    r('GET', '/v2/account/keys', (ctx) => page(keys, ctx, '/v2/account/keys', 'ssh_keys')),
    r('GET', '/v2/account/keys/:id', (ctx) => {
      const key = keys.find((k) => String(k.id) === ctx.params.id || k.fingerprint === ctx.params.id)
      if (!key) throw notFound()
      return { status: 200, body: { ssh_key: key } }
    }),
    r('POST', '/v2/droplets', create),
    r('GET', '/v2/droplets', (ctx) =>
      page(filtered(ctx).map(dropletView), ctx, '/v2/droplets', 'droplets', ['tag_name', 'name']),
    ),
    r('DELETE', '/v2/droplets', (ctx) => {
      if (ctx.query.get('tag_name') === null) throw new Unprocessable('tag_name is required to delete by tag')
      for (const d of filtered(ctx)) destroy(d)
      return { status: 204 }
    }),
    r('GET', '/v2/droplets/:id', (ctx) => ({ status: 200, body: { droplet: dropletView(dropletOf(ctx)) } })),
    r('DELETE', '/v2/droplets/:id', (ctx) => {
      destroy(dropletOf(ctx))
      return { status: 204 }
    }),
    r('POST', '/v2/droplets/:id/actions', act),
    r('GET', '/v2/snapshots', (ctx) => {
      const type = ctx.query.get('resource_type')
      if (type !== null && type !== 'droplet' && type !== 'volume')
        throw new DoError(400, 'bad_request', 'resource_type must be droplet or volume')
      const items =
        type === 'volume' ? [] : [...snapshots.values()].map((x) => snapshotView(x.image, x.resourceId))
      return page(items, ctx, '/v2/snapshots', 'snapshots', ['resource_type'])
    }),
    r('GET', '/v2/snapshots/:id', (ctx) => {
      const snap = snapshotOf(ctx)
      return { status: 200, body: { snapshot: snapshotView(snap.image, snap.resourceId) } }
    }),
    r('DELETE', '/v2/snapshots/:id', (ctx) => {
      const snap = snapshotOf(ctx)
      snapshots.delete(snap.image.id)
      track(
        (async () => {
          try {
            await options.onSnapshotDelete?.({ id: snap.image.id, name: snap.image.name })
          } catch (err) {
            hookErrors.push({
              droplet: snap.resourceId,
              hook: 'onSnapshotDelete',
              error: (err as Error).message,
            })
          }
        })(),
      )
      return { status: 204 }
    }),
    r('GET', '/v2/actions/:id', (ctx) => {
      const action = actions.get(Number(ctx.params.id))
      if (!action) throw notFound()
      return { status: 200, body: { action: { ...action, region: regionView(action.region_slug) } } }
    }),
  ]

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    const method = req.method ?? 'GET'
    const text = await readBody(req)
    const entry = logRequest(requests, method, url, text)
    const parsed = text === '' ? undefined : parseJson(text)
    rate.remaining = Math.max(0, rate.remaining - 1)
    const limits = (remaining = rate.remaining) => ({
      'ratelimit-limit': String(rate.limit),
      'ratelimit-remaining': String(remaining),
      'ratelimit-reset': String(rate.reset),
    })
    const reply = (status: number, body?: unknown, headers: Record<string, string> = limits()) => {
      entry.status = status
      if (body === undefined) sendEmpty(res, status, headers)
      else sendJson(res, status, body, headers)
    }
    const fail = (e: DoError, headers = limits()) =>
      reply(e.status, { id: e.id, message: e.message, request_id: randomUUID() }, headers)

    const fault = faults.take(method, url.pathname)
    if (fault?.status === 429) {
      const headers = { ...limits(0), 'retry-after': String(fault.retryAfterS) }
      return fail(new DoError(429, 'too_many_requests', 'API Rate limit exceeded.'), headers)
    }
    if (fault)
      return fail(new DoError(fault.status, 'server_error', 'Server was unable to give you a response.'))
    try {
      if (!tokens.has(bearerToken(req) ?? ''))
        throw new DoError(401, 'Unauthorized', 'Unable to authenticate you')
      if (parsed && !parsed.ok) throw new DoError(400, 'bad_request', `Invalid JSON: ${parsed.error}`)
      const { route, params } = findRoute(table, method, url.pathname.replace(/\/+$/, ''))
      if (!route) throw notFound()
      const out = route.handler({
        params,
        query: url.searchParams,
        body: parsed?.ok ? parsed.value : undefined,
      })
      reply(out.status, out.body)
    } catch (err) {
      if (err instanceof DoError) fail(err)
      else if (err instanceof Unprocessable) fail(new DoError(422, 'unprocessable_entity', err.message))
      else fail(new DoError(500, 'server_error', `test double error: ${(err as Error).message}`))
    }
  }

  const listening = await listenLocal(handle)
  base = listening.url
  return {
    url: listening.url,
    /** Every request, oldest first: method, path, query, parsed body, answered status. */
    requests,
    /** `faults.add({ status: 429 | 5xx, count, path, method, retryAfterS })`. */
    faults,
    tokens,
    sshKeys: keys,
    /** Failures of the provisioner hooks (the droplet stays `new`; its action is `errored`). */
    hookErrors,
    droplet: (id: number) => {
      const d = droplets.get(id)
      return d && dropletView(d)
    },
    /** Resolves once every pending onCreate/onDelete hook has settled. */
    async idle(): Promise<void> {
      while (tasks.size) await Promise.allSettled([...tasks])
    },
    async close(): Promise<void> {
      await listening.close()
    },
  }
}

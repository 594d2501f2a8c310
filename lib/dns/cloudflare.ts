/**
 * The one place the official cloudflare SDK is used: a client for the env's token, every call retried
 * on 429 (honouring Retry-After), 5xx and network errors, and every failure turned into a message that
 * says what was refused and what to do. The token never appears in a message.
 */
import Cloudflare from 'cloudflare'
import pRetry, { AbortError } from 'p-retry'
import type { EdgeConfig } from '../env/edge.ts'
import { InputError, PreconditionError, RunbookError } from '../report/errors.ts'

export interface CfContext {
  cf: Cloudflare
  edge: EdgeConfig
  /** How long to wait between retries (tests make it short). */
  retryMs: number
  attempts: number
}

export function cloudflareClient(
  edge: EdgeConfig,
  secrets: Record<string, string>,
  retryMs = 1000,
): CfContext {
  const token = secrets[edge.tokenSecret]
  if (!token)
    throw new InputError(
      `secret ${edge.tokenSecret} (the Cloudflare API token) is not set`,
      [],
      'Put it in the environment or env/<env>.secrets.env.',
    )
  return {
    cf: new Cloudflare({ apiToken: token, baseURL: edge.apiBase, maxRetries: 0, timeout: 30_000 }),
    edge,
    retryMs,
    attempts: 5,
  }
}

/** Runs one API call with retries; `what` names it in errors ("list DNS records of conciliaextrato.com"). */
export async function call<T>(ctx: CfContext, what: string, fn: (cf: Cloudflare) => Promise<T>): Promise<T> {
  return pRetry(
    async () => {
      try {
        return await fn(ctx.cf)
      } catch (err) {
        const mapped = describe(err, what, ctx.edge)
        if (mapped.retry) {
          const wait = mapped.retryAfterS !== undefined ? mapped.retryAfterS * 1000 : ctx.retryMs
          await new Promise((r) => setTimeout(r, Math.min(wait, 60_000)))
          throw mapped.error
        }
        throw new AbortError(mapped.error)
      }
    },
    { retries: ctx.attempts - 1, minTimeout: 0, maxTimeout: 0 },
  )
}

function describe(
  err: unknown,
  what: string,
  edge: EdgeConfig,
): { error: Error; retry: boolean; retryAfterS?: number } {
  if (err instanceof Cloudflare.APIConnectionError)
    return {
      error: new PreconditionError(
        `Cloudflare did not answer (${what}): ${err.message}`,
        `Check the network to ${edge.apiBase}.`,
      ),
      retry: true,
    }
  if (!(err instanceof Cloudflare.APIError)) return { error: err as Error, retry: false }
  const codes = apiErrors(err)
  const detail = codes.length ? codes.map((e) => `${e.code}: ${e.message}`).join('; ') : err.message
  const status = err.status
  if (status === 429) {
    const after = Number(err.headers?.get('retry-after'))
    return {
      error: new RunbookError(
        `Cloudflare rate-limited ${what} (429) and kept doing so`,
        1,
        'Wait a few minutes and run again; nothing was left half applied.',
      ),
      retry: true,
      retryAfterS: Number.isFinite(after) ? after : undefined,
    }
  }
  if (status !== undefined && status >= 500)
    return {
      error: new RunbookError(
        `Cloudflare failed ${what} (HTTP ${status}: ${detail})`,
        1,
        'Cloudflare is having trouble (https://www.cloudflarestatus.com); run again later.',
      ),
      retry: true,
    }
  if (status === 401 || status === 403 || codes.some((e) => [6003, 6111, 9109, 10000].includes(e.code)))
    return {
      error: new PreconditionError(
        `Cloudflare refused the token in ${edge.tokenSecret} for ${what} (HTTP ${status}: ${detail})`,
        `Make a token with Zone:DNS:Edit, Zone:Zone Settings:Edit and Zone:SSL and Certificates:Edit on ${edge.zone}, put it in ${edge.tokenSecret}.`,
      ),
      retry: false,
    }
  return {
    error: new RunbookError(`Cloudflare refused ${what} (HTTP ${status}: ${detail})`, 1),
    retry: false,
  }
}

function apiErrors(err: InstanceType<typeof Cloudflare.APIError>): { code: number; message: string }[] {
  const body = err.error as { errors?: { code: number; message: string }[] } | undefined
  return Array.isArray(body?.errors) ? body.errors : []
}

/** The zone's id, or a clear error when the token cannot see it. */
export async function zoneId(ctx: CfContext): Promise<string> {
  const page = await call(ctx, `find zone ${ctx.edge.zone}`, (cf) => cf.zones.list({ name: ctx.edge.zone }))
  const zone = page.result.find((z) => z.name === ctx.edge.zone)
  if (!zone)
    throw new PreconditionError(
      `zone ${ctx.edge.zone} is not in this Cloudflare account (or the token cannot see it)`,
      `Check edge.zone in the env file, and that the token in ${ctx.edge.tokenSecret} is scoped to ${ctx.edge.zone}.`,
    )
  return zone.id
}

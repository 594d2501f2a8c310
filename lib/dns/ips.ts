/**
 * Cloudflare's published ranges (the API's `/ips`): the firewall lets only them reach 80/443 and
 * nginx trusts CF-Connecting-IP only from them. When Cloudflare's list changes (its etag moves), the
 * env file's setup.firewall.cloudflare_ips is rewritten (comments kept); setup-server applies it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parseDocument } from 'yaml'
import type { Env } from '../env/load.ts'
import { type CfContext, call } from './cloudflare.ts'
import type { Change } from './plan.ts'

/** Per env, in .cache/ (git-ignored) or CE_CACHE_DIR. */
function cacheFile(env: string): string {
  const dir = process.env.CE_CACHE_DIR ?? resolve(import.meta.dirname, '..', '..', '.cache')
  return resolve(dir, `cloudflare-ips-${env}.json`)
}

interface Cached {
  etag: string
  ranges: string[]
}

export async function planIps(ctx: CfContext, env: Env): Promise<{ etag: string; change?: Change }> {
  const ips = (await call(ctx, "read Cloudflare's IP ranges", (cf) => cf.ips.list())) as {
    ipv4_cidrs?: string[]
    ipv6_cidrs?: string[]
    etag?: string
  }
  const etag = ips.etag ?? ''
  const ranges = [...(ips.ipv4_cidrs ?? []), ...(ips.ipv6_cidrs ?? [])]
  const cache = cacheFile(env.name)
  const cached = readCache(cache)
  const current = env.setup.firewall.cloudflareIps
  // The same etag as last time and the env already matching: nothing to look at.
  if (cached?.etag === etag && same(cached.ranges, current)) return { etag }
  writeCache(cache, { etag, ranges })
  if (env.setup.firewall.httpFrom !== 'cloudflare' || same(ranges, current)) return { etag }
  const added = ranges.filter((r) => !current.includes(r))
  const removed = current.filter((r) => !ranges.includes(r))
  const original = readFileSync(env.file, 'utf8')
  return {
    etag,
    change: {
      kind: 'setting',
      target: `setup.firewall.cloudflare_ips in ${env.file}`,
      from: removed.length ? `- ${removed.join(' ')}` : `${current.length} ranges`,
      to: added.length ? `+ ${added.join(' ')}` : `${ranges.length} ranges`,
      async apply() {
        // An env pointed elsewhere by an override file: the committed file is never rewritten from it.
        if (env.overridden)
          throw new Error(
            `Cloudflare's ranges differ from ${env.file}, and this run's addresses come from ${env.overridden}: not rewriting the env file; update setup.firewall.cloudflare_ips by a run without the override`,
          )
        writeFileSync(env.file, withRanges(original, ranges))
        this.undo = async () => writeFileSync(env.file, original)
      },
    },
  }
}

/** The env file's text with setup.firewall.cloudflare_ips replaced; comments and layout kept. */
export function withRanges(text: string, ranges: string[]): string {
  const doc = parseDocument(text)
  doc.setIn(['setup', 'firewall', 'cloudflare_ips'], doc.createNode(ranges))
  return doc.toString()
}

function same(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join()
}

function readCache(file: string): Cached | undefined {
  try {
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Cached) : undefined
  } catch {
    return undefined
  }
}

function writeCache(file: string, value: Cached): void {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`)
}

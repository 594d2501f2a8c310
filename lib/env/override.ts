import { existsSync, readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { InputError } from '../report/errors.ts'

/**
 * CE_ENV_OVERRIDE=<file>: the committed env file, pointed at other machines. Only where things are
 * may change — host addresses, SSH ports and host keys, API endpoints, the registry's address, the
 * DNS resolver of the edge checks, the age keys that read the secrets file — never what the env does
 * (TLS, origin pulls, notify, which secrets...).
 * The rehearsal uses it to run the committed staging and production files on the sandbox. A `{env}`
 * in the path is the env's name: one file per env, when a run loads two (promote_from).
 */
export const OVERRIDE_VAR = 'CE_ENV_OVERRIDE'

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Where an override may write, as paths with `*` for a host name. */
const ALLOWED: Record<string, string> = {
  'hosts.*.address': 'a host address',
  'hosts.*.ssh_port': 'a host SSH port',
  'hosts.*.http_port': 'a host HTTP port',
  'hosts.*.host_key': 'a host key',
  'hosts.*.private_address': 'a host private address',
  'hosts.*.scan_address': "a host's port scan address",
  'edge.api_base': 'the Cloudflare API endpoint',
  'droplet.api_base': 'the DigitalOcean API endpoint',
  'backup.store.endpoint': 'the backup store endpoint',
  'status_page.store.endpoint': "the status page store's endpoint",
  'error_tracking.api': 'the error tracking service (Sentry-compatible) endpoint',
  'heartbeat.api': 'the Healthchecks API endpoint',
  'images.registry.server': "the registry's address",
  'health.edge_resolver': 'the DNS resolver of the edge checks',
  // Where Cloudflare's edge connects from (its published ranges; in the sandbox, the edge stand-in's).
  'setup.firewall.cloudflare_ips': "the edge's addresses",
  // Whose age keys read env/<env>.secrets.age: keys, like host keys (the team's are not on this machine).
  secrets_recipients: 'the age public keys that read the secrets file',
}

function leaves(value: unknown, path: string[] = []): { path: string[]; value: unknown }[] {
  if (!isObj(value) || ALLOWED[pattern(path)]) return [{ path, value }]
  return Object.entries(value).flatMap(([k, v]) => leaves(v, [...path, k]))
}

function pattern(path: string[]): string {
  return path.map((p, i) => (path[0] === 'hosts' && i === 1 ? '*' : p)).join('.')
}

/** The env file's parsed YAML with the override applied; every problem named, nothing applied on one. */
export function applyOverride(raw: unknown, envFile: string, overrideFile: string): unknown {
  if (!existsSync(overrideFile))
    throw new InputError(
      `${OVERRIDE_VAR}=${overrideFile}: no such file`,
      [],
      `Unset ${OVERRIDE_VAR} or fix the path.`,
    )
  const over = parseYaml(readFileSync(overrideFile, 'utf8')) as unknown
  const doc = structuredClone(raw) as Obj
  const problems: string[] = []
  const hosts = Array.isArray(doc.hosts) ? (doc.hosts as Obj[]) : []
  for (const { path, value } of isObj(over) ? leaves(over) : [{ path: ['(top level)'], value: over }]) {
    const where = `${overrideFile}: ${path.join('.')}`
    if (!ALLOWED[pattern(path)]) {
      problems.push(
        `${where}: may not be overridden (only addresses, host keys and API endpoints: ${Object.keys(ALLOWED).join(', ')})`,
      )
      continue
    }
    const list = Array.isArray(value) && value.every((x) => typeof x === 'string')
    if (typeof value !== 'string' && typeof value !== 'number' && !list) {
      problems.push(`${where}: expected a value, got ${JSON.stringify(value)}`)
      continue
    }
    if (path[0] === 'hosts') {
      const host = hosts.find((h) => h.name === path[1])
      if (!host) problems.push(`${where}: ${envFile} has no host named ${path[1]}`)
      else host[path[2] ?? ''] = value
      continue
    }
    if (pattern(path) === 'images.registry.server') {
      const images = isObj(doc.images) ? doc.images : {}
      const registry = isObj(images.registry) ? images.registry : undefined
      if (!registry) {
        problems.push(`${where}: ${envFile} has no images.registry`)
        continue
      }
      // The image names follow their registry: ghcr.io/org/site becomes <server>/org/site.
      const old = String(registry.server)
      for (const [k, v] of Object.entries(images))
        if (typeof v === 'string' && v.startsWith(`${old}/`))
          images[k] = `${value}/${v.slice(old.length + 1)}`
      registry.server = value
      continue
    }
    let at: Obj = doc
    for (const key of path.slice(0, -1)) {
      if (!isObj(at[key])) at[key] = {}
      at = at[key] as Obj
    }
    at[path[path.length - 1] ?? ''] = value
  }
  if (problems.length)
    throw new InputError(
      `${overrideFile} (${OVERRIDE_VAR}) has ${problems.length} problem(s):`,
      problems,
      `An override points ${envFile} at other machines and changes nothing else. Fix it and run again.`,
    )
  return doc
}

/** Droplets and SSH keys of the DigitalOcean API double: create-request validation and JSON views. */
import { createHash } from 'node:crypto'
import {
  IMAGES,
  type Image,
  imageView,
  REGIONS,
  regionView,
  resolveRegion,
  SIZES,
  type Size,
  sizeView,
} from './digitalocean-catalog.ts'

export interface SshKey {
  id: number
  name: string
  public_key: string
  fingerprint: string
}

/** DigitalOcean identifies keys by the MD5 fingerprint of the key blob, as `ssh-keygen -E md5` shows it. */
export function md5Fingerprint(publicKey: string): string {
  const blob = publicKey.trim().split(/\s+/)[1]
  if (!blob) throw new Error(`not an OpenSSH public key: ${publicKey}`)
  const hex = createHash('md5').update(Buffer.from(blob, 'base64')).digest('hex')
  return hex.match(/../g)?.join(':') ?? hex
}

/** What the provisioner hooks receive: the droplet as requested, with its SSH keys resolved. */
export interface DropletSpec {
  id: number
  name: string
  region: string
  size: string
  image: string
  tags: string[]
  sshKeys: SshKey[]
  userData: string | undefined
  ipv6: boolean
}

export interface Droplet {
  spec: DropletSpec
  status: 'new' | 'active' | 'off' | 'archive'
  created_at: string
  ip?: string
  ipv6Address?: string
  privateIp: string
  vpc_uuid: string
  image: Image
  sizeInfo: Size
  monitoring: boolean
  backups: boolean
}

export class Unprocessable extends Error {}

export interface Action {
  id: number
  status: 'in-progress' | 'completed' | 'errored'
  type: 'create' | 'destroy' | 'shutdown' | 'power_off' | 'power_on' | 'snapshot'
  started_at: string
  completed_at: string | null
  resource_id: number
  resource_type: 'droplet'
  region_slug: string
}

/** Timestamps the way the API prints them: `2024-05-01T10:11:12Z`. */
export const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z')

const HOSTNAME = /^[a-zA-Z0-9.-]{1,255}$/
const TAG = /^[a-zA-Z0-9_:-]{1,255}$/

export interface CreateRequest {
  names: string[]
  region: string
  size: Size
  image: Image
  tags: string[]
  sshKeys: SshKey[]
  userData: string | undefined
  ipv6: boolean
  monitoring: boolean
  backups: boolean
  vpcUuid: string | undefined
}

function optionalBoolean(body: Record<string, unknown>, key: string): boolean {
  const value = body[key] ?? false
  if (typeof value !== 'boolean') throw new Unprocessable(`${key} must be a boolean`)
  return value
}

/** Validates `POST /v2/droplets` (name or names, size and image required; region optional). */
export function parseCreate(
  body: Record<string, unknown>,
  keys: SshKey[],
  images: Image[] = IMAGES,
): CreateRequest {
  let names: unknown[]
  if (body.names !== undefined) {
    if (!Array.isArray(body.names) || body.names.length === 0 || body.names.length > 10)
      throw new Unprocessable('names must be an array of 1 to 10 droplet names')
    names = body.names
  } else if (body.name === undefined || body.name === '') throw new Unprocessable('Name is required.')
  else names = [body.name]
  for (const name of names)
    if (typeof name !== 'string' || !HOSTNAME.test(name))
      throw new Unprocessable('Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)')
  if (body.size === undefined) throw new Unprocessable('Size is required.')
  const size = SIZES.find((s) => s.slug === body.size)
  if (!size) throw new Unprocessable('You specified an invalid size for Droplet creation.')
  if (body.image === undefined) throw new Unprocessable('Image is required.')
  const image = images.find((i) => (i.slug !== null && i.slug === body.image) || i.id === body.image)
  if (!image) throw new Unprocessable('You specified an invalid image for Droplet creation.')
  let region = Object.keys(REGIONS)[0] ?? 'nyc3'
  if (body.region !== undefined) {
    const resolved = typeof body.region === 'string' ? resolveRegion(body.region) : undefined
    if (!resolved) throw new Unprocessable('You specified an invalid region for Droplet creation.')
    region = resolved
  }
  if (image.snapshot && !image.snapshot.regions.includes(region))
    throw new Unprocessable(`The image ${image.id} is not available in the region ${region}.`)
  const rawKeys = body.ssh_keys ?? []
  if (!Array.isArray(rawKeys)) throw new Unprocessable('ssh_keys must be an array')
  const sshKeys = rawKeys.map((ref) => {
    const key = keys.find((k) => k.id === ref || k.fingerprint === ref)
    if (!key) throw new Unprocessable(`SSH key ${String(ref)} could not be found.`)
    return key
  })
  const tags = body.tags ?? []
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string' && TAG.test(t)))
    throw new Unprocessable(
      'tags must be an array of names of letters, numbers, colons, dashes and underscores (at most 255)',
    )
  const userData = body.user_data
  if (userData !== undefined && (typeof userData !== 'string' || Buffer.byteLength(userData) > 65_536))
    throw new Unprocessable('user_data must be a string of at most 64 KiB')
  if (body.vpc_uuid !== undefined && typeof body.vpc_uuid !== 'string')
    throw new Unprocessable('vpc_uuid must be a string')
  return {
    names: names as string[],
    region,
    size,
    image,
    tags: tags as string[],
    sshKeys,
    userData: userData as string | undefined,
    ipv6: optionalBoolean(body, 'ipv6'),
    monitoring: optionalBoolean(body, 'monitoring'),
    backups: optionalBoolean(body, 'backups'),
    vpcUuid: body.vpc_uuid as string | undefined,
  }
}

export function dropletView(d: Droplet) {
  const gateway = (ip: string) => ip.replace(/\.\d+$/, '.1')
  const v4 = [
    { ip_address: d.privateIp, netmask: '255.255.240.0', gateway: 'nil', type: 'private' },
    ...(d.ip ? [{ ip_address: d.ip, netmask: '255.255.240.0', gateway: gateway(d.ip), type: 'public' }] : []),
  ]
  const v6 = d.ipv6Address
    ? [
        {
          ip_address: d.ipv6Address,
          netmask: 64,
          gateway: d.ipv6Address.replace(/:[^:]*$/, ':1'),
          type: 'public',
        },
      ]
    : []
  const features = ['droplet_agent', 'private_networking']
  if (d.spec.ipv6) features.push('ipv6')
  if (d.monitoring) features.push('monitoring')
  if (d.backups) features.push('backups')
  return {
    id: d.spec.id,
    name: d.spec.name,
    memory: d.sizeInfo.memory,
    vcpus: d.sizeInfo.vcpus,
    disk: d.sizeInfo.disk,
    locked: false,
    status: d.status,
    kernel: null,
    created_at: d.created_at,
    features,
    backup_ids: [],
    next_backup_window: null,
    snapshot_ids: [],
    image: imageView(d.image),
    volume_ids: [],
    size: sizeView(d.sizeInfo),
    size_slug: d.sizeInfo.slug,
    networks: d.status === 'new' ? { v4: [], v6: [] } : { v4, v6 },
    region: regionView(d.spec.region),
    tags: d.spec.tags,
    vpc_uuid: d.vpc_uuid,
  }
}

export function newDroplet(id: number, name: string, req: CreateRequest, defaultVpc: string): Droplet {
  return {
    spec: {
      id,
      name,
      region: req.region,
      size: req.size.slug,
      image: req.image.slug ?? String(req.image.id),
      tags: req.tags,
      sshKeys: req.sshKeys,
      userData: req.userData,
      ipv6: req.ipv6,
    },
    status: 'new',
    created_at: now(),
    privateIp: `10.116.${(id >> 8) & 255}.${id & 255}`,
    vpc_uuid: req.vpcUuid ?? defaultVpc,
    image: req.image,
    sizeInfo: req.size,
    monitoring: req.monitoring,
    backups: req.backups,
  }
}

/** `page`/`per_page` (default 20, max 200) with `links.pages` (first/prev/next/last) and `meta.total`. */
export function pageBody<T>(items: T[], query: URLSearchParams, url: string, key: string, keep: string[]) {
  const int = (name: string, fallback: number) => {
    const n = Number(query.get(name) ?? fallback)
    return Number.isInteger(n) && n > 0 ? n : fallback
  }
  const perPage = Math.min(200, int('per_page', 20))
  const page = int('page', 1)
  const last = Math.max(1, Math.ceil(items.length / perPage))
  const href = (p: number) => {
    const q = new URLSearchParams({ page: String(p), per_page: String(perPage) })
    for (const k of keep) {
      const v = query.get(k)
      if (v !== null) q.set(k, v)
    }
    return `${url}?${q}`
  }
  const pages: Record<string, string> = {}
  if (page > 1) Object.assign(pages, { first: href(1), prev: href(Math.min(page - 1, last)) })
  if (page < last) Object.assign(pages, { next: href(page + 1), last: href(last) })
  return {
    [key]: items.slice((page - 1) * perPage, page * perPage),
    links: Object.keys(pages).length ? { pages } : {},
    meta: { total: items.length },
  }
}

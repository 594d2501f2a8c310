import type { Validator } from './validate.ts'

// The `droplet:` section of an env file: what `make emergency CREATE=1` asks DigitalOcean for.
export interface DropletConfig {
  /** The secret holding a DigitalOcean token with droplet create/read scopes. */
  tokenSecret: string
  apiBase: string
  /** Droplet names are <name_prefix>-<yyyymmdd-hhmm>. */
  namePrefix: string
  region: string
  size: string
  image: string
  /** Account SSH keys (ids or MD5 fingerprints) that may log in as root on the new droplet. */
  sshKeys: string[]
  tags: string[]
  ipv6: boolean
  monitoring: boolean
  /** How long the droplet may take to become active. */
  activeTimeoutS: number
  /** make image keeps this many golden images (<name_prefix>-golden-*), deleting older ones. */
  imagesKeep: number
}

const TAG = /^[A-Za-z0-9:_-]{1,255}$/
const numbersAsText = (v: unknown) =>
  Array.isArray(v) ? v.map((k) => (typeof k === 'number' ? String(k) : k)) : v

export function readDroplet(v: Validator, raw: unknown, envName: string): DropletConfig | undefined {
  if (raw === undefined || raw === null) return undefined
  const d = v.object(raw, 'droplet', [
    'token_secret',
    'api_base',
    'name_prefix',
    'region',
    'size',
    'image',
    'ssh_keys',
    'tags',
    'ipv6',
    'monitoring',
    'active_timeout_s',
    'images_keep',
  ])
  const slug = (key: string, form: string) =>
    v.string(d, key, 'droplet', { pattern: /^[a-z0-9][a-z0-9.-]*$/, form }) ?? ''
  return {
    tokenSecret:
      v.string(d, 'token_secret', 'droplet', {
        default: 'DIGITALOCEAN_TOKEN',
        pattern: /^[A-Z][A-Z0-9_]{1,63}$/,
        form: 'a secret NAME',
      }) ?? 'DIGITALOCEAN_TOKEN',
    apiBase:
      v.string(d, 'api_base', 'droplet', {
        default: 'https://api.digitalocean.com',
        pattern: /^https?:\/\/[^\s/]+$/,
        form: 'a URL without a path, like https://api.digitalocean.com',
      }) ?? '',
    namePrefix:
      v.string(d, 'name_prefix', 'droplet', {
        default: `ce-${envName}`,
        pattern: /^[a-z][a-z0-9-]{0,40}$/,
        form: 'a short lower-case prefix',
      }) ?? `ce-${envName}`,
    region: slug('region', 'a region slug like nyc3'),
    size: slug('size', 'a size slug like s-2vcpu-4gb'),
    image: slug('image', 'an image slug like debian-12-x64'),
    // YAML reads a key id as a number: ids are compared as text.
    sshKeys: v.stringList({ ssh_keys: numbersAsText(d?.ssh_keys) }, 'ssh_keys', 'droplet', {
      min: 1,
      pattern: /^(\d+|([0-9a-f]{2}:){15}[0-9a-f]{2})$/,
      form: 'an SSH key id or MD5 fingerprint from the DigitalOcean account',
    }),
    tags: v.stringList(d, 'tags', 'droplet', { optional: true, pattern: TAG, form: 'a tag name' }),
    ipv6: v.boolean(d, 'ipv6', 'droplet', false),
    monitoring: v.boolean(d, 'monitoring', 'droplet', true),
    activeTimeoutS: v.integer(d, 'active_timeout_s', 'droplet', { min: 10, max: 1800, default: 300 }) ?? 300,
    imagesKeep: v.integer(d, 'images_keep', 'droplet', { min: 1, max: 20, default: 3 }) ?? 3,
  }
}

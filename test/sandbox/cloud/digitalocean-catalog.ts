/** The slice of DigitalOcean's catalog (regions, sizes, images) the DigitalOcean API double knows. */

export const REGIONS: Record<string, string> = {
  nyc1: 'New York 1',
  nyc3: 'New York 3',
  sfo3: 'San Francisco 3',
  ams3: 'Amsterdam 3',
  fra1: 'Frankfurt 1',
  lon1: 'London 1',
  sgp1: 'Singapore 1',
  tor1: 'Toronto 1',
  blr1: 'Bangalore 1',
  syd1: 'Sydney 1',
}

export interface Size {
  slug: string
  memory: number
  vcpus: number
  disk: number
  transfer: number
  price_monthly: number
  description: string
}

export const SIZES: Size[] = [
  {
    slug: 's-1vcpu-512mb-10gb',
    memory: 512,
    vcpus: 1,
    disk: 10,
    transfer: 0.5,
    price_monthly: 4,
    description: 'Basic',
  },
  {
    slug: 's-1vcpu-1gb',
    memory: 1024,
    vcpus: 1,
    disk: 25,
    transfer: 1,
    price_monthly: 6,
    description: 'Basic',
  },
  {
    slug: 's-1vcpu-2gb',
    memory: 2048,
    vcpus: 1,
    disk: 50,
    transfer: 2,
    price_monthly: 12,
    description: 'Basic',
  },
  {
    slug: 's-2vcpu-2gb',
    memory: 2048,
    vcpus: 2,
    disk: 60,
    transfer: 3,
    price_monthly: 18,
    description: 'Basic',
  },
  {
    slug: 's-2vcpu-4gb',
    memory: 4096,
    vcpus: 2,
    disk: 80,
    transfer: 4,
    price_monthly: 24,
    description: 'Basic',
  },
  {
    slug: 's-4vcpu-8gb',
    memory: 8192,
    vcpus: 4,
    disk: 160,
    transfer: 5,
    price_monthly: 48,
    description: 'Basic',
  },
]

export interface Image {
  id: number
  /** null for a snapshot (a private image is taken by its id). */
  slug: string | null
  name: string
  distribution: string
  /** A snapshot of a droplet (make image): private, in the regions it was taken in. */
  snapshot?: { createdAt: string; regions: string[]; sizeGb: number }
}

export const IMAGES: Image[] = [
  { id: 168_716_005, slug: 'ubuntu-24-04-x64', name: '24.04 (LTS) x64', distribution: 'Ubuntu' },
  { id: 129_211_873, slug: 'ubuntu-22-04-x64', name: '22.04 (LTS) x64', distribution: 'Ubuntu' },
  { id: 152_034_001, slug: 'debian-12-x64', name: '12 x64', distribution: 'Debian' },
]

/** A region slug, or a prefix such as `nyc` that means "any nyc datacenter". */
export function resolveRegion(slug: string): string | undefined {
  if (REGIONS[slug]) return slug
  return Object.keys(REGIONS).find((r) => r.replace(/\d+$/, '') === slug)
}

export function regionView(slug: string) {
  return {
    name: REGIONS[slug] ?? slug,
    slug,
    features: ['backups', 'ipv6', 'metadata', 'install_agent', 'storage', 'image_transfer'],
    available: true,
    sizes: SIZES.map((s) => s.slug),
  }
}

export function sizeView(size: Size) {
  return {
    ...size,
    price_hourly: Math.round((size.price_monthly / 672) * 100_000) / 100_000,
    regions: Object.keys(REGIONS),
    available: true,
  }
}

export function imageView(image: Image) {
  const { snapshot, ...rest } = image
  return {
    ...rest,
    public: !snapshot,
    regions: snapshot?.regions ?? Object.keys(REGIONS),
    created_at: snapshot?.createdAt ?? '2024-04-25T00:00:00Z',
    type: snapshot ? 'snapshot' : 'base',
    min_disk_size: snapshot ? 25 : 7,
    size_gigabytes: snapshot?.sizeGb ?? 2.36,
    description: snapshot ? '' : `${image.distribution} ${image.name}`,
    tags: [],
    status: 'available',
  }
}

/** `GET /v2/snapshots` shows a droplet snapshot this way (its id as a string there). */
export function snapshotView(image: Image, resourceId: number) {
  return {
    id: String(image.id),
    name: image.name,
    created_at: image.snapshot?.createdAt,
    regions: image.snapshot?.regions ?? [],
    resource_id: String(resourceId),
    resource_type: 'droplet',
    min_disk_size: 25,
    size_gigabytes: image.snapshot?.sizeGb ?? 0,
    tags: [],
  }
}

import { existsSync, readFileSync } from 'node:fs'
import { $ } from 'zx'

// The local Docker engine that hosts the sandbox droplets: started by us when it is not running.
export const sh = $({ quiet: true })

export async function dockerRunning(): Promise<boolean> {
  return (await sh`docker info --format '{{.ServerVersion}}'`.nothrow()).exitCode === 0
}

export async function ensureDockerEngine(): Promise<void> {
  if (await dockerRunning()) return
  const dockerd = (await sh`command -v dockerd`.nothrow()).stdout.trim()
  if (!dockerd) {
    throw new Error(
      'No Docker engine is running and dockerd is not installed: run `make deps` (apt-get install docker.io) as root.',
    )
  }
  if (process.getuid?.() !== 0)
    throw new Error(
      'The Docker engine is not running; start it (sudo systemctl start docker) or run as root.',
    )
  process.stdout.write('sandbox: starting dockerd (log: /var/log/dockerd.log)\n')
  await sh`nohup ${dockerd} > /var/log/dockerd.log 2>&1 &`
  for (let i = 0; i < 60; i++) {
    if (await dockerRunning()) return
    await new Promise((r) => setTimeout(r, 1000))
  }
  throw new Error('dockerd did not answer within 60 s: see /var/log/dockerd.log')
}

/**
 * The Debian mirror the sandbox builds from: SANDBOX_DEBIAN_MIRROR, else the one this machine's
 * apt already uses (so nothing but Debian's own package registry is ever contacted).
 */
export function debianMirror(): string {
  if (process.env.SANDBOX_DEBIAN_MIRROR) return process.env.SANDBOX_DEBIAN_MIRROR
  for (const file of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    if (!existsSync(file)) continue
    const text = readFileSync(file, 'utf8')
    const deb822 = /^URIs:\s*(\S+)\s*\nSuites:[^\n]*\bbookworm\b/m.exec(text)
    if (deb822?.[1]) return deb822[1]
    const line = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/m.exec(text)
    if (line?.[1]) return line[1]
  }
  throw new Error(
    'No Debian 12 (bookworm) mirror found in /etc/apt: set SANDBOX_DEBIAN_MIRROR to a Debian mirror URL.',
  )
}

import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'

// Where `make sandbox` records its droplets, so env/local.yaml can find them.
export const SANDBOX_DIR = resolve(
  process.env.SANDBOX_DIR ?? resolve(import.meta.dirname, '..', '..', '.sandbox'),
)
export const SANDBOX_STATE = resolve(SANDBOX_DIR, 'droplets.json')

export interface SandboxDroplet {
  name: string
  container: string
  ip: string
  ports: { ssh: number; http: number; https: number }
  hostKey: string
}

export function readSandboxDroplets(file = SANDBOX_STATE): SandboxDroplet[] {
  if (!existsSync(file)) return []
  return (JSON.parse(readFileSync(file, 'utf8')) as { droplets: SandboxDroplet[] }).droplets
}

import { existsSync, readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import ssh2 from 'ssh2'
import { fingerprintOfPublicKeyLine } from './fingerprint.ts'
import type { Validator } from './validate.ts'

// The parts of an env file that setup-server reads: who may log in, sudo, firewall, swap.
export interface DeployKey {
  line: string
  fingerprint: string
}

export interface SetupConfig {
  /** Public keys allowed to log in as the deploy user (the team's and CI's). */
  deployKeys: DeployKey[]
  /**
   * Secrets holding private keys whose public halves may log in too (`{ of_secret: SSH_PRIVATE_KEY }`:
   * CI's deploy key, whichever it is now; derived when setup-server runs, lib/setup/keys.ts).
   */
  deployKeySecrets: string[]
  /**
   * 'all' (passwordless sudo), 'none', 'runbooks' (only the root commands the runbooks run:
   * RUNBOOK_SUDO in lib/commands/users.ts), or the only commands deploy may run with sudo.
   */
  deploySudo: 'all' | 'none' | 'runbooks' | string[]
  swapMb: number
  /** CIDRs fail2ban never bans (the office, a bastion); this runbook's own address is added per run. */
  fail2banIgnore: string[]
  firewall: {
    /** CIDRs allowed to reach SSH; empty means from anywhere. */
    sshFrom: string[]
    /** 'cloudflare': 80/443 only from Cloudflare's ranges; 'anywhere': the sandbox and tests. */
    httpFrom: 'cloudflare' | 'anywhere'
    cloudflareIps: string[]
  }
}

const KEY_TYPES = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
]
const CIDR = /^((\d{1,3}\.){3}\d{1,3}(\/\d{1,2})?|[0-9a-fA-F:]+(\/\d{1,3})?)$/

export function readSetup(v: Validator, raw: unknown, envFile: string): SetupConfig {
  const s = v.object(raw ?? {}, 'setup', [
    'deploy_keys',
    'deploy_sudo',
    'swap_mb',
    'fail2ban_ignore',
    'firewall',
  ])
  const entries = v.list(s, 'deploy_keys', 'setup', { min: 1 })
  const ofSecret = (e: unknown) => typeof e === 'object' && e !== null && 'of_secret' in e
  const deployKeys = entries.flatMap((entry, i) => {
    if (ofSecret(entry)) return []
    const key = readDeployKey(v, entry, `setup.deploy_keys[${i}]`, envFile)
    return key ? [key] : []
  })
  const deployKeySecrets = entries.flatMap((entry, i) => {
    if (!ofSecret(entry)) return []
    const obj = v.object(entry, `setup.deploy_keys[${i}]`, ['of_secret'])
    const name = v.string(obj, 'of_secret', `setup.deploy_keys[${i}]`, {
      pattern: /^[A-Z][A-Z0-9_]{1,63}$/,
      form: 'the NAME of a secret holding a private key',
    })
    return name ? [name] : []
  })
  const sudoRaw = s?.deploy_sudo ?? 'all'
  let deploySudo: SetupConfig['deploySudo'] = 'all'
  if (Array.isArray(sudoRaw))
    deploySudo = v.stringList(s, 'deploy_sudo', 'setup', {
      pattern: /^\/\S.*$/,
      form: 'an absolute command path with its arguments',
    })
  else
    deploySudo = (v.string(s, 'deploy_sudo', 'setup', {
      default: 'all',
      oneOf: ['all', 'runbooks', 'none'],
    }) ?? 'all') as 'all' | 'runbooks' | 'none'
  const fw = v.object(s?.firewall ?? {}, 'setup.firewall', ['ssh_from', 'http_from', 'cloudflare_ips'])
  const httpFrom = (v.string(fw, 'http_from', 'setup.firewall', {
    default: 'cloudflare',
    oneOf: ['cloudflare', 'anywhere'],
  }) ?? 'cloudflare') as 'cloudflare' | 'anywhere'
  const cidr = { pattern: CIDR, form: 'a CIDR like 203.0.113.0/24 or 2400:cb00::/32' }
  const cloudflareIps = v.stringList(fw, 'cloudflare_ips', 'setup.firewall', { ...cidr, optional: true })
  if (httpFrom === 'cloudflare' && cloudflareIps.length === 0) {
    v.problem(
      'setup.firewall.cloudflare_ips',
      "http_from is cloudflare, so list Cloudflare's ranges here (`make dns` refreshes them)",
    )
  }
  return {
    deployKeys,
    deployKeySecrets,
    deploySudo,
    swapMb: v.integer(s, 'swap_mb', 'setup', { min: 0, max: 65536, default: 0 }) ?? 0,
    fail2banIgnore: v.stringList(s, 'fail2ban_ignore', 'setup', { ...cidr, optional: true }),
    firewall: {
      sshFrom: v.stringList(fw, 'ssh_from', 'setup.firewall', { ...cidr, optional: true }),
      httpFrom,
      cloudflareIps,
    },
  }
}

/** A public key line, or `{ file: path }` (relative to the repository), checked to really be a key. */
function readDeployKey(v: Validator, entry: unknown, path: string, envFile: string): DeployKey | undefined {
  let line: string
  if (typeof entry === 'string') line = entry.trim()
  else {
    const obj = v.object(entry, path, ['file'])
    const file = v.string(obj, 'file', path, { form: 'a path to a .pub file' })
    if (!file) return undefined
    const full = resolve(dirname(envFile), '..', file)
    if (!existsSync(full)) {
      v.problem(`${path}.file`, `${full} does not exist`)
      return undefined
    }
    line = readFileSync(full, 'utf8').trim()
  }
  const [type, blob] = line.split(/\s+/)
  const form = 'an SSH public key line like "ssh-ed25519 AAAAC3Nza... name@laptop"'
  if (!type || !KEY_TYPES.includes(type) || !blob || !/^[A-Za-z0-9+/]+={0,3}$/.test(blob)) {
    v.problem(path, `expected ${form}, got ${JSON.stringify(line.slice(0, 40))}`)
    return undefined
  }
  const parsed = ssh2.utils.parseKey(line)
  if (parsed instanceof Error || (Array.isArray(parsed) ? parsed[0]?.type : parsed.type) !== type) {
    v.problem(
      path,
      `the key data does not match its type ${type} (truncated or pasted wrong?); expected ${form}`,
    )
    return undefined
  }
  return { line, fingerprint: fingerprintOfPublicKeyLine(line) }
}

// The env's vocabulary: the words every floor above uses. The section files build on these, never on load.ts.
export type EnvKind = 'production' | 'staging' | 'local'
export const SERVICES = ['site', 'saas', 'api'] as const
export type Service = (typeof SERVICES)[number]

export interface Host {
  name: string
  address: string
  sshPort: number
  /** The port this machine reaches the host's plain HTTP (nginx's 80: an env without an edge) on: 80, or a port published in the sandbox. */
  httpPort?: number
  /** SHA256 fingerprint as `ssh-keygen -lf` prints it: SHA256:<base64 without padding>. */
  hostKey: string
  roles: string[]
  /** The address the env's other hosts reach it on (a DigitalOcean VPC address); default: address. */
  privateAddress?: string
  /** Where an outside port scan of the host goes (make security-scan), when `address` is not the host's own
   * (the sandbox's published ports on this machine's loopback); default: address. */
  scanAddress?: string
}

export interface SshKeySource {
  file?: string
  secret?: string
  agent?: boolean
}

/** Where hosts pull images from (delivery: registry), and how they log in to it. */
export interface RegistryConfig {
  /** host[:port], e.g. ghcr.io */
  server: string
  username?: string
  /** The secret holding the password or token (GHCR: a token with read:packages). */
  passwordSecret?: string
  /** Plain HTTP (sandbox registries only): added to the hosts' Docker insecure-registries. */
  insecure: boolean
}

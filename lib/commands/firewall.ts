import { BlockList, isIPv6 } from 'node:net'
import type { SetupConfig } from '../env/setup.ts'
import { quote } from './shell.ts'

// ufw: deny incoming by default; SSH first (never enable without it); 80/443 only from Cloudflare.

/** A single address as ufw prints it: 198.51.100.7/32 is shown as 198.51.100.7 (and /128 likewise). */
export function ufwSource(cidr: string): string {
  return cidr.replace(/^(\d+\.\d+\.\d+\.\d+)\/32$/, '$1').replace(/^([0-9a-fA-F:]+)\/128$/, '$1')
}

/**
 * The rules, exactly as `ufw show added` prints them, so the desired and live sets compare as strings.
 * `sshPorts`: the ports sshd listens on (hosts.*.ssh_port may be 2222): each is opened, never a fixed 22.
 */
export function desiredUfwRules(fw: SetupConfig['firewall'], sshPorts: number[] = [22]): string[] {
  const ssh = sshPorts.flatMap((port) =>
    fw.sshFrom.length
      ? fw.sshFrom.map(
          (cidr) => `ufw allow from ${ufwSource(cidr)} to any port ${port} proto tcp comment 'ssh'`,
        )
      : [`ufw allow ${port}/tcp comment 'ssh'`],
  )
  const web =
    fw.httpFrom === 'anywhere'
      ? [`ufw allow 80,443/tcp comment 'web'`]
      : fw.cloudflareIps.map(
          (cidr) => `ufw allow from ${ufwSource(cidr)} to any port 80,443 proto tcp comment 'cloudflare'`,
        )
  return [...ssh, ...web]
}

/**
 * Swarm's ports, open only to the env's other swarm nodes: 2377/tcp (cluster management), 7946/tcp+udp
 * (gossip), 4789/udp (overlay VXLAN) and, for an encrypted overlay, ESP (IP protocol 50). And the
 * tasks' host-mode ports (`taskPorts`, e.g. 18101:18103): Docker's NAT sends a connection to a running
 * task past ufw, but while Swarm replaces a task there is no NAT rule, and ufw's default deny would
 * drop the other node's nginx silently (a 2 s connect timeout per request); allowed, it is refused at
 * once and nginx moves on to another node.
 */
export function swarmUfwRules(peers: string[], taskPorts?: string): string[] {
  return peers.flatMap((p) => [
    `ufw allow from ${p} to any port 2377 proto tcp comment 'swarm'`,
    `ufw allow from ${p} to any port 7946 comment 'swarm'`,
    `ufw allow from ${p} to any port 4789 proto udp comment 'swarm'`,
    `ufw allow from ${p} proto esp comment 'swarm'`,
    ...(taskPorts ? [`ufw allow from ${p} to any port ${taskPorts} proto tcp comment 'swarm tasks'`] : []),
  ])
}

export const ufwShowAdded = 'ufw show added'

/** The ports sshd listens on, as sshd itself resolves its configuration (needs root). */
export const sshdPortsProbe = `/usr/sbin/sshd -T 2>/dev/null | awk '$1 == "port" {print $2}'`

/** The port this SSH session came in on, as the host saw it (run without sudo: sudo drops SSH_CONNECTION). */
// biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
export const sessionPortProbe = 'echo "${SSH_CONNECTION##* }"'

/** Port numbers from the probes' output, once each, in order. */
export function parsePorts(output: string): number[] {
  const ports = output
    .split(/\s+/)
    .filter((w) => /^\d+$/.test(w))
    .map(Number)
    .filter((n) => n >= 1 && n <= 65535)
  return [...new Set(ports)].sort((a, b) => a - b)
}

/** Whether `address` (as a host sees it in SSH_CLIENT) is inside one of `cidrs`; empty = anywhere. */
export function addressAllowed(cidrs: string[], address: string): boolean {
  if (cidrs.length === 0) return true
  const ip = address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1')
  const list = new BlockList()
  for (const cidr of cidrs) {
    const [net = '', bits] = cidr.split('/')
    const type = isIPv6(net) ? 'ipv6' : 'ipv4'
    list.addSubnet(net, bits === undefined ? (type === 'ipv6' ? 128 : 32) : Number(bits), type)
  }
  return list.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4')
}

export function parseUfwAdded(output: string): string[] {
  return output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('ufw '))
}

/** Commands that turn the live rule set into the desired one: adds first (SSH stays open), then deletes. */
export function ufwConverge(live: string[], desired: string[]): string[] {
  const add = desired.filter((r) => !live.includes(r))
  const remove = live.filter((r) => !desired.includes(r)).map((r) => r.replace(/^ufw /, 'ufw delete '))
  return [...add, ...remove]
}

export const ufwDefaults = [
  'ufw default deny incoming',
  'ufw default allow outgoing',
  'ufw default deny routed',
]
export const ufwStatusProbe = 'ufw status verbose'

export function ufwIsActive(statusVerbose: string): boolean {
  return /^Status: active$/m.test(statusVerbose)
}

export function ufwDefaultsOk(statusVerbose: string): boolean {
  return /^Default: deny \(incoming\), allow \(outgoing\), deny \(routed\)$/m.test(statusVerbose)
}

export const UFW_AFTER_RULES = '/etc/ufw/after.rules'
/** Containers never reach 169.254.169.254 (DigitalOcean's metadata service), as `iptables -S` prints it. */
export const METADATA_BLOCK = '-A DOCKER-USER -d 169.254.169.254/32 -j DROP'
const BEGIN = '# BEGIN conciliaextrato: Docker-published ports cannot get around ufw'
const END = '# END conciliaextrato'

/**
 * Docker's own iptables rules forward published ports before ufw sees them. DOCKER-USER is the chain
 * Docker leaves to us: new connections that come in on the public interface never reach a container.
 */
export function dockerUserBlock(interfaces: string | string[], peers: string[] = []): string {
  // The public interface, and on a swarm env the private (VPC) one too: other droplets of the VPC are
  // strangers as well, unless they are the env's own hosts.
  const ifaces = [...new Set(typeof interfaces === 'string' ? [interfaces] : interfaces)]
  return [
    BEGIN,
    '*filter',
    ':DOCKER-USER - [0:0]',
    // The cloud's metadata service (the droplet's user_data, which held emergency's first host key)
    // is nothing a container may ask.
    METADATA_BLOCK,
    '-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
    ...ifaces.flatMap((i) => [
      // A swarm env's own hosts: nginx reaches the other nodes' tasks, the app nodes reach the data host.
      ...peers.map((p) => `-A DOCKER-USER -i ${i} -s ${p} -j RETURN`),
      `-A DOCKER-USER -i ${i} -m limit --limit 3/min -j LOG --log-prefix "[UFW DOCKER BLOCK] "`,
      `-A DOCKER-USER -i ${i} -j DROP`,
    ]),
    '-A DOCKER-USER -j RETURN',
    'COMMIT',
    END,
  ].join('\n')
}

/** after.rules with our block put in (or replaced), everything else kept as it was. */
export function withDockerUserBlock(
  afterRules: string,
  interfaces: string | string[],
  peers: string[] = [],
): string {
  const start = afterRules.indexOf(BEGIN)
  const end = afterRules.indexOf(END)
  const base =
    start >= 0 && end > start
      ? afterRules.slice(0, start) + afterRules.slice(end + END.length + 1)
      : afterRules
  return `${base.trimEnd()}\n\n${dockerUserBlock(interfaces, peers)}\n`
}

export const publicInterfaceProbe = `ip -o route show default | awk '{print $5; exit}'`

/** The interface that holds `address` (a droplet's VPC address is on eth1). */
export function interfaceOfProbe(address: string): string {
  return `ip -o addr show | awk -v a=${quote(address)} '{split($4, p, "/"); if (p[1] == a) {print $2; exit}}'`
}

export function ufwApply(commands: string[], enable: boolean): string {
  return [...commands, ...(enable ? ['ufw --force enable'] : ['ufw reload'])]
    .map((c) => `${c} >/dev/null`)
    .join(' && ')
}

export function catFile(path: string): string {
  return `cat ${quote(path)} 2>/dev/null || true`
}

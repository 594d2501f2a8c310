import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { sh } from './engine.ts'

// Sandbox droplets: Debian 12 containers with systemd and sshd, ports published on 127.0.0.1 only.
export const LABEL = 'conciliaextrato.sandbox'

// --privileged fails on this machine (CAP_SYS_RESOURCE is not in the bounding set); this set works
// and lets Docker, ufw and systemd run inside.
export const RUN_FLAGS = [
  '--cap-add=ALL',
  '--cap-drop=SYS_RESOURCE',
  '--security-opt',
  'seccomp=unconfined',
  '--security-opt',
  'apparmor=unconfined',
  '--cgroupns=host',
  '-v',
  '/sys/fs/cgroup:/sys/fs/cgroup:rw',
  '--tmpfs',
  '/run',
  '--tmpfs',
  '/run/lock',
  '-p',
  '127.0.0.1::22',
  '-p',
  '127.0.0.1::80',
  '-p',
  '127.0.0.1::443',
]

export interface DropletGroup {
  /** Label value and name prefix: `make sandbox` uses "sbx"; each test run its own. */
  id: string
  network: string
  dir: string
}

export function group(id: string, dir: string): DropletGroup {
  return { id, network: `ce-${id}`, dir }
}

/**
 * The root key the droplets trust (the operator's key on a real droplet), and beside it the checker
 * account's own key (id_ed25519_checker: ssh.checker.key of env/local.yaml) and the administrator's
 * (id_ed25519_admin: ssh.admin.key); setup-server authorizes both.
 */
export async function ensureRootKey(
  dir: string,
): Promise<{ privatePath: string; publicKey: string; checkerPath: string; adminPath: string }> {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const privatePath = join(dir, 'id_ed25519')
  const checkerPath = join(dir, 'id_ed25519_checker')
  const adminPath = join(dir, 'id_ed25519_admin')
  if (!existsSync(privatePath)) await sh`ssh-keygen -q -t ed25519 -N '' -C sandbox-operator -f ${privatePath}`
  if (!existsSync(checkerPath)) await sh`ssh-keygen -q -t ed25519 -N '' -C sandbox-checker -f ${checkerPath}`
  if (!existsSync(adminPath)) await sh`ssh-keygen -q -t ed25519 -N '' -C sandbox-admin -f ${adminPath}`
  return { privatePath, publicKey: readFileSync(`${privatePath}.pub`, 'utf8').trim(), checkerPath, adminPath }
}

export async function ensureNetwork(g: DropletGroup): Promise<void> {
  if ((await sh`docker network inspect ${g.network}`.nothrow()).exitCode === 0) return
  await sh`docker network create --label ${`${LABEL}=${g.id}`} ${g.network}`
}

export async function startDroplet(g: DropletGroup, name: string, image: string): Promise<SandboxDroplet> {
  await ensureNetwork(g)
  const container = `ce-${g.id}-${name}`
  await sh`docker rm -f ${container}`.nothrow()
  await sh`docker run -d --name ${container} --hostname ${name} --label ${`${LABEL}=${g.id}`} --network ${g.network} ${RUN_FLAGS} ${image}`
  const { publicKey } = await ensureRootKey(g.dir)
  await sh({
    input: `${publicKey}\n`,
  })`docker exec -i ${container} sh -c ${'mkdir -p -m 700 /root/.ssh && cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys'}`
  await waitForSsh(container)
  return describeDroplet(name, container)
}

async function waitForSsh(container: string): Promise<void> {
  for (let i = 0; i < 120; i++) {
    const probe =
      await sh`docker exec ${container} sh -c ${'test -s /etc/ssh/ssh_host_ed25519_key.pub && systemctl is-active --quiet ssh'}`.nothrow()
    if (probe.exitCode === 0) return
    await new Promise((r) => setTimeout(r, 500))
  }
  const logs = await sh`docker exec ${container} systemctl --failed --no-pager`.nothrow()
  throw new Error(`droplet ${container}: sshd did not start within 60 s\n${logs.stdout}`)
}

export async function describeDroplet(name: string, container: string): Promise<SandboxDroplet> {
  const fp = await sh`docker exec ${container} ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`
  const ip =
    await sh`docker inspect -f ${'{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'} ${container}`
  const port = async (p: number) =>
    Number((await sh`docker port ${container} ${p}/tcp`).stdout.trim().split('\n')[0]?.split(':').pop())
  return {
    name,
    container,
    ip: ip.stdout.trim(),
    ports: { ssh: await port(22), http: await port(80), https: await port(443) },
    hostKey: fp.stdout.split(' ')[1] ?? '',
  }
}

/** Gives a droplet new host keys, as a rebuilt droplet (or an attacker) would present. */
export async function regenerateHostKeys(d: SandboxDroplet): Promise<SandboxDroplet> {
  await sh`docker exec ${d.container} sh -c ${'rm -f /etc/ssh/ssh_host_* && ssh-keygen -A && systemctl restart ssh'}`
  return describeDroplet(d.name, d.container)
}

export async function removeGroup(id?: string): Promise<void> {
  const filter = id ? `label=${LABEL}=${id}` : `label=${LABEL}`
  const containers = (await sh`docker ps -aq --filter ${filter}`).stdout.split('\n').filter(Boolean)
  if (containers.length) await sh`docker rm -f -v ${containers}`
  const networks = (await sh`docker network ls -q --filter ${filter}`).stdout.split('\n').filter(Boolean)
  if (networks.length) await sh`docker network rm ${networks}`
}

export function writeState(file: string, droplets: SandboxDroplet[]): void {
  writeFileSync(file, `${JSON.stringify({ droplets }, null, 2)}\n`)
}

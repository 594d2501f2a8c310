import { quote } from './shell.ts'

// Docker Swarm: joining the env's nodes, labelling them, the stack and its secrets. Pure: strings only.

/** `<state> <manager?> <node id> <manager addresses...>`: state is inactive, active, pending or error. */
export const swarmStateProbe =
  "docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}} {{range .Swarm.RemoteManagers}}{{.Addr}} {{end}}'"

export interface SwarmState {
  state: string
  manager: boolean
  nodeId: string
  managers: string[]
}

export function parseSwarmState(out: string): SwarmState {
  const [state = 'unknown', control = 'false', nodeId = '', ...managers] = out.trim().split(/\s+/)
  return { state, manager: control === 'true', nodeId, managers: managers.filter(Boolean) }
}

/**
 * Overlay subnets come from 10.201.0.0/16, away from DigitalOcean's VPC ranges (10.10-10.140.x.x/20 by
 * region) and Docker's bridges (172.17+), so a task's network never shadows a host it must reach.
 */
export const ADDRESS_POOL = '10.201.0.0/16'

export function swarmInit(address: string): string {
  return `docker swarm init --advertise-addr ${quote(address)} --listen-addr ${quote(`${address}:2377`)} --default-addr-pool ${ADDRESS_POOL} --default-addr-pool-mask-length 24 >/dev/null`
}

/** The join token arrives on stdin, so it is never on a command line this runbook prints or logs. */
export function swarmJoin(address: string, manager: string): string {
  return `read -r token && docker swarm join --token "$token" --advertise-addr ${quote(address)} --listen-addr ${quote(`${address}:2377`)} ${quote(`${manager}:2377`)} >/dev/null`
}

export function joinToken(role: 'worker' | 'manager'): string {
  return `docker swarm join-token -q ${role}`
}

/** After a join the token that was used is replaced: a copy left anywhere cannot join another node. */
export function rotateJoinToken(role: 'worker' | 'manager'): string {
  return `docker swarm join-token --rotate -q ${role} >/dev/null`
}

/** `<id> <hostname> <status> <availability> <manager status> <labels>` per node, from a manager. */
export const nodeList =
  "docker node ls -q | xargs docker node inspect --format '{{.ID}} {{.Description.Hostname}} {{.Status.State}} {{.Spec.Availability}} {{if .ManagerStatus}}{{.ManagerStatus.Leader}}{{else}}worker{{end}} {{.Spec.Role}} {{range $k, $v := .Spec.Labels}}{{$k}}={{$v}},{{end}}'"

export interface SwarmNode {
  id: string
  hostname: string
  status: string
  availability: string
  leader: boolean
  role: string
  labels: Record<string, string>
}

export function parseNodeList(out: string): SwarmNode[] {
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id = '', hostname = '', status = '', availability = '', leader = '', role = '', labels = ''] =
        line.split(' ')
      return {
        id,
        hostname,
        status,
        availability,
        leader: leader === 'true',
        role,
        labels: Object.fromEntries(
          labels
            .split(',')
            .filter(Boolean)
            .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
        ),
      }
    })
}

/** Swarm nodes that run the app's tasks carry this label (the stack's placement constraint). */
export const WEB_LABEL = 'ce.web'

export function labelNode(nodeId: string, env: string): string {
  return `docker node update --label-add ${WEB_LABEL}=true --label-add ce.env=${quote(env)} ${quote(nodeId)} >/dev/null`
}

export function stackName(env: string): string {
  return `ce-${env}`
}

/**
 * `docker stack deploy` of the stack's compose files, interpolated from the variables file. Images
 * delivered over SSH are used as the node has them (no registry to ask); registry images are pinned
 * to their digest, and the manager's login is passed to the nodes.
 */
export function stackDeploy(opts: {
  dir: string
  stack: string
  files: string[]
  vars: string
  registry: boolean
}): string {
  const files = opts.files.map((f) => `-c ${quote(f)}`).join(' ')
  const resolve = opts.registry ? '--resolve-image always --with-registry-auth' : '--resolve-image never'
  return `cd ${quote(opts.dir)} && set -a && . ${quote(opts.vars)} && set +a && docker stack deploy --prune ${resolve} ${files} ${quote(opts.stack)}`
}

/**
 * Per service of the stack, `service <name> <update state> <image>` (the update state is `none` before
 * the first update; Swarm's own rollback shows as rollback_completed), then `task <image> <node>
 * <current state...>` for each task Swarm wants running.
 */
export function stackServicesProbe(stack: string): string {
  return `for s in $(docker stack services -q ${quote(stack)} 2>/dev/null); do docker service inspect --format 'service {{.Spec.Name}} {{if .UpdateStatus}}{{.UpdateStatus.State}}{{else}}none{{end}} {{.Spec.TaskTemplate.ContainerSpec.Image}}' "$s"; docker service ps --filter desired-state=running --format 'task {{.Image}} {{.Node}} {{.CurrentState}}' "$s"; done`
}

export interface StackService {
  name: string
  update: string
  image: string
  tasks: { image: string; node: string; state: string }[]
}

/** Images compare without a pinned digest: the service spec carries it, the task list may not. */
export const withoutDigest = (image: string) => image.replace(/@sha256:[0-9a-f]+$/, '')

export function parseStackServices(out: string): StackService[] {
  const services: StackService[] = []
  for (const line of out.trim().split('\n').filter(Boolean)) {
    const [kind, a = '', b = '', ...rest] = line.split(' ')
    if (kind === 'service') services.push({ name: a, update: b, image: rest[0] ?? '', tasks: [] })
    else if (kind === 'task') services.at(-1)?.tasks.push({ image: a, node: b, state: rest[0] ?? '' })
  }
  return services
}

/** Every service runs `images[service]` on exactly `nodes` tasks, all Running, and no update is under way. */
export function stackSettled(
  services: StackService[],
  images: Record<string, string>,
  nodes: number,
): { settled: boolean; waiting: string[] } {
  const waiting: string[] = []
  for (const [service, image] of Object.entries(images)) {
    const svc = services.find((s) => s.name.endsWith(`_${service}`))
    if (!svc) {
      waiting.push(`${service}: no service yet`)
      continue
    }
    const good = svc.tasks.filter(
      (t) => t.state === 'Running' && withoutDigest(t.image) === withoutDigest(image),
    ).length
    if (withoutDigest(svc.image) !== withoutDigest(image)) waiting.push(`${service}: runs ${svc.image}`)
    else if (!SETTLED_STATES.includes(svc.update)) waiting.push(`${service}: update ${svc.update}`)
    else if (good !== nodes || svc.tasks.length !== nodes)
      waiting.push(`${service}: ${good}/${nodes} running ${image.split('/').pop()}`)
  }
  return { settled: waiting.length === 0, waiting }
}

/**
 * Update states in which a service runs what its spec says. rollback_completed stays on a service
 * after Swarm rolled an update back, until its next update: with the wanted image it is settled.
 */
const SETTLED_STATES = ['none', 'completed', 'rollback_completed']

/**
 * Services Swarm stopped short of `images`: rolled back to another image (failure_action: rollback)
 * or paused. A rollback under way (rollback_started) is not in the list yet: wait for its end.
 */
export function rolledBack(services: StackService[], images: Record<string, string>): StackService[] {
  return services.filter((s) => {
    const wanted = Object.entries(images).find(([service]) => s.name.endsWith(`_${service}`))?.[1]
    if (s.update === 'paused' || s.update === 'rollback_paused') return true
    return (
      s.update === 'rollback_completed' &&
      wanted !== undefined &&
      withoutDigest(s.image) !== withoutDigest(wanted)
    )
  })
}

/** The updates' error messages (why Swarm rolled back or paused), one line per service. */
export function updateMessages(stack: string): string {
  return `for s in $(docker stack services -q ${quote(stack)} 2>/dev/null); do docker service inspect --format '{{.Spec.Name}}: {{if .UpdateStatus}}{{.UpdateStatus.Message}}{{end}}' "$s"; done`
}

/** A Docker secret, created from stdin unless it already exists (secrets are immutable: new value, new name). */
export function secretEnsure(name: string, env: string): string {
  return `docker secret inspect ${quote(name)} >/dev/null 2>&1 || docker secret create --label ce.env=${quote(env)} ${quote(name)} - >/dev/null`
}

/** The env's secrets no service uses any more (Docker refuses to remove one in use). */
export function secretsPrune(env: string, keep: string[]): string {
  const keepPattern = keep.map((k) => `-e ${quote(`^${k}$`)}`).join(' ')
  return `docker secret ls --filter label=ce.env=${quote(env)} --format '{{.Name}}' | grep -v ${keepPattern} | xargs -r docker secret rm >/dev/null 2>&1 || true`
}

/** `<service> <node> <current state> <image>` for every task Swarm wants running. */
export function stackTasks(stack: string): string {
  return `docker stack ps --filter desired-state=running --format '{{.Name}} {{.Node}} {{.CurrentState}} {{.Image}}' ${quote(stack)} 2>/dev/null || true`
}

/** Removes the stack's services (its tasks stop everywhere); secrets and the files on the manager stay. */
export function stackRemove(stack: string): string {
  return `docker stack rm ${quote(stack)} >/dev/null`
}

/** How many of the stack's containers still run on this node. */
export function stackContainersLeft(stack: string): string {
  return `docker ps -q --filter label=com.docker.stack.namespace=${quote(stack)} | wc -l`
}

/**
 * `<state> <secret>,<secret>,` for each task Swarm wants running of `service`: whether a rolling update
 * that changed only the service's secrets (the images stay) has reached every task.
 */
export function taskSecretsProbe(service: string): string {
  return `docker service ps -q --filter desired-state=running ${quote(service)} 2>/dev/null | xargs -r docker inspect --format '{{.Status.State}} {{range .Spec.ContainerSpec.Secrets}}{{.SecretName}},{{end}}' 2>/dev/null || true`
}

/** '' when exactly `tasks` tasks run and each holds every secret of `wanted`; else what is missing. */
export function tasksMissingSecrets(out: string, wanted: string[], tasks: number): string {
  const lines = out.trim().split('\n').filter(Boolean)
  const ready = lines.filter((line) => {
    const [state = '', secrets = ''] = line.split(' ')
    const held = secrets.split(',')
    return state === 'running' && wanted.every((s) => held.includes(s))
  }).length
  return ready === tasks && lines.length === tasks
    ? ''
    : `${ready}/${tasks} tasks running with ${wanted.join(', ')}`
}

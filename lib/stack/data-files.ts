import { projectContainers } from '../commands/compose.ts'
import { quote } from '../commands/shell.ts'
import type { Env } from '../env/load.ts'
import type { Secrets } from '../env/secrets.ts'
import { ensure, ensureFile } from '../host/converge.ts'
import type { HostSession } from '../host/session.ts'
import { print } from '../report/output.ts'
import { dataEnv, deployFiles, redisConf } from './files.ts'

/**
 * The data project's files on its host: data.env (0600) and Redis's config. The config is 0644 so
 * the container's redis user can read it through the bind mount, inside a directory of mode 0700 that
 * no other account on the host can enter. True when anything changed.
 */
export async function writeDataFiles(
  host: HostSession,
  env: Env,
  secrets: Secrets,
  extraVars = '',
): Promise<boolean> {
  const user = env.ssh.user
  const owner = `${user}:${user}`
  const files = deployFiles(env)
  const dir = quote(files.data.redisDir)
  const madeDir = await ensure(
    host,
    `test "$(stat -c '%a %U' ${dir} 2>/dev/null)" = ${quote(`700 ${user}`)}`,
    `install -d -m 0700 -o ${quote(user)} -g ${quote(user)} ${dir}`,
  )
  const conf = await ensureFile(host, {
    path: files.data.redisConf,
    content: redisConf(secrets),
    mode: '0644',
    owner,
  })
  const vars = await ensureFile(host, {
    path: files.data.vars,
    content: dataEnv(env, secrets) + extraVars,
    mode: '0600',
    owner,
  })
  return madeDir || conf || vars
}

/**
 * A Redis container started before its password moved to redis.conf still has it on its command line;
 * `up --no-recreate` would keep it so. Prints `old` for such a container.
 */
export function redisOnCommandLine(project: string): string {
  return `for c in $(${projectContainers(project, 'redis', true)}); do docker inspect -f '{{json .Config.Cmd}}' "$c" | grep -q -- '--requirepass' && echo old; done; true`
}

/**
 * After `up -d --no-recreate` (Postgres and Redis are never recreated by a deploy): once only, a Redis
 * started with its password on its command line is recreated with redis.conf. A restart of a second
 * or two; its data is on its volume (appendonly). `run` runs compose with the given arguments.
 */
export async function recreateOldRedis(
  host: HostSession,
  project: string,
  run: (args: string) => Promise<unknown>,
): Promise<boolean> {
  const old = (await host.exec(redisOnCommandLine(project), { probe: true, echo: false })).stdout
  if (!old.includes('old')) return false
  print(`      ${host.name}: Redis has its password on its command line: recreated once with redis.conf`)
  await run('up -d --no-deps --force-recreate redis')
  return true
}

import { gunzipSync } from 'node:zlib'
import { readOn } from '../commands/checker.ts'
import { type Env, loadEnv } from '../env/load.ts'
import { readOutsideViewKey, type Secrets } from '../env/secrets.ts'
import { InputError } from '../report/errors.ts'
import { print } from '../report/output.ts'
import { checkerSession } from '../run/connect.ts'
import { parseHistory } from './history.ts'
import type { OutsideInput } from './report.ts'

// make uptime's outside view: the env named by outside_view (staging, for production) probes this env's
// domains from its own droplet (watchdog.watch there) and writes `outside:<env>/<domain>` lines into
// its own health history. Read here through that env's checker account, like promote_from. A dead
// droplet of this env is DOWN there, where the host view has no data at all.

/** The watching env, checked: it must watch this env and have a checker login. */
export function watcherOf(env: Env): Env | undefined {
  const view = env.outsideView
  if (!view) return undefined
  let watcher: Env
  try {
    watcher = loadEnv(view.env)
  } catch (err) {
    throw new InputError(
      `${env.file}: outside_view.env names ${view.env}, whose env file does not load: ${(err as Error).message.split('\n')[0]}`,
      err instanceof InputError ? err.problems : [],
      `Fix env/${view.env}.yaml, or take outside_view out of ${env.file}.`,
    )
  }
  if (!watcher.watchdog.watch.includes(env.name))
    throw new InputError(
      `${env.file}: outside_view.env is ${watcher.name}, but ${watcher.file}'s watchdog.watch does not name ${env.name}: its watchdog never probes ${env.name}`,
      [],
      `Add ${env.name} to watchdog.watch in ${watcher.file} (then make setup-server ENV=${watcher.name}), or point outside_view at the env that watches ${env.name}.`,
    )
  if (!watcher.ssh.checker)
    throw new InputError(
      `${env.file}: outside_view.env is ${watcher.name}, which has no ssh.checker: its history is read through its checker account`,
      [],
      `Give ${watcher.file} an ssh.checker (make setup-server ENV=${watcher.name} creates the account).`,
    )
  return watcher
}

/**
 * The watching env's health histories from `sinceDay`, every host's (a host that does not answer is
 * named in `error`, and the others still count). Host names carry the env: `staging/web-1`.
 */
export async function readOutsideView(
  env: Env,
  watcher: Env,
  secrets: Secrets,
  sinceDay: string,
): Promise<OutsideInput> {
  const checker = watcher.ssh.checker
  const out: OutsideInput = { from: watcher.name, histories: [] }
  if (!checker) return { ...out, error: `${watcher.name} has no ssh.checker` }
  const privateKey = readOutsideViewKey(env, secrets)
  const failed: string[] = []
  for (const host of watcher.hosts) {
    const name = `${watcher.name}/${host.name}`
    const session = checkerSession(watcher, host, privateKey, { commandTimeoutS: 120, echo: false })
    try {
      await session.connect()
      const chunks: Buffer[] = []
      await session.exec(readOn(session, watcher, 'history', sinceDay), {
        probe: true,
        echo: false,
        onStdout: (chunk) => chunks.push(chunk),
      })
      const gz = Buffer.concat(chunks)
      const history = parseHistory(gz.length ? gunzipSync(gz).toString('utf8') : '', { host: name })
      out.histories.push({ host: name, history })
      print(`      ${name} (outside view): ${history.lines} history line(s) since ${sinceDay}`)
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0] ?? 'failed'
      failed.push(`${name} as ${checker.user}: ${reason}`)
      print(`      ${name} (outside view): not read: ${reason}`)
    } finally {
      session.close()
    }
  }
  return failed.length ? { ...out, error: failed.join('; ') } : out
}

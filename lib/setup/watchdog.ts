import { resolve } from 'node:path'
import {
  HEALTH_LOGROTATE,
  HEALTH_LOGROTATE_PATH,
  timerActivate,
  timerCheck,
  unitPath,
  WATCHDOG_BUNDLE,
  watchdogConfigContent,
  watchdogConfigPath,
  watchdogDirs,
  watchdogFile,
  watchdogService,
  watchdogTimer,
} from '../commands/watchdog.ts'
import { type Env, loadEnv } from '../env/load.ts'
import { ensure, ensureFile } from '../host/converge.ts'
import { buildHostBundle, ensureNode } from '../host/node-program.ts'
import { InputError } from '../report/errors.ts'
import type { Context, Step } from '../run/runbook.ts'
import { DB_NAME, DB_USER } from '../stack/files.ts'
import { eachHost } from './common.ts'

// The host watchdog (lib/watchdog/main.ts): Debian's/Ubuntu's nodejs, the bundle, its config (the alert
// webhooks' URLs: 0600 root), its state and history directories, and a systemd timer every interval_s.
const ROOT = resolve(import.meta.dirname, '..', '..')

/**
 * lib/watchdog/main.ts and what it imports, as one ES module for Node 18. Built on every run; the same
 * sources give the same bytes from any checkout (ensureFile then sees no change). esbuild writes each
 * module's path as a comment line: left out (lib/host/node-program.ts).
 */
export function buildWatchdogBundle(root = ROOT): Promise<string> {
  // nodemailer (e-mail alerts) is CommonJS: it requires Node's built-ins.
  return buildHostBundle('lib/watchdog/main.ts', 'setup-server', root, { cjsRequire: true })
}

let bundled: Promise<string> | undefined
/** Built once per run, for every host. */
const watchdogBundle = () => {
  bundled ??= buildWatchdogBundle()
  return bundled
}

/** The envs this one watches from outside (watchdog.watch), from their env files. */
export function watchedEnvs(env: Env): Env[] {
  return env.watchdog.watch.map((name) => {
    try {
      return loadEnv(name)
    } catch (err) {
      throw new InputError(
        `${env.file}: watchdog.watch names ${name}, whose env file does not load: ${(err as Error).message.split('\n')[0]}`,
        err instanceof InputError ? err.problems : [],
        `Fix env/${name}.yaml, or take ${name} out of watchdog.watch.`,
      )
    }
  })
}

export const watchdog: Step = {
  title:
    'Health watchdog: nodejs, the watchdog, its config (0600), a systemd timer every watchdog.interval_s',
  next: 'See the error above; `systemctl status conciliaextrato-watchdog@<env>.service` and its journal on the host.',
  run: (ctx: Context) =>
    eachHost(ctx, async (host) => {
      const env = ctx.env
      const node = await ensureNode(host)
      const dirs = watchdogDirs(env.name)
      const madeDirs = await ensure(host, dirs.check, dirs.apply)
      const file = (path: string, content: string, mode: string) =>
        ensureFile(host, { path, content, mode, owner: 'root:root' })
      const code = await file(WATCHDOG_BUNDLE, await watchdogBundle(), '0644')
      const config = await file(
        watchdogConfigPath(env.name),
        watchdogConfigContent(
          watchdogFile(env, host.name, ctx.secrets, { user: DB_USER, db: DB_NAME }, watchedEnvs(env)),
        ),
        '0600',
      )
      const rotate = await file(HEALTH_LOGROTATE_PATH, HEALTH_LOGROTATE, '0644')
      const service = await file(
        unitPath(env.name, 'service'),
        watchdogService(env.name, env.watchdog.intervalS),
        '0644',
      )
      const timer = await file(
        unitPath(env.name, 'timer'),
        watchdogTimer(env.name, env.watchdog.intervalS),
        '0644',
      )
      // New unit files: reload systemd and restart the timer, so a changed interval counts from now.
      if (service || timer) await host.exec(timerActivate(env.name, true))
      const started = await ensure(host, timerCheck(env.name), timerActivate(env.name, false))
      return node || madeDirs || code || config || rotate || service || timer || started
    }),
}

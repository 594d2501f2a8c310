/**
 * emergency — the droplet is gone or unusable: a new one serving again, within 15 minutes.
 *
 * When: the host does not answer and cannot be saved (see docs/runbooks/emergency.md for the decision).
 * Changes: creates a droplet (CREATE=1; from the env's newest golden image, make image, unless
 *   BASE_IMAGE=1) or takes HOST=<ip> HOST_KEY=<fingerprint>; then, on that host
 *   only: setup-server, deploy of the release the backup was taken at, restore of the latest complete
 *   off-site backup, health gates, the DNS switch at Cloudflare (make dns APPLY=1), verification of the
 *   data and of every domain. The env file is not changed unless WRITE_ENV=1: the change is printed.
 * Resume: every phase is recorded in .state/emergency-<env>.json; running the same command again
 *   continues from the phase that did not finish (RESTART=1 starts over).
 * Abort: Ctrl-C at any time; nothing is switched at Cloudflare before the new host passed its gates.
 * On-call page: docs/runbooks/emergency.md
 */
import { createPhase } from '../lib/emergency/droplet.ts'
import { onEnd, report } from '../lib/emergency/finish.ts'
import { healthPhase, verifyPhase } from '../lib/emergency/gates.ts'
import { keepRecovered, onNewHostRun, phase } from '../lib/emergency/phases.ts'
import { plan } from '../lib/emergency/plan.ts'
import { emergencyRun, st } from '../lib/emergency/run.ts'
import { InputError } from '../lib/report/errors.ts'
import { print } from '../lib/report/output.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { deploy } from './deploy.ts'
import { dns } from './dns.ts'
import { restore } from './restore.ts'
import { setupServer } from './setup-server.ts'

export { BUDGET_S } from '../lib/emergency/run.ts'

export const emergency: RunbookSpec = {
  name: 'emergency',
  mutates: true,
  // The env's hosts are the ones that are gone: this runbook connects only to the new one.
  offline: true,
  // It runs setup-server, deploy, restore and dns on the new host: what they need, and the droplet token.
  needs: (env, args) => [
    ...setupServer.needs(env, {}),
    // The release the backup was taken at already ran here: no promotion check (ALLOW_UNSTAGED below).
    ...deploy.needs(env, { 'allow-unstaged': true }),
    ...restore.needs(env, {}),
    ...(env.edge ? dns.needs(env, {}) : []),
    ...(args.create === true ? (['droplet'] as const) : []),
    'notify:emergency',
  ],
  options: [
    {
      name: 'create',
      makeVar: 'CREATE=1',
      help: "create a droplet through the DigitalOcean API (the env's droplet: section)",
    },
    { name: 'address', makeVar: 'HOST', value: true, help: 'an existing fresh droplet to use (its IP)' },
    {
      name: 'host-key',
      makeVar: 'HOST_KEY',
      value: true,
      help: "HOST's SSH host key fingerprint (SHA256:...), read on its console",
    },
    { name: 'ssh-port', makeVar: 'SSH_PORT', value: true, help: "HOST's SSH port (default 22)" },
    {
      name: 'name',
      makeVar: 'NAME',
      value: true,
      help: "the new host's name in the env file (default: the droplet name)",
    },
    {
      name: 'backup',
      makeVar: 'BACKUP',
      value: true,
      help: 'the backup to restore (default: the latest complete one)',
    },
    {
      name: 'release',
      makeVar: 'RELEASE',
      value: true,
      help: 'the release to deploy (default: the one the backup was taken at)',
    },
    {
      name: 'no-wal',
      makeVar: 'NO_WAL=1',
      help: 'restore the backup as taken, without replaying the archived WAL after it (default: to the newest segment)',
    },
    {
      name: 'base-image',
      makeVar: 'BASE_IMAGE=1',
      help: "CREATE=1 from droplet.image, not the env's newest golden image (make image)",
    },
    { name: 'restart', makeVar: 'RESTART=1', help: 'forget an unfinished earlier run and start over' },
    {
      name: 'write-env',
      makeVar: 'WRITE_ENV=1',
      help: 'write the new host into the env file (default: print the change)',
    },
  ],
  steps: [
    {
      title: 'Plan: the backup, the release and the new host; resume an unfinished run',
      next: 'Nothing was changed. Fix what is said above and run the same command again.',
      async run(ctx) {
        if (ctx.env.swarm)
          throw new InputError(
            `make emergency rebuilds a single-host env; ${ctx.env.name} is a swarm env.`,
            [],
            'A lost node: docs/runbooks/swarm.md ("A node is down"). The data host: make restore DRILL=1 checks the backup first.',
          )
        const s = await plan(ctx)
        emergencyRun.set(ctx, s)
        ctx.release = s.release ?? null
        if (!ctx.dryRun) ctx.onCleanup(async () => onEnd(ctx))
        return 'ok'
      },
    },
    phase(
      'create',
      'a new droplet (CREATE=1) or the given HOST, its host key pinned',
      'Run the same command again: a droplet this run already created is found by its tag, not made twice.',
      createPhase,
    ),
    phase(
      'setup',
      'setup-server on the new host',
      'Run the same command again: it resumes here; setup-server is safe to re-run.',
      (ctx) => onNewHostRun(ctx, setupServer, [], 'Run make emergency again: it resumes with setup-server.'),
    ),
    phase(
      'deploy',
      'deploy the release the backup was taken at (Postgres and Redis start empty)',
      'Run the same command again: it resumes with the deploy. A lock left by a killed run: see docs/runbooks/emergency.md#resume-and-abort.',
      (ctx) =>
        onNewHostRun(
          ctx,
          deploy,
          ['--release', st(ctx).release ?? '', '--branch', ctx.env.branch, '--allow-unstaged'],
          'Run make emergency again: it resumes with the deploy.',
        ),
    ),
    phase(
      'restore',
      'restore the backup (and its archived WAL, to the newest segment): verified in a scratch database, then swapped in',
      'Run the same command again: the restore starts over from the verified download; nothing is switched at Cloudflare yet. If replaying the WAL fails, NO_WAL=1 RESTART=1 restores the backup as taken.',
      (ctx) =>
        onNewHostRun(
          ctx,
          restore,
          [
            '--backup',
            st(ctx).backup?.id ?? '',
            '--fresh-host',
            ...(st(ctx).toWal ? ['--at', 'latest'] : []),
          ],
          'Run make emergency again: it resumes with the restore.',
          (sub) => keepRecovered(ctx, sub),
        ),
    ),
    phase(
      'health',
      'health gates against the new host directly (domains through nginx, TLS, headers, containers, services)',
      'Nothing was switched at Cloudflare. Fix what failed on the new host (make status), then run again.',
      healthPhase,
    ),
    phase(
      'dns',
      'switch the records at Cloudflare to the new host (make dns APPLY=1)',
      'Run the same command again. A half-applied zone is undone by make dns; make dns ENV=<env> shows it.',
      async (ctx) => {
        if (!ctx.env.edge) {
          print(`      ${ctx.env.file} has no edge: section: there are no Cloudflare records to switch`)
          return
        }
        await onNewHostRun(ctx, dns, ['--apply'], 'Run make emergency again: it resumes with the DNS switch.')
      },
    ),
    phase(
      'verify',
      'every row and the canary of the backup, the records, every domain from here',
      'The new host serves; what did not verify is listed above. Look at it before telling anyone it is over.',
      verifyPhase,
    ),
    {
      title: 'Report: timings, the env-file change, what to do with the old droplet',
      async run(ctx) {
        report(ctx)
        return 'ok'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(emergency)

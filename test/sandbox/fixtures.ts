import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { sh } from './engine.ts'
import { buildMinbaseImage, defaultLog, recipeHash } from './images.ts'

// The images that stand in for the product: site, saas and api built from the std-only Rust
// workspace in app/, in several releases, and Postgres/Redis built from Debian's packages.
const APP_DIR = resolve(import.meta.dirname, 'app')
const IMAGES_DIR = resolve(import.meta.dirname, 'images')
export const FIXTURE_SERVICES = ['site', 'saas', 'api'] as const

/** The fixture releases: two good ones, one whose health fails, one whose migration fails. */
export const FIXTURE_RELEASES = {
  v1: { migrations: 'v1', broken: false },
  v2: { migrations: 'v2', broken: false },
  broken: { migrations: 'v2', broken: true },
  badmig: { migrations: 'bad', broken: false },
} as const
export type FixtureRelease = keyof typeof FIXTURE_RELEASES

export const DATA_IMAGES = {
  postgres: 'conciliaextrato-sandbox/postgres:15',
  redis: 'conciliaextrato-sandbox/redis:7',
}
export const appImage = (service: string, release: string) => `conciliaextrato/${service}:${release}`
const RECIPE_LABEL = 'conciliaextrato.recipe'

export async function buildFixtureImages(log = defaultLog): Promise<void> {
  await buildDataImages(log)
  await buildAppImages(log)
}

async function recipeOf(tag: string): Promise<string | undefined> {
  const out =
    await sh`docker image inspect -f ${`{{index .Config.Labels "${RECIPE_LABEL}"}}`} ${tag}`.nothrow()
  return out.exitCode === 0 ? out.stdout.trim() : undefined
}

export async function buildDataImages(log = defaultLog): Promise<void> {
  const base = await buildMinbaseImage(log)
  for (const [name, tag] of Object.entries(DATA_IMAGES)) {
    const files = [`${name}.Dockerfile`, `${name}-entrypoint.sh`].map((f) =>
      readFileSync(join(IMAGES_DIR, f), 'utf8'),
    )
    const recipe = recipeHash(base, ...files)
    if ((await recipeOf(tag)) === recipe) continue
    log(`building ${tag} from Debian's packages`)
    await sh`docker build -q -f ${join(IMAGES_DIR, `${name}.Dockerfile`)} --build-arg ${`BASE=${base}`} --label ${`${RECIPE_LABEL}=${recipe}`} -t ${tag} ${IMAGES_DIR}`
  }
}

export async function buildAppImages(log = defaultLog): Promise<void> {
  const recipe = recipeHash(sourceDigest(APP_DIR), readFileSync(join(IMAGES_DIR, 'app.Dockerfile'), 'utf8'))
  const tags = FIXTURE_SERVICES.flatMap((s) => Object.keys(FIXTURE_RELEASES).map((r) => appImage(s, r)))
  const current = await Promise.all(tags.map(recipeOf))
  if (current.every((r) => r === recipe)) return
  log('building the fixture app (cargo build --release, std only)')
  await sh`cargo build --release --locked --manifest-path ${join(APP_DIR, 'Cargo.toml')}`
  const work = mkdtempSync(join(tmpdir(), 'ce-fixture-'))
  try {
    for (const service of FIXTURE_SERVICES) {
      const rootfs = join(work, service, 'rootfs')
      await stageRootfs(join(APP_DIR, 'target/release', service), rootfs)
      for (const [release, spec] of Object.entries(FIXTURE_RELEASES)) {
        const context = join(work, service)
        const migrations = join(context, 'migrations')
        rmSync(migrations, { recursive: true, force: true })
        mkdirSync(migrations)
        if (service === 'api') copyDir(join(APP_DIR, 'migrations', spec.migrations), migrations)
        await sh`docker build -q -f ${join(IMAGES_DIR, 'app.Dockerfile')} --build-arg ${`SERVICE=${service}`} --build-arg ${`RELEASE=${release}`} --build-arg ${`BROKEN=${spec.broken ? 1 : 0}`} --label ${`${RECIPE_LABEL}=${recipe}`} -t ${appImage(service, release)} ${context}`
      }
    }
    log(`fixture images ready: ${tags.join(' ')}`)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** The binary as /app, the libraries ldd lists at their paths, and a world-writable /tmp. */
async function stageRootfs(binary: string, rootfs: string): Promise<void> {
  mkdirSync(join(rootfs, 'tmp'), { recursive: true })
  chmodSync(join(rootfs, 'tmp'), 0o1777)
  copyFileSync(binary, join(rootfs, 'app'))
  chmodSync(join(rootfs, 'app'), 0o755)
  const ldd = (await sh`ldd ${binary}`).stdout
  for (const lib of ldd.matchAll(/(\/\S+\.so[.\d]*)\s+\(/g)) {
    const path = lib[1] as string
    mkdirSync(join(rootfs, dirname(path)), { recursive: true })
    copyFileSync(path, join(rootfs, path))
  }
}

/** The files of a directory (not its subdirectories: the migrations of one release). */
function copyDir(from: string, to: string): void {
  for (const f of readdirSync(from, { withFileTypes: true }))
    if (f.isFile()) copyFileSync(join(from, f.name), join(to, f.name))
}

/** A digest of the app's sources (not its build output), to know when images are stale. */
function sourceDigest(dir: string): string {
  const parts: string[] = []
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      if (name === 'target' || name.startsWith('.')) continue
      const path = join(d, name)
      if (statSync(path).isDirectory()) walk(path)
      else parts.push(path.slice(dir.length), readFileSync(path, 'utf8'))
    }
  }
  walk(dir)
  return recipeHash(...parts)
}

/**
 * The build stage of a pipeline (make bench-pipeline): the workspace at `workspace` built in release
 * mode and its three images tagged `release`, the api carrying `migrations` (relative to the workspace).
 */
export async function buildWorkspaceRelease(
  workspace: string,
  release: string,
  migrations: string,
): Promise<void> {
  for (const service of FIXTURE_SERVICES) await buildWorkspaceImage(workspace, service, release, migrations)
}

/**
 * One service's image of the workspace (cargo builds the workspace once; later services reuse it),
 * tagged conciliaextrato/<service>:<release>: what the app's Dockerfile target does in CI.
 */
export async function buildWorkspaceImage(
  workspace: string,
  service: string,
  release: string,
  migrations: string,
): Promise<string> {
  await sh`cargo build --release --locked --manifest-path ${join(workspace, 'Cargo.toml')}`
  const context = mkdtempSync(join(tmpdir(), 'ce-release-'))
  try {
    await stageRootfs(join(workspace, 'target/release', service), join(context, 'rootfs'))
    mkdirSync(join(context, 'migrations'))
    if (service === 'api') copyDir(join(workspace, migrations), join(context, 'migrations'))
    await sh`docker build -q -f ${join(IMAGES_DIR, 'app.Dockerfile')} --build-arg ${`SERVICE=${service}`} --build-arg ${`RELEASE=${release}`} --build-arg BROKEN=0 -t ${appImage(service, release)} ${context}`
    return appImage(service, release)
  } finally {
    rmSync(context, { recursive: true, force: true })
  }
}

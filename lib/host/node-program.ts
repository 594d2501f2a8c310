import { resolve } from 'node:path'
import { build } from 'esbuild'
import { aptInstall, missingPackagesProbe } from '../commands/packages.ts'
import { NODE_MIN_MAJOR, nodeMajorProbe } from '../commands/watchdog.ts'
import { print } from '../report/output.ts'
import type { HostSession } from './session.ts'

// Programs that run on a host under its own Node (the watchdog, the WAL shipper): Debian's/Ubuntu's
// nodejs package, and the program bundled into one file from this checkout.
const ROOT = resolve(import.meta.dirname, '..', '..')

/**
 * A host program (`entry`, relative to the checkout) and what it imports, as one ES module for Node 18.
 * The same sources give the same bytes from any checkout (ensureFile then sees no change): esbuild writes
 * each module's path, relative to the checkout, as a comment line, and from a checkout whose
 * node_modules (or lib) is a symlink, or a hoisted node_modules, those paths differ (measured:
 * `../../work/main/node_modules/p-retry/index.js`), so they are left out.
 */
export async function buildHostBundle(
  entry: string,
  builtBy: string,
  root = ROOT,
  /** CommonJS dependencies (the AWS SDK) require Node's built-ins, which an ES module must provide. */
  opts: { cjsRequire?: boolean } = {},
): Promise<string> {
  const out = await build({
    entryPoints: [resolve(root, entry)],
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node18',
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
    banner: {
      js: `// Built by ${builtBy} from ${entry}: do not edit here, run ${builtBy}.${opts.cjsRequire ? "\nimport { createRequire as __ceRequire } from 'node:module'; const require = __ceRequire(import.meta.url);" : ''}`,
    },
  })
  return withoutModulePaths(out.outputFiles[0]?.text ?? '')
}

/**
 * Drops esbuild's `// <path of a module>` lines (a comment each), and cuts the names it gives CommonJS
 * modules (`"../../work/main/node_modules/x/y.js"(exports, module) {`: a label, not a path read) to
 * `"node_modules/x/y.js"`: the same bytes from any checkout. Nothing else changes.
 */
export function withoutModulePaths(code: string): string {
  return code
    .replace(/^\/\/ (?:\.\.\/)*[\w@.+-]+(?:\/[\w@.+-]+)*\.(?:[cm]?[jt]sx?|json)\n/gm, '')
    .replace(
      /^(\s*)"(?:\.\.\/)*(?:[\w@.+-]+\/)*?node_modules\/([^"\n]+)"(\(exports, module\) \{)$/gm,
      '$1"node_modules/$2"$3',
    )
}

/** Installs nodejs if missing; true when it did. Throws if /usr/bin/node is older than Node 18. */
export async function ensureNode(host: HostSession, forWhat = 'the watchdog'): Promise<boolean> {
  const missing = (
    await host.exec(missingPackagesProbe(['nodejs']), { probe: true, echo: false })
  ).stdout.trim()
  if (missing) {
    print(`      ${host.name}: installing nodejs`)
    await host.exec(aptInstall(['nodejs']), { timeoutS: 900, echo: false })
  }
  if (host.options.dryRun && missing) return true
  const major = (await host.exec(nodeMajorProbe, { probe: true, echo: false })).stdout.trim()
  if (!(Number(major) >= NODE_MIN_MAJOR))
    throw new Error(
      `${host.name}: /usr/bin/node is ${major === 'none' ? 'missing' : `version ${major}`}; ${forWhat} needs Node ${NODE_MIN_MAJOR} or newer`,
    )
  return Boolean(missing)
}

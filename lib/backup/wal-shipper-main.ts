/**
 * The WAL shipper service (conciliaextrato-wal-shipper@<env>.service, installed by setup-server): a pass
 * over the env's spool every few seconds (wal-shipper.ts), the status written after each, a longer pause
 * while the store fails. Its config (the store, the Spaces key, the recipient) is written by make backup
 * and read before every pass, so a new one takes effect without a restart; spool and status paths come
 * from the env's name, never from the config. Runs on the host's own Node (18+), bundled into one file.
 * Usage: node wal-shipper.mjs <env> [<spool> <status file> <config file>] (the three paths: to run it
 * elsewhere by hand or in a test; the service gives the env only).
 */
import { readFileSync } from 'node:fs'
import type { WalShipperFile } from '../commands/wal.ts'
import { walShipperConfigPath, walSpoolDir, walStatusPath } from '../commands/wal-paths.ts'
import { isEntryModule, writeJsonAtomic } from '../host/program-entry.ts'
import { print, printErr } from '../report/output.ts'
import { redact, registerSecret } from '../report/redact.ts'
import { S3Store } from '../store/store-s3.ts'
import { parseRecipient, type Recipient } from './keys.ts'
import { nextStatus, type PassResult, type ShipperStatus, shipPass, spoolBacklog } from './wal-shipper.ts'

/** Seconds between passes over the spool. */
export const WAL_POLL_S = 2

let stopping = false

export interface ShipperPaths {
  env: string
  spool: string
  statusFile: string
  configFile: string
}

export const shipperPaths = (env: string): ShipperPaths => ({
  env,
  spool: walSpoolDir(env),
  statusFile: walStatusPath(env),
  configFile: walShipperConfigPath(env),
})

interface Loaded {
  text: string
  store: S3Store
  recipient: Recipient
  description: string
}

/** The config, parsed again only when its text changed; an error names the file and what to do. */
function loadConfig(path: string, env: string, before: Loaded | undefined): Loaded {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new Error(`no config at ${path}: make backup ENV=${env} writes it`)
  }
  if (before?.text === text) return before
  const cfg = JSON.parse(text) as WalShipperFile
  if (cfg.env !== env)
    throw new Error(`${path} is for env ${cfg.env}, not ${env}: make backup ENV=${env} rewrites it`)
  registerSecret('SPACES_SECRET_ACCESS_KEY', cfg.secretAccessKey)
  const recipient = parseRecipient(cfg.recipient, path)
  const store = new S3Store(cfg.store, { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey })
  const description = `${store.description}, sealed to ${recipient.id}`
  print(`wal shipper ${env}: spool -> ${description}`)
  return { text, store, recipient, description }
}

export async function runShipper(
  paths: ShipperPaths,
  opts: { passes?: number; pollS?: number } = {},
): Promise<void> {
  const pollS = opts.pollS ?? WAL_POLL_S
  let status = readStatus(paths.statusFile)
  let loaded: Loaded | undefined
  let pauseS = pollS
  for (let pass = 0; !stopping && (opts.passes === undefined || pass < opts.passes); pass++) {
    let result: PassResult
    let storeFailed = false
    try {
      loaded = loadConfig(paths.configFile, paths.env, loaded)
      storeFailed = true
      result = await shipPass({
        spool: paths.spool,
        store: loaded.store,
        recipient: loaded.recipient,
        env: paths.env,
        ...(status?.system ? { lastSystem: status.system } : {}),
      })
      storeFailed = !!result.error
    } catch (err) {
      // No pass (no config yet, or a bad one): what waits in the spool is still said, and counts.
      result = { shipped: [], ...(await spoolBacklog(paths.spool)), error: (err as Error).message }
    }
    for (const s of result.shipped) print(`${s.name}: ${s.status} (${s.bytes} bytes)`)
    if (result.error) printErr(redact(`wal shipper ${paths.env}: ${result.error}`))
    status = nextStatus(
      status,
      paths.env,
      { ...result, ...(result.error ? { error: redact(result.error) } : {}) },
      new Date(),
    )
    writeJsonAtomic(paths.statusFile, status)
    // While the store fails, wait longer (up to a minute): the spool keeps every segment meanwhile. A
    // missing or bad config is looked at again soon: make backup may be writing it right now.
    pauseS = storeFailed ? Math.min(60, pauseS * 2) : pollS
    if (!stopping && (opts.passes === undefined || pass + 1 < opts.passes)) await sleep(pauseS)
  }
}

function readStatus(path: string): ShipperStatus | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ShipperStatus
  } catch {
    return undefined
  }
}

/** A pause that a stop request (SIGTERM) ends at once; its listener goes with it (a pass every few seconds). */
export const sleep = (s: number) =>
  new Promise<void>((done) => {
    const end = () => {
      clearTimeout(t)
      process.removeListener('SIGTERM', end)
      done()
    }
    const t = setTimeout(end, s * 1000)
    process.once('SIGTERM', end)
  })

if (isEntryModule(import.meta.url)) {
  const env = process.argv[2] ?? ''
  if (!/^[a-z][a-z0-9-]*$/.test(env)) {
    printErr(`wal shipper: give the env's name (got ${JSON.stringify(env)}): node wal-shipper.mjs <env>`)
    process.exit(2)
  }
  process.on('SIGTERM', () => {
    stopping = true
  })
  const [spool, statusFile, configFile] = process.argv.slice(3)
  const paths = spool && statusFile && configFile ? { env, spool, statusFile, configFile } : shipperPaths(env)
  await runShipper(paths).catch((err: Error) => {
    printErr(redact(`wal shipper ${env}: ${err.stack ?? err.message}`))
    process.exit(1)
  })
}

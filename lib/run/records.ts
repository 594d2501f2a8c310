import { randomBytes } from 'node:crypto'
import type { Env } from '../env/load.ts'
import { secretsFor } from '../env/needs.ts'
import type { Secrets } from '../env/secrets.ts'
import { runRecordKey } from '../store/record-keys.ts'
import { openStore } from '../store/storage.ts'

// A run's audit record, also put in the env's backup store as an object of its own (never
// overwritten), so the history outlives the droplet and the machine that ran it.

/** Whether this run can reach the env's store with what it holds: a local store, or the store's key loaded. */
export function holdsStore(env: Env, loaded: readonly string[]): boolean {
  const store = env.backup?.store
  if (!store) return false
  const names = secretsFor(env, ['store'])
  return names.length > 0 ? names.every((n) => loaded.includes(n)) : store.type === 'local'
}

/** Bounded: a store that does not answer costs the run at most `timeoutS`, never its outcome. */
export async function putRunRecord(
  env: Env,
  secrets: Secrets,
  runbook: string,
  line: string,
  ended: Date,
  timeoutS = 15,
): Promise<string> {
  const config = env.backup?.store
  if (!config) throw new Error(`${env.file} has no backup store`)
  const store = openStore(config, secrets)
  const key = runRecordKey(env.name, runbook, ended, randomBytes(3).toString('hex'))
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer from ${store.description} in ${timeoutS} s`)),
      timeoutS * 1000,
    )
  })
  try {
    await Promise.race([store.put(key, Buffer.from(`${line}\n`)), timeout])
  } finally {
    clearTimeout(timer)
  }
  return `${key} in ${store.description}`
}

/**
 * A BackupStore in a local directory (`<dir>/<key>`): for tests, and for a copy on a mounted disk. Writes
 * are atomic (a temp file in the same directory, fsync, rename, fsync of the directory), so a reader sees a
 * whole object or none. Files are 0600 and directories 0700: backups are sensitive even encrypted.
 */
import { randomBytes } from 'node:crypto'
import type { Dirent } from 'node:fs'
import { link, mkdir, open, readdir, rmdir, stat, unlink } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { IntegrityError } from '../report/errors.ts'
import { type BackupStore, checkKey, checkPrefix, missingObject, ObjectExistsError } from './store.ts'

const TEMP = /^\..+\.tmp-\d+-[0-9a-f]{12}$/

export class LocalStore implements BackupStore {
  readonly dir: string
  readonly description: string

  constructor(dir: string) {
    this.dir = resolve(dir)
    this.description = `dir ${this.dir}`
  }

  private path(key: string): string {
    checkKey(key)
    return join(this.dir, ...key.split('/'))
  }

  async put(key: string, body: Readable | Buffer, opts: { size?: number } = {}): Promise<{ bytes: number }> {
    const target = this.path(key)
    const dir = dirname(target)
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const temp = join(dir, `.${basename(target)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`)
    const file = await open(temp, 'wx', 0o600)
    let bytes = 0
    try {
      if (Buffer.isBuffer(body)) {
        await file.write(body)
        bytes = body.length
      } else {
        for await (const chunk of body) {
          const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)
          await file.write(buf)
          bytes += buf.length
        }
      }
      if (opts.size !== undefined && bytes !== opts.size) {
        throw new IntegrityError(`${key}: expected ${opts.size} bytes, got ${bytes}; nothing was stored`)
      }
      await file.sync()
      await file.close()
      // link, not rename: it fails when the key exists, so an object is never replaced.
      await link(temp, target).catch((err: NodeJS.ErrnoException) => {
        throw err.code === 'EEXIST' ? new ObjectExistsError(key, this) : err
      })
      await unlink(temp)
    } catch (err) {
      await file.close().catch(() => {})
      await unlink(temp).catch(() => {})
      throw err
    }
    await syncDir(dir)
    return { bytes }
  }

  async get(key: string): Promise<Readable> {
    const file = await open(this.path(key), 'r').catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' || err.code === 'ENOTDIR' || err.code === 'EISDIR'
        ? missingObject(key, this)
        : err
    })
    if (!(await file.stat()).isFile()) {
      await file.close()
      throw missingObject(key, this)
    }
    return file.createReadStream()
  }

  async head(key: string): Promise<{ bytes: number } | undefined> {
    const info = await stat(this.path(key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined
      throw err
    })
    return info?.isFile() ? { bytes: info.size } : undefined
  }

  async list(prefix: string): Promise<{ key: string; bytes: number }[]> {
    checkPrefix(prefix)
    // Walk only the directory the prefix is certainly inside.
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/') + 1) : ''
    const found: { key: string; bytes: number }[] = []
    const walk = async (rel: string): Promise<void> => {
      let entries: Dirent[]
      try {
        entries = await readdir(join(this.dir, rel), { withFileTypes: true })
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
        throw err
      }
      for (const entry of entries) {
        const key = `${rel}${entry.name}`
        if (entry.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(`${key}/`)
        } else if (entry.isFile() && key.startsWith(prefix) && !TEMP.test(entry.name)) {
          found.push({ key, bytes: (await stat(join(this.dir, key))).size })
        }
      }
    }
    await walk(base)
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  async delete(keys: string[]): Promise<void> {
    const dirs = new Set<string>()
    for (const key of keys) {
      const path = this.path(key)
      await unlink(path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err
      })
      dirs.add(dirname(path))
    }
    // Drop directories the deletes emptied, up to (not including) the store's root.
    for (const start of dirs) {
      for (let dir = start; dir.startsWith(`${this.dir}/`); dir = dirname(dir)) {
        const removed = await rmdir(dir).then(
          () => true,
          () => false,
        )
        if (!removed) break
      }
    }
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** @module ObjectStore on a local directory: the embedded default (atomic puts, create-only writes, ranged reads). */
import { randomBytes } from 'node:crypto'
import { closeSync, openSync, readSync, promises as fs } from 'node:fs'
import path from 'node:path'
import {
  NotFoundError,
  PreconditionFailedError,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
  assertByteRange
} from './object-store.ts'
import { assertValidKey, assertValidPrefix } from './layout.ts'

/** Temporary files live beside their target (same filesystem, so rename is atomic) and are hidden from list(). */
const TMP_MARK = '.lbtmp-'

/**
 * Ranged reads up to this size are done synchronously. A search fetches dozens of small Parquet pages and page
 * indexes; through the thread pool each costs three round trips (open, read, close), which measured ~3x the time of
 * the decoding itself, while a synchronous read of a cached page blocks the event loop for microseconds.
 */
const SYNC_READ_BYTES = 256 << 10

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR'
}

export class FsObjectStore implements ObjectStore {
  readonly root: string

  constructor(rootDir: string) {
    this.root = path.resolve(rootDir)
  }

  /** Checked keys and their paths: a search reads dozens of pages of the same few files (validation measured ~2% of it). */
  private readonly paths = new Map<string, string>()

  private pathOf(key: string): string {
    const known = this.paths.get(key)
    if (known !== undefined) return known
    if (this.paths.size >= 4096) this.paths.clear()
    const full = this.checkedPath(key)
    this.paths.set(key, full)
    return full
  }

  private checkedPath(key: string): string {
    assertValidKey(key)
    if (key.includes(TMP_MARK)) throw new Error(`invalid object key ${JSON.stringify(key)}: contains "${TMP_MARK}"`)
    const full = path.join(this.root, ...key.split('/'))
    // Validation already forbids '..'; this is the belt to its braces.
    if (!full.startsWith(this.root + path.sep)) throw new Error(`object key escapes the store root: ${key}`)
    return full
  }

  async get(key: string): Promise<Uint8Array | null> {
    try {
      const buf = await fs.readFile(this.pathOf(key))
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
    } catch (err) {
      if (isMissing(err)) return null
      throw err
    }
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    assertByteRange(key, start, end)
    const file = this.pathOf(key)
    if (end - start <= SYNC_READ_BYTES) return readRangeSync(file, key, start, end)
    let handle: fs.FileHandle
    try {
      handle = await fs.open(file, 'r')
    } catch (err) {
      if (isMissing(err)) throw new NotFoundError(key)
      throw err
    }
    try {
      // Small ranges skip the stat: a read past the end returns short (one syscall less on the path every page
      // read takes); large ones are clamped to the file first so no oversized buffer is allocated.
      const stop = end - start > 1 << 24 ? Math.min(end, (await handle.stat()).size) : end
      if (start >= stop) return new Uint8Array(0)
      const out = new Uint8Array(stop - start)
      let filled = 0
      while (filled < out.length) {
        const { bytesRead } = await handle.read(out, filled, out.length - filled, start + filled)
        if (bytesRead === 0) break
        filled += bytesRead
      }
      return filled === out.length ? out : out.subarray(0, filled)
    } finally {
      await handle.close()
    }
  }

  async head(key: string): Promise<number | null> {
    try {
      const st = await fs.stat(this.pathOf(key))
      return st.isFile() ? st.size : null
    } catch (err) {
      if (isMissing(err)) return null
      throw err
    }
  }

  async put(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<void> {
    const target = this.pathOf(key)
    const dir = path.dirname(target)
    const tmp = path.join(dir, `${path.basename(target)}${TMP_MARK}${process.pid}-${randomBytes(6).toString('hex')}`)
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body
    // A concurrent delete() may prune the (then empty) parent between mkdir and open: retry a few times.
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.mkdir(dir, { recursive: true })
        const handle = await fs.open(tmp, 'wx')
        try {
          await handle.writeFile(bytes)
          await handle.sync()
        } finally {
          await handle.close()
        }
        break
      } catch (err) {
        await fs.rm(tmp, { force: true })
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 3) continue
        throw err
      }
    }
    try {
      if (options.ifNoneMatch) {
        // link() never replaces an existing name: the create-only primitive that rename() lacks.
        try {
          await fs.link(tmp, target)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new PreconditionFailedError(key)
          throw err
        }
      } else {
        await fs.rename(tmp, target)
      }
    } finally {
      await fs.rm(tmp, { force: true })
    }
    await syncDir(dir)
  }

  async delete(key: string): Promise<void> {
    const target = this.pathOf(key)
    try {
      await fs.unlink(target)
    } catch (err) {
      if (isMissing(err)) return
      throw err
    }
    // Prune now-empty folders so a deleted dataset leaves no directory skeleton behind.
    let dir = path.dirname(target)
    while (dir !== this.root && dir.startsWith(this.root + path.sep)) {
      try {
        await fs.rmdir(dir)
      } catch {
        break // not empty (or already gone): stop climbing
      }
      dir = path.dirname(dir)
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    assertValidPrefix(prefix)
    // Walk only the deepest folder the prefix fully names; the rest of the prefix filters names.
    const slash = prefix.lastIndexOf('/')
    const baseKey = slash >= 0 ? prefix.slice(0, slash + 1) : ''
    const out: ObjectInfo[] = []
    const walk = async (dirKey: string): Promise<void> => {
      let entries: import('node:fs').Dirent[]
      try {
        entries = await fs.readdir(path.join(this.root, ...dirKey.split('/').filter(Boolean)), { withFileTypes: true })
      } catch (err) {
        if (isMissing(err)) return
        throw err
      }
      for (const entry of entries) {
        const key = dirKey + entry.name
        if (entry.isDirectory()) {
          const asDir = key + '/'
          if (asDir.startsWith(prefix) || prefix.startsWith(asDir)) await walk(asDir)
        } else if (entry.isFile() && key.startsWith(prefix) && !entry.name.includes(TMP_MARK)) {
          try {
            const st = await fs.stat(path.join(this.root, ...key.split('/')))
            out.push({ key, size: st.size })
          } catch (err) {
            if (!isMissing(err)) throw err // deleted while listing: leave it out
          }
        }
      }
    }
    await walk(baseKey)
    // S3 lists in UTF-8 byte order; match it so both stores page and compare the same way.
    return out.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)))
  }
}

/** fsync the folder so a rename survives a crash (best effort: some filesystems refuse it). */
async function syncDir(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined
  try {
    handle = await fs.open(dir, 'r')
    await handle.sync()
  } catch {
    // not supported here: the rename is still atomic, only its durability is weaker
  } finally {
    await handle?.close()
  }
}

function readRangeSync(file: string, key: string, start: number, end: number): Uint8Array {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (err) {
    if (isMissing(err)) throw new NotFoundError(key)
    throw err
  }
  try {
    const out = new Uint8Array(end - start)
    let filled = 0
    while (filled < out.length) {
      const n = readSync(fd, out, filled, out.length - filled, start + filled)
      if (n === 0) break
      filled += n
    }
    return filled === out.length ? out : out.subarray(0, filled)
  } finally {
    closeSync(fd)
  }
}

/** @module ObjectStore in memory: for tests, and a counting wrapper that records every byte fetched. */
import {
  NotFoundError,
  PreconditionFailedError,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
  assertByteRange
} from './object-store.ts'
import { assertValidKey, assertValidPrefix } from './layout.ts'

const utf8 = new TextEncoder()

function compareBytes(a: string, b: string): number {
  // Code-point order is UTF-8 byte order, the order S3 lists in.
  const x = [...a]
  const y = [...b]
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!
    if (d) return d
  }
  return x.length - y.length
}

export class MemoryObjectStore implements ObjectStore {
  readonly objects = new Map<string, Uint8Array>()

  async get(key: string): Promise<Uint8Array | null> {
    assertValidKey(key)
    const v = this.objects.get(key)
    return v ? v.slice() : null
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    assertValidKey(key)
    assertByteRange(key, start, end)
    const v = this.objects.get(key)
    if (!v) throw new NotFoundError(key)
    return v.slice(Math.min(start, v.length), Math.min(end, v.length))
  }

  async head(key: string): Promise<number | null> {
    assertValidKey(key)
    return this.objects.get(key)?.length ?? null
  }

  async put(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<void> {
    assertValidKey(key)
    if (options.ifNoneMatch && this.objects.has(key)) throw new PreconditionFailedError(key)
    this.objects.set(key, typeof body === 'string' ? utf8.encode(body) : body.slice())
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key)
    this.objects.delete(key)
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    assertValidPrefix(prefix)
    return [...this.objects]
      .filter(([k]) => k.startsWith(prefix))
      .map(([key, v]) => ({ key, size: v.length }))
      .sort((a, b) => compareBytes(a.key, b.key))
  }
}

export interface FetchRecord {
  key: string
  start: number
  end: number
  bytes: number
}

/** Wraps a store and records every read, to check that a reader fetches only what it planned to. */
export class CountingObjectStore implements ObjectStore {
  readonly fetches: FetchRecord[] = []

  constructor(readonly inner: ObjectStore) {}

  get bytesRead(): number {
    return this.fetches.reduce((s, f) => s + f.bytes, 0)
  }

  reset(): void {
    this.fetches.length = 0
  }

  async get(key: string): Promise<Uint8Array | null> {
    const v = await this.inner.get(key)
    this.fetches.push({ key, start: 0, end: v?.length ?? 0, bytes: v?.length ?? 0 })
    return v
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    const v = await this.inner.getRange(key, start, end)
    this.fetches.push({ key, start, end: start + v.length, bytes: v.length })
    return v
  }

  head(key: string): Promise<number | null> {
    return this.inner.head(key)
  }
  put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<void> {
    return this.inner.put(key, body, options)
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key)
  }
  list(prefix: string): Promise<ObjectInfo[]> {
    return this.inner.list(prefix)
  }
}

/** Wraps a store and fails every read of a key `fails` picks (a lost or unreadable file), counting the refusals. */
export class FailingReadsStore implements ObjectStore {
  refused = 0

  constructor(
    readonly inner: ObjectStore,
    readonly fails: (key: string) => boolean
  ) {}

  private check(key: string): void {
    if (!this.fails(key)) return
    this.refused++
    throw new Error(`${key} cannot be read (a test's failing store)`)
  }
  async get(key: string): Promise<Uint8Array | null> {
    this.check(key)
    return this.inner.get(key)
  }
  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    this.check(key)
    return this.inner.getRange(key, start, end)
  }
  async head(key: string): Promise<number | null> {
    this.check(key)
    return this.inner.head(key)
  }
  put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<void> {
    return this.inner.put(key, body, options)
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key)
  }
  list(prefix: string): Promise<ObjectInfo[]> {
    return this.inner.list(prefix)
  }
}

/** @module ObjectStore over a Cloudflare R2 bucket binding (the Worker's store), with no Node or AWS SDK code. */
import {
  NotFoundError,
  PreconditionFailedError,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
  assertByteRange
} from './object-store.ts'
import { assertValidKey, assertValidPrefix, normalizeStorePrefix } from './layout.ts'

/**
 * The part of the R2 binding this store uses, declared structurally so the shared package needs no
 * @cloudflare/workers-types globals (they clash with DOM's), and miniflare's Node-side proxy fits too.
 */
export interface R2ObjectLike {
  key: string
  size: number
}
export interface R2ObjectBodyLike extends R2ObjectLike {
  arrayBuffer(): Promise<ArrayBuffer>
}
export interface R2BucketLike {
  get(key: string, options?: { range?: { offset: number; length?: number } }): Promise<R2ObjectBodyLike | null>
  head(key: string): Promise<R2ObjectLike | null>
  put(
    key: string,
    value: ArrayBuffer | ArrayBufferView | string,
    options?: {
      onlyIf?: { etagDoesNotMatch?: string }
      httpMetadata?: { contentType?: string }
    }
  ): Promise<R2ObjectLike | null>
  delete(keys: string | string[]): Promise<void>
  list(options?: {
    prefix?: string
    cursor?: string
    limit?: number
  }): Promise<{ objects: R2ObjectLike[]; truncated: boolean; cursor?: string }>
}

export interface R2ObjectStoreOptions {
  bucket: R2BucketLike
  /** Key prefix inside the bucket (a trailing '/' is added when missing). */
  prefix?: string
  /** Keys per list call (R2's maximum, 1000, by default; tests lower it to exercise pagination). */
  pageSize?: number
}

export class R2ObjectStore implements ObjectStore {
  readonly bucket: R2BucketLike
  readonly prefix: string
  private readonly pageSize: number

  constructor(options: R2ObjectStoreOptions) {
    this.bucket = options.bucket
    this.pageSize = options.pageSize ?? 1000
    this.prefix = normalizeStorePrefix(options.prefix)
  }

  private full(key: string): string {
    assertValidKey(key)
    return this.prefix + key
  }

  async get(key: string): Promise<Uint8Array | null> {
    const obj = await this.bucket.get(this.full(key))
    return obj ? new Uint8Array(await obj.arrayBuffer()) : null
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    assertByteRange(key, start, end)
    const full = this.full(key)
    if (start === end) {
      if ((await this.bucket.head(full)) === null) throw new NotFoundError(key)
      return new Uint8Array(0)
    }
    let obj: R2ObjectBodyLike | null
    try {
      obj = await this.bucket.get(full, { range: { offset: start, length: end - start } })
    } catch (err) {
      // R2 refuses a range starting at or past the end (InvalidRange, or a bare 500 at exactly the end) rather than
      // answering empty: past the end is an empty read, as on disk and S3; a missing object is still missing.
      const size = await this.bucket.head(full).then(
        o => o?.size ?? null,
        () => undefined
      )
      if (size === null) throw new NotFoundError(key)
      if (size !== undefined && start >= size) return new Uint8Array(0)
      throw err
    }
    if (!obj) throw new NotFoundError(key)
    const bytes = new Uint8Array(await obj.arrayBuffer())
    return bytes.length > end - start ? bytes.subarray(0, end - start) : bytes
  }

  async head(key: string): Promise<number | null> {
    const obj = await this.bucket.head(this.full(key))
    return obj ? obj.size : null
  }

  async put(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<void> {
    const full = this.full(key)
    const out = await this.bucket.put(full, body, {
      // R2 evaluates the condition atomically against the stored object: '*' matches any existing etag, so this is create-only.
      ...(options.ifNoneMatch ? { onlyIf: { etagDoesNotMatch: '*' } } : {}),
      ...(options.contentType ? { httpMetadata: { contentType: options.contentType } } : {})
    })
    // A failed onlyIf is reported as null, not an error.
    if (out === null && options.ifNoneMatch) throw new PreconditionFailedError(key)
  }

  async delete(key: string): Promise<void> {
    await this.bucket.delete(this.full(key))
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    assertValidPrefix(prefix)
    const out: ObjectInfo[] = []
    let cursor: string | undefined
    do {
      const page = await this.bucket.list({ prefix: this.prefix + prefix, cursor, limit: this.pageSize })
      for (const obj of page.objects) out.push({ key: obj.key.slice(this.prefix.length), size: obj.size })
      cursor = page.truncated ? page.cursor : undefined
    } while (cursor)
    return out
  }
}

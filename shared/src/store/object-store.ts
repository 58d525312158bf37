/** @module The ObjectStore adapter interface: the only way code reaches storage (local disk, S3, R2). */

export interface ObjectInfo {
  key: string
  size: number
}

export interface PutOptions {
  /** Only create: fail with PreconditionFailedError if the key exists (S3 If-None-Match: *). */
  ifNoneMatch?: boolean
  contentType?: string
}

/** Keys are '/'-separated, never start with '/', and never contain '..' segments. */
export interface ObjectStore {
  /** Whole object, or null when missing. */
  get(key: string): Promise<Uint8Array | null>
  /** Bytes [start, end) of an object; throws NotFoundError when missing. */
  getRange(key: string, start: number, end: number): Promise<Uint8Array>
  /** Size in bytes, or null when missing. */
  head(key: string): Promise<number | null>
  /** Atomic from a reader's point of view: a reader sees the old object, the new one, or nothing. */
  put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<void>
  delete(key: string): Promise<void>
  /** Every key under a prefix (recursive), in lexicographic order. */
  list(prefix: string): Promise<ObjectInfo[]>
}

export class NotFoundError extends Error {
  constructor(readonly key: string) {
    super(`object not found: ${key}`)
    this.name = 'NotFoundError'
  }
}

export class PreconditionFailedError extends Error {
  constructor(readonly key: string) {
    super(`object already exists: ${key}`)
    this.name = 'PreconditionFailedError'
  }
}

/** Refuses a byte range [start, end) that is not whole numbers with 0 <= start <= end: every adapter's getRange checks this first. */
export function assertByteRange(key: string, start: number, end: number): void {
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end >= start)) {
    throw new RangeError(`bad byte range [${start}, ${end}) for ${key}`)
  }
}

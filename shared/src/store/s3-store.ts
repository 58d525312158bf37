/** @module ObjectStore on S3 (or any S3-compatible server, e.g. R2 or fauxqs) through @aws-sdk/client-s3. */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client
} from '@aws-sdk/client-s3'
import {
  NotFoundError,
  PreconditionFailedError,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
  assertByteRange
} from './object-store.ts'
import { assertValidKey, assertValidPrefix, normalizeStorePrefix } from './layout.ts'

export interface S3ObjectStoreOptions {
  client: S3Client
  bucket: string
  /** Key prefix inside the bucket (a trailing '/' is added when missing). */
  prefix?: string
}

interface AwsError {
  name?: string
  Code?: string
  $metadata?: { httpStatusCode?: number }
}

function status(err: unknown): number | undefined {
  return (err as AwsError | undefined)?.$metadata?.httpStatusCode
}

function errorName(err: unknown): string | undefined {
  const e = err as AwsError | undefined
  return e?.name ?? e?.Code
}

function isNotFound(err: unknown): boolean {
  const name = errorName(err)
  return status(err) === 404 || name === 'NoSuchKey' || name === 'NotFound'
}

const utf8 = new TextEncoder()

export class S3ObjectStore implements ObjectStore {
  readonly client: S3Client
  readonly bucket: string
  readonly prefix: string

  constructor(options: S3ObjectStoreOptions) {
    this.client = options.client
    this.bucket = options.bucket
    this.prefix = normalizeStorePrefix(options.prefix)
  }

  private full(key: string): string {
    assertValidKey(key)
    return this.prefix + key
  }

  async get(key: string): Promise<Uint8Array | null> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.full(key) }))
      return res.Body ? await res.Body.transformToByteArray() : new Uint8Array(0)
    } catch (err) {
      if (isNotFound(err)) return null
      throw err
    }
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    assertByteRange(key, start, end)
    if (start === end) {
      // HTTP has no empty range; still report a missing object as missing.
      if ((await this.head(key)) === null) throw new NotFoundError(key)
      return new Uint8Array(0)
    }
    try {
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.full(key),
          Range: `bytes=${start}-${end - 1}`
        })
      )
      const bytes = res.Body ? await res.Body.transformToByteArray() : new Uint8Array(0)
      // A server that ignores Range answers 200 with the whole object: cut it ourselves.
      if (status(res) !== 206 && bytes.length > end - start) return bytes.subarray(start, end)
      return bytes
    } catch (err) {
      if (isNotFound(err)) throw new NotFoundError(key)
      // 416: the range starts at or past the end of the object, which is an empty read, as on disk.
      if (status(err) === 416 || errorName(err) === 'InvalidRange') return new Uint8Array(0)
      throw err
    }
  }

  async head(key: string): Promise<number | null> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.full(key) }))
      return res.ContentLength ?? 0
    } catch (err) {
      if (isNotFound(err)) return null
      throw err
    }
  }

  async put(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<void> {
    const bytes = typeof body === 'string' ? utf8.encode(body) : body
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: this.full(key),
            Body: bytes,
            ContentLength: bytes.length,
            ContentType: options.contentType,
            IfNoneMatch: options.ifNoneMatch ? '*' : undefined
          })
        )
        return
      } catch (err) {
        if (options.ifNoneMatch && (status(err) === 412 || errorName(err) === 'PreconditionFailed')) {
          throw new PreconditionFailedError(key)
        }
        // 409 ConditionalRequestConflict: another conditional write to this key is in flight; AWS says retry.
        if (options.ifNoneMatch && status(err) === 409 && attempt < 4) {
          await new Promise(r => setTimeout(r, 50 * 2 ** attempt))
          continue
        }
        throw err
      }
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.full(key) }))
    } catch (err) {
      if (isNotFound(err)) return
      throw err
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    assertValidPrefix(prefix)
    const out: ObjectInfo[] = []
    let token: string | undefined
    do {
      const res = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.prefix + prefix,
          ContinuationToken: token
        })
      )
      for (const obj of res.Contents ?? []) {
        if (obj.Key === undefined) continue
        out.push({ key: obj.Key.slice(this.prefix.length), size: obj.Size ?? 0 })
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined
    } while (token)
    return out
  }
}

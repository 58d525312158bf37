/** @module s3:// parts through an S3 client: HEAD for size and ETag, ranged GETs held to that ETag, the cache reused while the object is unchanged. */
import { rm } from 'node:fs/promises'
import {
  cachedPart,
  exists,
  once,
  readMeta,
  tooLarge,
  type Ctx,
  type FetchedPart,
  type FetchPartOptions
} from './cache.ts'
import { parseContentRange } from './http.ts'
import { RemotePartError } from './refs.ts'
import { describe, isAbort, transfer } from './transfer.ts'

export interface S3Head {
  ETag?: string
  ContentLength?: number
}
export interface S3Get {
  Body?: unknown
  ContentRange?: string
  ContentLength?: number
  ETag?: string
}

export function s3Status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode
}

export async function fetchS3To(
  ctx: Ctx,
  client: FetchPartOptions['s3'],
  bucket: string,
  key: string,
  sha256: string | undefined,
  final: string,
  label: string
): Promise<FetchedPart> {
  if (!client) throw new RemotePartError('no-client', `${label}: s3:// parts need an S3 client (the s3 option)`)
  const { HeadObjectCommand, GetObjectCommand } = await import('@aws-sdk/client-s3')
  let head: S3Head
  try {
    head = (await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))) as S3Head
  } catch (err) {
    if (isAbort(err, ctx.signal)) throw err
    const status = s3Status(err)
    if (status === 404)
      throw new RemotePartError('not-found', `no object ${key} in bucket ${bucket} (${label})`, { status })
    if (status === 401 || status === 403)
      throw new RemotePartError(
        'auth',
        `${label}: access denied (${status}); check the AWS credentials and the bucket policy`,
        { status }
      )
    if (status === undefined && (await exists(final))) {
      ctx.log(`${label}: cannot reach S3 (${describe(err)}); using the cached copy`)
      return cachedPart(ctx, final, label)
    }
    throw new RemotePartError(status === undefined ? 'network' : 'http', `${label}: ${describe(err)}`, {
      ...(status ? { status } : {}),
      cause: err
    })
  }
  const etag = head.ETag
  if (head.ContentLength !== undefined && head.ContentLength > ctx.maxBytes)
    throw tooLarge(label, head.ContentLength, ctx.maxBytes)
  if (await exists(final)) {
    const meta = await readMeta(ctx, final)
    if (meta && etag !== undefined && meta.etag === etag && (sha256 === undefined || meta.sha256 === sha256))
      return cachedPart(ctx, final, label)
    ctx.log(`${label}: the object changed (ETag ${meta?.etag ?? 'unknown'} -> ${etag}); fetching again`)
    await rm(final, { force: true })
  }
  return once(final, () =>
    transfer(ctx, {
      label,
      final,
      source: label,
      ...(etag !== undefined ? { validator: etag } : {}),
      ...(head.ContentLength !== undefined ? { expectedSize: head.ContentLength } : {}),
      ...(sha256 ? { sha256 } : {}),
      open: async (offset: number) => {
        let out: S3Get
        try {
          out = (await client.send(
            new GetObjectCommand({
              Bucket: bucket,
              Key: key,
              ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}),
              ...(etag ? { IfMatch: etag } : {})
            })
          )) as S3Get
        } catch (err) {
          const status = s3Status(err)
          if (status === 412)
            throw new RemotePartError('interrupted', `${label}: the object changed during the download`, {
              status,
              retryable: true
            })
          throw new RemotePartError(status === undefined ? 'network' : 'http', `${label}: ${describe(err)}`, {
            ...(status ? { status } : {}),
            retryable: status === undefined || status >= 500,
            cause: err
          })
        }
        const range = parseContentRange(out.ContentRange ?? null)
        const start = offset > 0 && range?.start === offset ? offset : 0
        return { start, body: out.Body as AsyncIterable<Uint8Array> }
      }
    })
  )
}

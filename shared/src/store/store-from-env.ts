/** @module The deployment's object store from the environment: S3 when BUCKET is set (AWS_REGION, S3_ENDPOINT), else DATA_DIR/store on disk. */
import { join, resolve } from 'node:path'
import { S3Client } from '@aws-sdk/client-s3'
import { FsObjectStore } from './fs-store.ts'
import { S3ObjectStore } from './s3-store.ts'
import type { ObjectStore } from './object-store.ts'

export function storeFromEnv(env: Record<string, string | undefined>): ObjectStore {
  if (env.BUCKET) {
    const client = new S3Client({
      region: env.AWS_REGION ?? 'us-east-1',
      ...(env.S3_ENDPOINT ? { endpoint: env.S3_ENDPOINT, forcePathStyle: true } : {})
    })
    return new S3ObjectStore({ client, bucket: env.BUCKET })
  }
  return new FsObjectStore(join(resolve(env.DATA_DIR ?? '.data'), 'store'))
}

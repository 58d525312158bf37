/**
 * @module `npm run keys -- create --tenant acme [--name ci] | list | revoke <hash>`: API keys in the deployment's
 * store (S3 when BUCKET is set, with AWS_REGION / S3_ENDPOINT; else DATA_DIR/store on disk).
 */
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { S3Client } from '@aws-sdk/client-s3'
import { ApiKeyStore } from '@latentbase/shared/auth/api-keys'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { S3ObjectStore } from '@latentbase/shared/store/s3-store'
import type { ObjectStore } from '@latentbase/shared/store/object-store'

function storeFromEnv(env: Record<string, string | undefined>): ObjectStore {
  if (env.BUCKET) {
    const client = new S3Client({ region: env.AWS_REGION ?? 'us-east-1', ...(env.S3_ENDPOINT ? { endpoint: env.S3_ENDPOINT, forcePathStyle: true } : {}) })
    return new S3ObjectStore({ client, bucket: env.BUCKET })
  }
  return new FsObjectStore(join(resolve(env.DATA_DIR ?? '.data'), 'store'))
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { tenant: { type: 'string' }, name: { type: 'string' } } })
const keys = new ApiKeyStore(storeFromEnv(process.env))
const [command, arg] = positionals
if (command === 'create' && values.tenant) {
  const { key, hash, record } = await keys.create(values.tenant, values.name)
  console.log(`API key for tenant ${record.tenant} (${record.name}), shown once:\n\n  ${key}\n\nid (sha256, for revoke): ${hash}`)
} else if (command === 'list') {
  for (const { hash, record } of await keys.list()) console.log(`${hash}  ${record.tenant.padEnd(20)} ${record.name.padEnd(16)} ${record.hint}...  ${record.createdAt}${record.revokedAt ? `  revoked ${record.revokedAt}` : ''}`)
} else if (command === 'revoke' && arg) {
  console.log((await keys.revoke(arg)) ? `revoked ${arg}` : `no key ${arg}`)
} else {
  console.error('usage: npm run keys -- create --tenant NAME [--name LABEL] | list | revoke HASH')
  process.exit(2)
}

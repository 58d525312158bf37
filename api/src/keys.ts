/**
 * @module `npm run keys -- create --tenant acme [--name ci] | list | revoke <hash>`: API keys in the deployment's
 * store (S3 when BUCKET is set, with AWS_REGION / S3_ENDPOINT; else DATA_DIR/store on disk).
 */
import { parseArgs } from 'node:util'
import { ApiKeyStore } from '@latentbase/shared/auth/api-keys'
import { storeFromEnv } from '@latentbase/shared/store/store-from-env'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { tenant: { type: 'string' }, name: { type: 'string' } }
})
const keys = new ApiKeyStore(storeFromEnv(process.env))
const [command, arg] = positionals
if (command === 'create' && values.tenant) {
  const { key, hash, record } = await keys.create(values.tenant, values.name)
  console.log(
    `API key for tenant ${record.tenant} (${record.name}), shown once:\n\n  ${key}\n\nid (sha256, for revoke): ${hash}`
  )
} else if (command === 'list') {
  for (const { hash, record } of await keys.list())
    console.log(
      `${hash}  ${record.tenant.padEnd(20)} ${record.name.padEnd(16)} ${record.hint}...  ${record.createdAt}${record.revokedAt ? `  revoked ${record.revokedAt}` : ''}`
    )
} else if (command === 'revoke' && arg) {
  console.log((await keys.revoke(arg)) ? `revoked ${arg}` : `no key ${arg}`)
} else {
  console.error('usage: npm run keys -- create --tenant NAME [--name LABEL] | list | revoke HASH')
  process.exit(2)
}

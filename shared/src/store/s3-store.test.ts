/** @module Tests for the S3 ObjectStore against fauxqs, an S3-compatible server started in this process. */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { PreconditionFailedError } from './object-store.ts'
import { S3ObjectStore } from './s3-store.ts'
import { objectStoreContract } from './object-store.contract.ts'
import { startTestS3, type TestS3 } from './s3-testkit.ts'

let s3: TestS3
before(async () => {
  s3 = await startTestS3('latents')
})
after(() => s3?.stop())

let n = 0
// Each test gets its own key prefix in one bucket, which also checks that the prefix is honoured.
objectStoreContract('S3ObjectStore', {
  make: async () => new S3ObjectStore({ client: s3.client, bucket: s3.bucket, prefix: `run${n++}` }),
  listKeys: 1100
})

test('S3ObjectStore: create-only puts send If-None-Match: * and map 412 to PreconditionFailedError', async () => {
  const store = new S3ObjectStore({ client: s3.client, bucket: s3.bucket, prefix: 'cond' })
  const before = { ...s3.conditional }
  await store.put('k', 'one', { ifNoneMatch: true })
  await assert.rejects(store.put('k', 'two', { ifNoneMatch: true }), PreconditionFailedError)
  await store.put('k', 'three')
  assert.equal(s3.conditional.puts - before.puts, 2) // the unconditional put carried no header
  assert.equal(s3.conditional.refused - before.refused, 1)
})

test('S3ObjectStore: keys are stored under the prefix and stores with other prefixes do not see them', async () => {
  const a = new S3ObjectStore({ client: s3.client, bucket: s3.bucket, prefix: 'tenant-a/' })
  const b = new S3ObjectStore({ client: s3.client, bucket: s3.bucket, prefix: 'tenant-b' })
  const root = new S3ObjectStore({ client: s3.client, bucket: s3.bucket })
  await a.put('k', 'from a')
  assert.equal(await b.get('k'), null)
  assert.equal(new TextDecoder().decode((await root.get('tenant-a/k'))!), 'from a')
  assert.deepEqual(
    (await a.list('')).map(o => o.key),
    ['k']
  )
})

/** @module R2ObjectStore against real R2 semantics: workerd's R2 (through miniflare's Node proxy) runs the ObjectStore contract. */
import { before, after } from 'node:test'
import { Miniflare } from 'miniflare'
import { objectStoreContract } from './object-store.contract.ts'
import { R2ObjectStore, type R2BucketLike } from './r2-store.ts'

let mf: Miniflare
let bucket: R2BucketLike
let n = 0

before(async () => {
  mf = new Miniflare({
    modules: true,
    script: 'export default { fetch() { return new Response(null, { status: 204 }) } }',
    compatibilityDate: '2026-07-01',
    r2Buckets: ['STORE']
  })
  bucket = (await mf.getR2Bucket('STORE')) as unknown as R2BucketLike
})
after(async () => {
  await mf?.dispose()
})

// Each test gets its own prefix in the one bucket; a page size of 7 makes the listing test cross many R2 list pages.
objectStoreContract('R2ObjectStore (workerd R2)', {
  make: async () => new R2ObjectStore({ bucket, prefix: `t${++n}`, pageSize: 7 })
})

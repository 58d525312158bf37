/** @module Tests of API keys and tenants: keys stored hashed, 401 without one, and another tenant's dataset indistinguishable from a missing one. */
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { ApiKeyStore } from '@latentbase/shared/auth/api-keys'
import { sha256Hex } from '@latentbase/shared/util/sha256'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { createApp } from './app.ts'
import { syntheticCatalog, syntheticTopics, writeSyntheticDataset } from './bench/synthetic-store.ts'

const N_LATENTS = 128
const encoders = syntheticCatalog('syn', N_LATENTS, syntheticTopics(N_LATENTS, 2, 8))
const objects = new MemoryObjectStore()
const datasets = new DatasetStore(objects)
let now = 1_700_000_000_000
const keys = new ApiKeyStore(objects, 30_000, () => now)
let acme: string, globex: string, acmeHash: string
let app: ReturnType<typeof createApp>

before(async () => {
  const a = await keys.create('acme', 'ci')
  acme = a.key
  acmeHash = a.hash
  globex = (await keys.create('globex')).key
  for (const [tenant, id] of [
    ['acme', 'ds_a1'],
    ['acme', 'ds_a2'],
    ['globex', 'ds_g1']
  ] as const) {
    await writeSyntheticDataset(
      objects,
      datasets,
      { tenant, id, encoderId: 'syn' },
      { nDocs: 30, nLatents: N_LATENTS, meanActive: 10, topics: 2, topicLatents: 8, seed: id.length }
    )
  }
  app = createApp({
    objects,
    datasets,
    encoders,
    mode: 'cloud',
    apiKeys: keys,
    tenantOf: () => {
      throw new Error('with API keys, the tenant comes from the key')
    },
    queue: new EmbeddedQueue<JobMessage>(join(await mkdtemp(join(tmpdir(), 'latentbase-auth-')), 'q'))
  })
})

const get = async (path: string, key?: string, header: 'bearer' | 'x-api-key' = 'bearer') => {
  const headers: Record<string, string> = key
    ? header === 'bearer'
      ? { authorization: `Bearer ${key}` }
      : { 'x-api-key': key }
    : {}
  const res = await app.request(path, { headers })
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    auth: res.headers.get('www-authenticate'),
    body: (await res.json()) as Record<string, any>
  }
}

test('keys are stored hashed: the store holds no key, and the hash resolves to the tenant', async () => {
  const listed = await keys.list()
  assert.equal(listed.length, 2)
  for (const { hash, record } of listed) {
    const raw = new TextDecoder().decode((await objects.get(`_auth/api-keys/${hash}.json`))!)
    assert.ok(!raw.includes(acme) && !raw.includes(globex), 'no key in the stored record')
    assert.equal(record.hint.length, 9)
  }
  assert.equal(acmeHash, await sha256Hex(acme))
  assert.equal(await keys.tenantOf(acme), 'acme')
  assert.equal(await keys.tenantOf('lb_' + 'x'.repeat(43)), null)
})

test('no key or a wrong key: 401 problem+json with WWW-Authenticate; /health stays open', async () => {
  const none = await get('/datasets')
  assert.equal(none.status, 401)
  assert.equal(none.type, 'application/problem+json')
  assert.match(none.auth ?? '', /^Bearer/)
  assert.match(none.body.detail ?? none.body.title, /API key is required/)
  const wrong = await get('/datasets', 'lb_' + 'y'.repeat(43))
  assert.equal(wrong.status, 401)
  assert.equal((await app.request('/health')).status, 200)
})

test("each key sees only its tenant; another tenant's dataset looks exactly like a missing one", async () => {
  const mine = await get('/datasets', acme)
  assert.equal(mine.status, 200)
  const ids = (mine.body.datasets ?? mine.body.items ?? mine.body).map((d: { id: string }) => d.id).sort()
  assert.deepEqual(ids, ['ds_a1', 'ds_a2'])
  assert.equal((await get('/datasets/ds_g1', globex, 'x-api-key')).status, 200)

  const theirs = await get('/datasets/ds_g1', acme)
  const missing = await get('/datasets/ds_nope', acme)
  assert.equal(theirs.status, 404)
  assert.deepEqual(
    { ...theirs.body, detail: theirs.body.detail?.replace('ds_g1', 'X') },
    { ...missing.body, detail: missing.body.detail?.replace('ds_nope', 'X') }
  )
  for (const path of [
    '/diff?a=ds_a1&b=ds_g1',
    '/latents/3?dataset=ds_g1',
    '/correlations?dataset=ds_g1',
    '/datasets/ds_g1/documents/0'
  ]) {
    assert.equal((await get(path, acme)).status, 404, path)
  }
  const del = await app.request('/datasets/ds_g1', { method: 'DELETE', headers: { authorization: `Bearer ${acme}` } })
  assert.equal(del.status, 404)
  assert.equal((await get('/datasets/ds_g1', globex)).status, 200, "the other tenant's dataset survived the attempt")
})

test('a revoked key stops working once its cached entry expires (at most 30 s)', async () => {
  assert.equal((await get('/datasets', acme)).status, 200)
  assert.equal(await keys.revoke(acmeHash), true)
  assert.equal((await get('/datasets', acme)).status, 401, 'the store that revoked it drops its cache at once')
  const other = new ApiKeyStore(objects, 30_000, () => now)
  now += 60_000
  assert.equal(await other.tenantOf(acme), null)
})

test('rate limits per tenant: over the burst, 429 with Retry-After; other tenants unaffected; the bucket refills', async () => {
  let t = 1_700_000_000_000
  const limited = createApp({
    objects,
    datasets,
    encoders,
    mode: 'cloud',
    apiKeys: new ApiKeyStore(objects),
    tenantOf: () => 'unused',
    queue: new EmbeddedQueue<JobMessage>(join(await mkdtemp(join(tmpdir(), 'latentbase-rate-')), 'q')),
    rateLimit: { perSecond: 0.5, burst: 3 },
    now: () => new Date(t)
  })
  const g = (key: string) => limited.request('/datasets', { headers: { authorization: `Bearer ${key}` } })
  const fresh = (await keys.create('acme', 'rate')).key
  for (let i = 0; i < 3; i++) assert.equal((await g(fresh)).status, 200)
  const over = await g(fresh)
  assert.equal(over.status, 429)
  assert.equal(over.headers.get('retry-after'), '2')
  assert.equal(over.headers.get('content-type'), 'application/problem+json')
  assert.equal((await g(globex)).status, 200, 'another tenant has its own bucket')
  assert.equal((await limited.request('/health')).status, 200)
  t += 2_000
  assert.equal((await g(fresh)).status, 200, 'refilled after Retry-After')
})

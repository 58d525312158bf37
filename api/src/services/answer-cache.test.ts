/**
 * @module Cached answers: strong ETags over ready datasets, 304 on If-None-Match, the in-process LRU, no stale answer
 * after a DELETE (in this process or another sharing the store), relabels change the ETag, and no shared cache can
 * give one tenant's answer to another (private + Vary with API keys; public without).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { ApiKeyStore } from '@latentbase/shared/auth/api-keys'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { writeLabelOverlay } from '@latentbase/shared/catalog/label-overlay'
import { StoreEncoderCatalog, publishEncoderCatalog } from '@latentbase/shared/catalog/store-catalog'
import { createApp } from '../app.ts'
import type { AppDeps } from '../deps.ts'
import { syntheticCatalog, syntheticTopics, writeSyntheticDataset } from '../bench/synthetic-store.ts'
import { AnswerCache, matchesIfNoneMatch } from './answer-cache.ts'

const N_LATENTS = 128
const topics = syntheticTopics(N_LATENTS, 2, 8)
const encoders = syntheticCatalog('syn', N_LATENTS, topics)

async function world(tenants: string[]) {
  const objects = new MemoryObjectStore()
  const datasets = new DatasetStore(objects)
  let seed = 1
  for (const tenant of tenants) {
    for (const id of ['ds_a', 'ds_b']) {
      await writeSyntheticDataset(
        objects,
        datasets,
        { tenant, id, encoderId: 'syn' },
        { nDocs: 40, nLatents: N_LATENTS, meanActive: 12, topics: 2, topicLatents: 8, seed: seed++ }
      )
    }
  }
  const queue = new EmbeddedQueue<JobMessage>(join(await mkdtemp(join(tmpdir(), 'latentbase-answers-')), 'q'))
  return { objects, datasets, queue }
}

const QUERIES = {
  diff: '/diff?a=ds_a&b=ds_b&limit=10',
  latent: '/latents/3?dataset=ds_a',
  search: `/search?dataset=ds_a&q=${encodeURIComponent('topic')}&limit=5`,
  correlations: '/correlations?dataset=ds_a&limit=5',
  document: '/datasets/ds_a/documents/2'
}

test('answers over ready datasets carry strong ETags, revalidate with 304, come from the LRU when repeated, and equal queries share one', async () => {
  const w = await world(['local'])
  const cache = new AnswerCache()
  const app = createApp({ ...w, encoders, mode: 'local', tenantOf: () => 'local', answerCache: cache })
  for (const [name, path] of Object.entries(QUERIES)) {
    const first = await app.request(path)
    assert.equal(first.status, 200, `${name}: ${await first.clone().text()}`)
    const etag = first.headers.get('etag')!
    assert.match(etag, /^"[A-Za-z0-9_-]{43}"$/, `${name}: a strong ETag`)
    assert.equal(first.headers.get('cache-control'), 'public, no-cache', name)
    const body = await first.text()
    const hits = cache.hits
    const again = await app.request(path)
    assert.equal(again.headers.get('etag'), etag, `${name}: the same answer has the same ETag`)
    assert.equal(await again.text(), body, name)
    assert.equal(cache.hits, hits + 1, `${name}: the repeat came from the in-process cache`)
    const revalidated = await app.request(path, { headers: { 'if-none-match': `W/"other", ${etag}` } })
    assert.equal(revalidated.status, 304, name)
    assert.equal(await revalidated.text(), '')
    assert.equal(revalidated.headers.get('etag'), etag)
    const stale = await app.request(path, { headers: { 'if-none-match': '"not-it"' } })
    assert.equal(stale.status, 200, `${name}: another ETag gets the answer`)
  }
  // Normalized: parameter order and spelled-out defaults do not matter; a different limit does.
  const tag = async (path: string) => (await app.request(path)).headers.get('etag')
  assert.equal(await tag('/diff?limit=10&b=ds_b&a=ds_a&metric=absolute'), await tag(QUERIES.diff))
  assert.notEqual(await tag('/diff?a=ds_a&b=ds_b&limit=11'), await tag(QUERIES.diff))
  // Searches with LLM steps are not cached answers (they cost and vary): no ETag (503 here: no LLM configured).
  assert.equal((await app.request(`${QUERIES.search}&rerank=true`)).headers.get('etag'), null)
})

test("a relabel (the tenant's label overlay) changes the ETag and the answer", async () => {
  const w = await world(['local'])
  const app = createApp({ ...w, encoders, mode: 'local', tenantOf: () => 'local' })
  const before = await app.request(QUERIES.latent)
  const manifest = (await w.datasets.getManifest('local', 'ds_a'))!
  await writeLabelOverlay(w.objects, 'local', manifest.encoderFingerprint, [
    { latent: 3, label: 'a brand new label', source: 'llm', detection: null, fuzzing: null }
  ])
  const after = await app.request(QUERIES.latent, { headers: { 'if-none-match': before.headers.get('etag')! } })
  assert.equal(after.status, 200, 'the old ETag no longer matches')
  assert.notEqual(after.headers.get('etag'), before.headers.get('etag'))
  assert.equal(((await after.json()) as { label: string }).label, 'a brand new label')
})

test("labels re-imported under the encoder's fingerprint change the ETag, in an API that reads the published catalog", async () => {
  const w = await world(['local'])
  const info = encoders.get('syn')!
  const labels = await encoders.labels('syn')
  const { labelsVersion: _, ...unversioned } = info
  await publishEncoderCatalog(w.objects, [{ info: unversioned, labels }])
  const published = await StoreEncoderCatalog.load(w.objects, { ttlMs: 0 })
  const cache = new AnswerCache()
  const app = createApp({ ...w, encoders: published, mode: 'local', tenantOf: () => 'local', answerCache: cache })
  const tags: Record<string, string> = {}
  for (const [name, path] of Object.entries(QUERIES)) {
    const r = await app.request(path)
    assert.equal(r.status, 200, `${name}: ${await r.text()}`)
    tags[name] = r.headers.get('etag')!
  }
  // The worker restarts with a new labels file: same weights, same fingerprint, a new label for latent 3.
  const relabelled = labels.slice()
  relabelled[3] = 'a re-imported label'
  await publishEncoderCatalog(w.objects, [{ info: unversioned, labels: relabelled }])
  await published.refresh(true)
  assert.equal(published.get('syn')!.fingerprint, info.fingerprint)
  for (const [name, path] of Object.entries(QUERIES)) {
    const r = await app.request(path, { headers: { 'if-none-match': tags[name]! } })
    assert.equal(r.status, 200, `${name}: the old ETag no longer matches`)
    assert.notEqual(r.headers.get('etag'), tags[name], name)
    if (name === 'latent') assert.equal(((await r.json()) as { label: string }).label, 'a re-imported label')
  }
})

test("a DELETE never lets a stale answer out: not from this process's LRU, not from another process's, not as a 304", async () => {
  const w = await world(['local'])
  const deps: AppDeps = { ...w, encoders, mode: 'local', tenantOf: () => 'local' }
  const cacheA = new AnswerCache()
  const cacheB = new AnswerCache()
  const appA = createApp({ ...deps, answerCache: cacheA })
  const appB = createApp({ ...deps, answerCache: cacheB }) // another process on the same store
  const etags = new Map<string, string>()
  for (const [name, path] of Object.entries(QUERIES)) {
    for (const app of [appA, appB]) {
      const res = await app.request(path)
      assert.equal(res.status, 200, name)
      etags.set(name, res.headers.get('etag')!)
    }
  }
  assert.equal(cacheB.size, Object.keys(QUERIES).length)
  assert.equal((await appA.request('/datasets/ds_a', { method: 'DELETE' })).status, 204)
  assert.equal(cacheA.size, 0, 'the delete purged every answer that read ds_a')
  for (const [name, path] of Object.entries(QUERIES)) {
    for (const [label, app] of [
      ['same process', appA],
      ['other process', appB]
    ] as const) {
      const plain = await app.request(path)
      assert.equal(plain.status, 404, `${name} (${label}): ${await plain.text()}`)
      const conditional = await app.request(path, { headers: { 'if-none-match': etags.get(name)! } })
      assert.equal(conditional.status, 404, `${name} (${label}): a 304 would confirm a deleted answer`)
    }
  }
})

test('with API keys answers are private and vary on the key; tenants never share an answer, an ETag or a cache entry', async () => {
  const w = await world(['acme', 'globex'])
  const keys = new ApiKeyStore(w.objects)
  const acme = (await keys.create('acme')).key
  const globex = (await keys.create('globex')).key
  const cache = new AnswerCache()
  const app = createApp({
    ...w,
    encoders,
    mode: 'cloud',
    apiKeys: keys,
    answerCache: cache,
    tenantOf: () => {
      throw new Error('keys decide the tenant')
    }
  })
  for (const [name, path] of Object.entries(QUERIES)) {
    const a = await app.request(path, { headers: { authorization: `Bearer ${acme}` } })
    const g = await app.request(path, { headers: { 'x-api-key': globex } })
    assert.equal(a.status, 200, name)
    assert.equal(g.status, 200, name)
    for (const res of [a, g]) {
      assert.equal(res.headers.get('cache-control'), 'private, no-cache', `${name}: no shared cache may store it`)
      assert.deepEqual(
        res.headers
          .get('vary')!
          .split(',')
          .map(v => v.trim().toLowerCase())
          .sort(),
        ['authorization', 'x-api-key']
      )
    }
    assert.notEqual(
      a.headers.get('etag'),
      g.headers.get('etag'),
      `${name}: same ids and query, other tenant, other ETag`
    )
    assert.notEqual(await a.text(), await g.text(), `${name}: the tenants' datasets differ, and so do the answers`)
    // Globex presenting Acme's ETag gets its own answer, never a 304 for Acme's.
    const cross = await app.request(path, { headers: { 'x-api-key': globex, 'if-none-match': a.headers.get('etag')! } })
    assert.equal(cross.status, 200, name)
    assert.equal(cross.headers.get('etag'), g.headers.get('etag'))
    // Without a key: 401, whatever the cache holds.
    assert.equal((await app.request(path, { headers: { 'if-none-match': a.headers.get('etag')! } })).status, 401)
  }
  assert.equal(cache.size, 2 * Object.keys(QUERIES).length, 'one entry per tenant and query')
})

test('the LRU stays within its bounds, evicting the least recently used', () => {
  const cache = new AnswerCache(3, 1 << 20)
  for (const k of ['a', 'b', 'c']) cache.set(k, `{"k":"${k}"}`, ['t/ds'])
  assert.ok(cache.get('a'))
  cache.set('d', '{}', ['t/other'])
  assert.equal(cache.get('b'), undefined, 'b was the least recently used')
  assert.ok(cache.get('a') && cache.get('c') && cache.get('d'))
  assert.equal(cache.purgeDataset('t', 'ds'), 2)
  assert.equal(cache.size, 1)
  const small = new AnswerCache(100, 400)
  for (let i = 0; i < 10; i++) small.set(`k${i}`, 'x'.repeat(50), ['t/ds'])
  assert.ok(small.byteSize <= 400 && small.size === 4, `${small.size} entries, ${small.byteSize} bytes`)
  assert.ok(
    matchesIfNoneMatch('*', '"x"') &&
      matchesIfNoneMatch('W/"x"', '"x"') &&
      !matchesIfNoneMatch('"y"', '"x"') &&
      !matchesIfNoneMatch(undefined, '"x"')
  )
})

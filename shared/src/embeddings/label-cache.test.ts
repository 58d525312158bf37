/** @module Tests of the label-embedding cache (store + memory) and top latents by query. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CountingObjectStore, MemoryObjectStore } from '../store/memory-store.ts'
import type { Embedder } from './embedder.ts'
import { OfflineEmbedder } from './offline.ts'
import {
  LABEL_EMBEDDINGS_FORMAT,
  LABEL_EMBEDDINGS_SPARSE_FORMAT,
  LabelEmbeddingCache,
  labelEmbeddingsKey,
  topLatentsByQuery,
  embedLabels
} from './label-cache.ts'

/** The offline embedder, counting the texts it is asked to embed. */
class CountingEmbedder implements Embedder {
  readonly inner = new OfflineEmbedder(128)
  readonly id = 'counting:offline-128'
  readonly dimensions = 128
  texts = 0
  async embed(texts: string[]) {
    this.texts += texts.length
    return this.inner.embed(texts)
  }
}

const labels = [
  'token "whale" (e.g. "...the whale...")',
  null,
  'email addresses',
  'prices in dollars $',
  '',
  'web links http www'
]

test('label embeddings are computed once, stored under the encoder, and reused by a fresh cache', async () => {
  const store = new MemoryObjectStore()
  const emb = new CountingEmbedder()
  const a = await new LabelEmbeddingCache(store).get('fp123', emb, labels)
  assert.equal(emb.texts, 4, 'null and empty labels are not embedded')
  const key = labelEmbeddingsKey('fp123', emb.id)
  assert.equal(key, '_encoders/fp123/label-embeddings/counting_offline-128.bin')
  assert.ok(await store.head(key))
  assert.ok(await store.head(key.replace(/\.bin$/, '.json')))
  const cache = new LabelEmbeddingCache(store)
  const b = await cache.get('fp123', emb, labels)
  await cache.get('fp123', emb, labels)
  assert.equal(emb.texts, 4, 'read back from the store, then from memory')
  assert.deepEqual(b.codes, a.codes)
  assert.deepEqual(b.scales, a.scales)
  assert.deepEqual(Array.from(b.present), [1, 0, 1, 1, 0, 1])
  const changed = [...labels]
  changed[1] = 'ships at sea'
  await new LabelEmbeddingCache(store).get('fp123', emb, changed)
  assert.equal(emb.texts, 9, 'a changed label set is embedded again')
})

test('a fresh cache reads the stored embeddings while it hashes the labels; a read error reaches the caller', async () => {
  const store = new MemoryObjectStore()
  const emb = new CountingEmbedder()
  await new LabelEmbeddingCache(store).get('fp123', emb, labels)
  const reads: string[] = []
  const counting = new CountingObjectStore(store)
  const get = counting.get.bind(counting)
  counting.get = (key: string) => {
    reads.push(key)
    return get(key)
  }
  const cache = new LabelEmbeddingCache(counting)
  // A new array: its digest is not memoized, so it takes Web Crypto's round trip (a task, never a microtask).
  const pending = cache.get('fp123', emb, [...labels])
  for (let i = 0; i < 10; i++) await Promise.resolve()
  const key = labelEmbeddingsKey('fp123', emb.id)
  assert.deepEqual(reads, [key.replace(/\.bin$/, '.json'), key], 'header, then body, before the digest is known')
  const e = await pending
  assert.equal(emb.texts, 4, 'the stored embeddings were used')
  assert.deepEqual(Array.from(e.present), [1, 0, 1, 1, 0, 1])
  await cache.get('fp123', emb, [...labels])
  assert.equal(reads.length, 2, 'a key this cache has loaded is not read again')

  const failing = new MemoryObjectStore()
  failing.get = async () => {
    throw new Error('store unavailable')
  }
  await assert.rejects(new LabelEmbeddingCache(failing).get('fp123', emb, [...labels]), /store unavailable/)
  assert.equal(emb.texts, 4, 'a failed read is not taken for a missing file (nothing is embedded again)')
})

test('topLatentsByQuery agrees with float cosine, best first, and never returns unlabelled latents', async () => {
  const emb = new OfflineEmbedder(128)
  const e = await embedLabels(emb, labels)
  const q = await emb.embed(['links to a website: http'])
  const top = topLatentsByQuery(e, q, 10)
  assert.equal(top.latents.length, 4, 'only the four labelled latents')
  assert.equal(top.latents[0], 5)
  const vectors = await emb.embed(labels.map(l => l ?? ''))
  const exact = [0, 2, 3, 5]
    .map(i => {
      let s = 0
      for (let j = 0; j < 128; j++) s += q[j] * vectors[i * 128 + j]
      return { i, s }
    })
    .sort((x, y) => y.s - x.s)
  assert.deepEqual(
    Array.from(top.latents),
    exact.map(x => x.i)
  )
  exact.forEach((x, r) => {
    assert.ok(Math.abs(top.similarities[r] - x.s) < 0.02, 'int8 cosines within 0.02')
  })
  assert.deepEqual(
    Array.from(topLatentsByQuery(e, q, 2).latents),
    exact.slice(0, 2).map(x => x.i)
  )
  assert.throws(() => topLatentsByQuery(e, new Float32Array(3), 2))
})

test("a hashed-feature embedder's labels are stored without their zeros: the same top latents and similarities as dense", async () => {
  const words = ['whale', 'harpoon', 'email', 'price', 'dollar', 'html', 'font', 'ship', 'sea', 'tax', 'law', 'court']
  const many = Array.from({ length: 60 }, (_, i) =>
    i % 9 === 4
      ? null
      : `${words[i % words.length]} ${words[(i * 7 + 3) % words.length]} and ${words[(i * 5 + 1) % 12]}`
  )
  const emb = new OfflineEmbedder()
  const store = new MemoryObjectStore()
  const sparse = await new LabelEmbeddingCache(store).get('fp-sparse', emb, many)
  const key = labelEmbeddingsKey('fp-sparse', emb.id)
  const header = JSON.parse(new TextDecoder().decode((await store.get(key.replace(/\.bin$/, '.json')))!))
  assert.equal(header.format, LABEL_EMBEDDINGS_SPARSE_FORMAT)
  assert.ok(sparse.rows && sparse.dims)
  const dense = await embedLabels(emb, many)
  assert.ok((await store.head(key))! * 2 <= dense.count * 5 + dense.codes.length, 'at most half the dense file')
  for (const q of ['whale harpoon', 'prices in dollars', 'the law of the sea', 'unrelated words entirely']) {
    const v = await emb.embed([q])
    for (const k of [1, 5, 60])
      assert.deepEqual(topLatentsByQuery(sparse, v, k), topLatentsByQuery(dense, v, k), `${q}, k ${k}: identical`)
  }
  // A fresh cache reads the sparse file back as it was written.
  const again = await new LabelEmbeddingCache(store).get('fp-sparse', emb, many)
  assert.deepEqual(
    [again.rows, again.dims, again.codes, again.scales],
    [sparse.rows, sparse.dims, sparse.codes, sparse.scales]
  )

  // A dense file of the same labels (as stores written before the sparse format hold): read, then rewritten sparse once.
  const old = new MemoryObjectStore()
  const scalesBytes = new Uint8Array(dense.scales.buffer, dense.scales.byteOffset, dense.scales.byteLength)
  const body = new Uint8Array(dense.count * 5 + dense.codes.length)
  body.set(scalesBytes, 0)
  body.set(dense.present, dense.count * 4)
  body.set(new Uint8Array(dense.codes.buffer, dense.codes.byteOffset, dense.codes.length), dense.count * 5)
  await old.put(key, body)
  await old.put(key.replace(/\.bin$/, '.json'), JSON.stringify({ ...header, format: LABEL_EMBEDDINGS_FORMAT }))
  const counting = new CountingEmbedder()
  const upgraded = await new LabelEmbeddingCache(old).get(
    'fp-sparse',
    { ...emb, id: emb.id, embed: t => counting.embed(t) },
    many
  )
  assert.equal(counting.texts, 0, 'nothing embedded again')
  assert.deepEqual([upgraded.rows, upgraded.dims, upgraded.codes], [sparse.rows, sparse.dims, sparse.codes])
  const rewritten = JSON.parse(new TextDecoder().decode((await old.get(key.replace(/\.bin$/, '.json')))!))
  assert.equal(rewritten.format, LABEL_EMBEDDINGS_SPARSE_FORMAT)
  assert.equal(await old.head(key), await store.head(key))

  // A store that refuses the rewrite (read-only credentials) still answers with what it read.
  const readOnly = new MemoryObjectStore()
  await readOnly.put(key, body)
  await readOnly.put(key.replace(/\.bin$/, '.json'), JSON.stringify({ ...header, format: LABEL_EMBEDDINGS_FORMAT }))
  readOnly.put = async () => {
    throw new Error('read-only')
  }
  const kept = await new LabelEmbeddingCache(readOnly).get('fp-sparse', emb, many)
  assert.deepEqual([kept.rows, kept.codes], [sparse.rows, sparse.codes])

  // Dense vectors (an API embedder's) stay dense.
  const denseEmbedder: Embedder = {
    id: 'dense-test',
    dimensions: 8,
    async embed(texts) {
      return Float32Array.from({ length: texts.length * 8 }, (_, i) => Math.cos(i + 1))
    }
  }
  const denseKept = await new LabelEmbeddingCache(store).get('fp-dense', denseEmbedder, many)
  assert.equal(denseKept.rows, undefined)
})

/** @module Similar documents: the ranking equals brute-force weighted cosine over every document, with or without sidecars, within a slice, and the shared latents are the pair's own. */
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { SimilarDocuments, SimilarQuery } from '@latentbase/shared/contract/similar'
import { FailingReadsStore, MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { readByDocument } from '@latentbase/shared/store/latent-shards/read-by-document'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { createApp } from '../app.ts'
import type { AnalysisContext } from './context.ts'
import { latentBlocks, similarDocuments } from './similar-service.ts'
import { syntheticCatalog, syntheticTopics, writeSyntheticDataset } from '../bench/synthetic-store.ts'

const N_LATENTS = 256
const N_DOCS = 400
const topics = syntheticTopics(N_LATENTS, 4, 12)
const encoders = syntheticCatalog('syn', N_LATENTS, topics)
let objects: MemoryObjectStore
let datasets: DatasetStore
let topicOf: Int32Array
/** Each document's present latents, from the by-document shards (independent of the by-latent reads the answer uses). */
let latentsOf: Array<Set<number>>
let otherLatentsOf: Array<Set<number>>

before(async () => {
  objects = new MemoryObjectStore()
  datasets = new DatasetStore(objects)
  const written = await writeSyntheticDataset(
    objects,
    datasets,
    { tenant: 'local', id: 'ds_sim', encoderId: 'syn' },
    { nDocs: N_DOCS, nLatents: N_LATENTS, meanActive: 14, topics: 4, topicLatents: 12, seed: 5 }
  )
  topicOf = written.topicOf
  latentsOf = await presentLatents('ds_sim', N_DOCS)
  // Another dataset encoded alike (the other side of a diff), and one encoded by another encoder.
  await writeSyntheticDataset(
    objects,
    datasets,
    { tenant: 'local', id: 'ds_other', encoderId: 'syn' },
    { nDocs: 150, nLatents: N_LATENTS, meanActive: 14, topics: 4, topicLatents: 12, seed: 9 }
  )
  otherLatentsOf = await presentLatents('ds_other', 150)
  await writeSyntheticDataset(
    objects,
    datasets,
    { tenant: 'local', id: 'ds_alien', encoderId: 'alien' },
    { nDocs: 20, nLatents: N_LATENTS, meanActive: 14, topics: 4, topicLatents: 12, seed: 2 }
  )
})

async function presentLatents(id: string, n: number): Promise<Array<Set<number>>> {
  const manifest = (await datasets.getManifest('local', id))!
  const csr = await readByDocument(objects, `local/datasets/${id}/`, manifest.latents.byDocument, undefined, {
    nLatents: N_LATENTS
  })
  return Array.from({ length: n }, (_, d) => {
    const s = new Set<number>()
    for (let p = csr.indptr[d]; p < csr.indptr[d + 1]; p++) if (csr.values[p] > 0) s.add(csr.latents[p])
    return s
  })
}

async function app(store: ObjectStore = objects, similarBlockEntries?: number) {
  return createApp({
    similarBlockEntries,
    objects: store,
    datasets: new DatasetStore(store),
    encoders,
    mode: 'local',
    tenantOf: () => 'local',
    queue: new EmbeddedQueue<JobMessage>(join(await mkdtemp(join(tmpdir(), 'latentbase-similar-')), 'q'))
  })
}

/**
 * Brute force: cosine of sqrt-idf-weighted binary rows (weights from the searched documents' frequencies), against
 * every other document of the same dataset, or every document of another.
 */
function reference(
  row: number,
  rows?: Set<number>,
  searched: Array<Set<number>> = latentsOf
): Array<{ row: number; score: number }> {
  const df = new Int32Array(N_LATENTS)
  for (const s of searched) for (const l of s) df[l]++
  const w2 = Float64Array.from(df, c => (c > 0 ? Math.log(searched.length / c) : 0))
  const norm = (s: Set<number>) => Math.sqrt([...s].reduce((a, l) => a + w2[l], 0))
  const q = latentsOf[row]
  const out: Array<{ row: number; score: number }> = []
  for (let d = 0; d < searched.length; d++) {
    if ((searched === latentsOf && d === row) || (rows && !rows.has(d))) continue
    let dot = 0
    for (const l of searched[d]) if (q.has(l)) dot += w2[l]
    if (dot > 0) out.push({ row: d, score: dot / (norm(q) * norm(searched[d])) })
  }
  return out.sort((a, b) => b.score - a.score || a.row - b.row)
}

test('the closest documents by weighted cosine, as brute force ranks them, each with latents both documents hold', async () => {
  const api = await app()
  for (const row of [0, 17, 399]) {
    const res = await api.request(`/datasets/ds_sim/documents/${row}/similar?limit=15&shared=4`)
    assert.equal(res.status, 200, await res.clone().text())
    assert.ok(res.headers.get('etag'), 'a cached answer')
    const body = SimilarDocuments.parse(await res.json())
    const expected = reference(row).slice(0, 15)
    assert.deepEqual(
      body.results.map(r => r.row),
      expected.map(e => e.row),
      `row ${row}`
    )
    for (const [i, r] of body.results.entries()) {
      assert.ok(Math.abs(r.score - expected[i].score) < 1e-4, `row ${row} -> ${r.row}`)
      assert.ok(r.shared.length > 0 && r.shared.length <= 4)
      let share = 0
      for (const s of r.shared) {
        assert.ok(latentsOf[row].has(s.latent) && latentsOf[r.row].has(s.latent), `latent ${s.latent} is shared`)
        assert.equal(s.href, `/latents/${s.latent}?dataset=ds_sim`)
        share += s.share
      }
      assert.ok(share <= 1 + 1e-6)
      for (let j = 1; j < r.shared.length; j++) assert.ok(r.shared[j].share <= r.shared[j - 1].share)
    }
    assert.equal(body.candidates, N_DOCS - 1)
    assert.equal(body.latents, latentsOf[row].size)
    assert.equal(body.similarity, 'cosine-sqrt-idf')
  }
  // Documents of the same planted topic come first: the weights make shared topic latents count.
  const first = SimilarDocuments.parse(
    await (await api.request('/datasets/ds_sim/documents/3/similar?limit=10')).json()
  )
  const sameTopic = first.results.filter(r => topicOf[r.row] === topicOf[3]).length
  assert.ok(sameTopic >= 8, `${sameTopic} of 10 share document 3's topic`)
})

test('a query read in blocks of latents (bounded memory) answers as one read whole, shares included', async () => {
  const ctx = { objects, datasets, encoders, tenant: 'local' } as unknown as AnalysisContext
  for (const [row, where] of [
    [17, undefined],
    [250, 'metadata.topic != 2']
  ] as Array<[number, string | undefined]>) {
    const query = SimilarQuery.parse({ limit: 12, shared: 6, ...(where ? { where } : {}) })
    const whole = await similarDocuments(ctx, 'ds_sim', row, query)
    // 40 entries a block: each latent of a few hundred documents is a block of its own.
    const blocked = await similarDocuments(ctx, 'ds_sim', row, query, { blockEntries: 40 })
    assert.ok(whole.latents > 2)
    assert.deepEqual(blocked, whole)
    assert.ok(whole.results.every(r => r.shared.length > 0))
  }
  // The route takes the deployment's budget.
  const path = '/datasets/ds_sim/documents/42/similar?limit=8'
  assert.deepEqual(
    await (await (await app(objects, 40)).request(path)).json(),
    await (await (await app()).request(path)).json()
  )
  // Blocks keep the latents' order and add up to at most the budget, a larger latent alone.
  const docCount = Int32Array.from([5, 30, 10, 50, 1, 1])
  assert.deepEqual(latentBlocks([0, 1, 2, 3, 4, 5], docCount, 40), [[0, 1], [2], [3], [4, 5]])
  assert.deepEqual(latentBlocks([], docCount, 40), [[]])
})

test('a slice restricts the candidates; a store without sidecars gives the same answer; a bad row is a 404', async () => {
  const api = await app()
  const where = encodeURIComponent('metadata.topic = 1')
  const sliced = SimilarDocuments.parse(
    await (await api.request(`/datasets/ds_sim/documents/5/similar?limit=10&where=${where}`)).json()
  )
  const inSlice = new Set(Array.from({ length: N_DOCS }, (_, d) => d).filter(d => topicOf[d] === 1))
  assert.equal(sliced.where, 'metadata.topic = 1')
  assert.deepEqual(
    sliced.results.map(r => r.row),
    reference(5, inSlice)
      .slice(0, 10)
      .map(e => e.row)
  )
  assert.equal(sliced.candidates, inSlice.size - (inSlice.has(5) ? 1 : 0))

  const noSidecars = new FailingReadsStore(objects, key => key.endsWith('.csc'))
  const warn = console.warn
  console.warn = () => {}
  try {
    const fallback = SimilarDocuments.parse(
      await (await (await app(noSidecars)).request('/datasets/ds_sim/documents/17/similar?limit=15')).json()
    )
    assert.deepEqual(
      fallback.results.map(r => r.row),
      reference(17)
        .slice(0, 15)
        .map(e => e.row)
    )
  } finally {
    console.warn = warn
  }
  assert.ok(noSidecars.refused > 0, 'the sidecars were asked for and failed')

  const missing = await api.request(`/datasets/ds_sim/documents/${N_DOCS}/similar`)
  assert.equal(missing.status, 404)
  assert.match(((await missing.json()) as { detail: string }).detail, /row 400 does not exist/)
  assert.equal((await api.request('/datasets/ds_sim/documents/1/similar?limit=0')).status, 400)
})

test('in another dataset encoded alike: its documents, weighed by its own frequencies; another encoder is a 409', async () => {
  const api = await app()
  for (const row of [2, 250]) {
    const res = await api.request(`/datasets/ds_sim/documents/${row}/similar?limit=12&in=ds_other`)
    assert.equal(res.status, 200, await res.clone().text())
    const body = SimilarDocuments.parse(await res.json())
    assert.equal(body.in, 'ds_other')
    assert.equal(body.dataset, 'ds_sim')
    assert.equal(body.candidates, 150, 'every document of the other dataset, none left out')
    const expected = reference(row, undefined, otherLatentsOf).slice(0, 12)
    assert.deepEqual(
      body.results.map(r => r.row),
      expected.map(e => e.row)
    )
    for (const [i, r] of body.results.entries()) {
      assert.ok(Math.abs(r.score - expected[i].score) < 1e-4)
      for (const s of r.shared) {
        assert.ok(otherLatentsOf[r.row].has(s.latent) && latentsOf[row].has(s.latent))
        assert.equal(s.href, `/latents/${s.latent}?dataset=ds_other`)
      }
    }
  }
  // `in` naming the document's own dataset is the plain query (the document still left out of its neighbours).
  const self = SimilarDocuments.parse(
    await (await api.request('/datasets/ds_sim/documents/2/similar?in=ds_sim')).json()
  )
  assert.ok(!self.results.some(r => r.row === 2))
  assert.equal(self.candidates, N_DOCS - 1)
  const alien = await api.request('/datasets/ds_sim/documents/2/similar?in=ds_alien')
  assert.equal(alien.status, 409)
  assert.match(((await alien.json()) as { detail: string }).detail, /encoded differently/)
  assert.equal((await api.request('/datasets/ds_sim/documents/2/similar?in=ds_nope')).status, 404)
})

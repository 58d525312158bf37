/** @module Tests for the clustering service: latent selection (all, list, phrases via the embedder), targeted axis, determinism, errors, progress. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import { STORE_VERSION, type Manifest } from '@latentbase/shared/contract/manifest'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import type { EncoderCatalog } from '@latentbase/shared/catalog/catalog'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { writeLatentShards } from '@latentbase/shared/store/latent-shards/write'
import { plantedCsr, purity } from '@latentbase/shared/analysis/clustering/synthetic'
import { ApiError } from '../problem.ts'
import type { AnalysisContext } from './context.ts'
import { computeClusters } from './clusters-service.ts'

const N_LATENTS = 1200
const TOPICS = ['football', 'cooking', 'finance']

// Axis 0: three topics, 40 latents each, dense (p 0.5): the dominant structure. Axis 1: sentiment, two groups of 50
// latents, sparser (p 0.2). Then noise latents.
const planted = plantedCsr({
  docs: 150,
  nLatents: N_LATENTS,
  seed: 12,
  noisePerDoc: 20,
  axes: [
    { groups: 3, latentsPerGroup: 40, p: 0.5 },
    { groups: 2, latentsPerGroup: 50, p: 0.2 }
  ]
})
const labels: (string | null)[] = Array.from({ length: N_LATENTS }, (_, l) => `noise pattern ${l}`)
planted.groupLatents[0].forEach((ls, g) => {
  ls.forEach((l, q) => {
    labels[l] = `${TOPICS[g]} term ${q}`
  })
})
planted.groupLatents[1].forEach((ls, g) => {
  ls.forEach((l, q) => {
    labels[l] = `${g === 0 ? 'positive' : 'negative'} sentiment expression ${q}`
  })
})
labels[N_LATENTS - 1] = null
const sentimentLatents = planted.groupLatents[1].flat().sort((a, b) => a - b)

/** Bag of words over a fixed vocabulary, one dimension a word: exact, so the chosen latents are known in advance. */
function vocabularyEmbedder(): Embedder & { calls: number } {
  const vocab = new Map<string, number>()
  for (const text of [
    ...labels.filter((x): x is string => !!x),
    'positive sentiment',
    'negative sentiment',
    'weather'
  ]) {
    for (const w of text.split(' ')) if (!vocab.has(w)) vocab.set(w, vocab.size)
  }
  const d = vocab.size
  return {
    id: 'test-vocabulary',
    dimensions: d,
    calls: 0,
    async embed(texts: string[]) {
      this.calls++
      const out = new Float32Array(texts.length * d)
      texts.forEach((t, i) => {
        const words = t.split(' ').filter(w => vocab.has(w))
        for (const w of words) out[i * d + vocab.get(w)!] += 1
        let s = 0
        for (let j = 0; j < d; j++) s += out[i * d + j] ** 2
        if (s > 0) for (let j = 0; j < d; j++) out[i * d + j] /= Math.sqrt(s)
      })
      return out
    }
  }
}

async function fixture(): Promise<AnalysisContext> {
  const objects = new MemoryObjectStore()
  const datasets = new DatasetStore(objects)
  const tenant = 'local',
    id = 'mixed'
  const prefix = layout.datasetPrefix(tenant, id)
  const shards = writeLatentShards(planted.csr)
  await objects.put(prefix + layout.byDocumentShard(0), shards.byDocument.bytes)
  await objects.put(prefix + layout.byLatentShard(0), shards.byLatent.bytes)
  const now = new Date(0).toISOString()
  const pooling = { method: 'max' as const, outlierNormRatio: 100 }
  const record: DatasetRecord = {
    id,
    tenant,
    name: 'mixed',
    status: 'ready',
    encoder: 'test-sae',
    pooling,
    source: { inline: 150 },
    createdAt: now,
    updatedAt: now,
    progress: { documents: { done: 150, total: 150 }, tokens: 1500 },
    attempts: 0
  }
  const manifest: Manifest = {
    storeVersion: STORE_VERSION,
    datasetId: id,
    tenant,
    createdAt: now,
    encoder: { id: 'test-sae', hookName: 'blocks.1.hook_resid_post', dSae: N_LATENTS, architecture: 'relu' },
    encoderFingerprint: 'fp-test',
    pooling,
    maxTokens: 64,
    longDocuments: 'truncate',
    documents: { count: 150, tokens: 1500, files: [] },
    latents: {
      nnz: planted.csr.latents.length,
      byDocument: [{ key: layout.byDocumentShard(0), ...shards.byDocument.file }],
      byLatent: [{ key: layout.byLatentShard(0), ...shards.byLatent.file }]
    },
    stats: { key: layout.latentStats(), histogramEdges: [1e-4, 1e4] },
    summary: {}
  }
  await datasets.putRecord(record)
  await datasets.commitManifest(tenant, id, manifest)
  const encoders: EncoderCatalog = { list: () => [], get: () => undefined, labels: async () => labels }
  return { objects, datasets, encoders, embedder: vocabularyEmbedder(), tenant }
}

const ctxPromise = fixture()
const withoutTimes = (r: Record<string, unknown>) => ({ ...r, seconds: 0 })

test('phrases choose the latents whose labels match, and the clustering follows that axis, not the dominant one', async () => {
  const ctx = await ctxPromise
  const all = await computeClusters(ctx, { dataset: 'mixed', k: 2, seed: 3 })
  assert.equal(all.latentsUsed.length, new Set(planted.csr.latents).size)
  assert.equal(all.embedder, null)
  const sentimentPurityAll = purity(all.assignments, planted.labels[1])
  assert.ok(
    sentimentPurityAll < 0.75,
    `all latents: sentiment purity ${sentimentPurityAll} (the topics should dominate)`
  )

  const targeted = await computeClusters(ctx, {
    dataset: 'mixed',
    k: 2,
    seed: 3,
    phrases: ['positive sentiment', 'negative sentiment']
  })
  assert.deepEqual(targeted.latentsUsed, sentimentLatents)
  assert.equal(targeted.embedder, 'test-vocabulary')
  assert.equal(targeted.phrases!.length, 2)
  // Each phrase's best matches are its own polarity's latents.
  assert.ok(targeted.phrases![0].latents.slice(0, 50).every(l => planted.groupLatents[1][0].includes(l)))
  assert.ok(targeted.phrases![1].latents.slice(0, 50).every(l => planted.groupLatents[1][1].includes(l)))
  const p = purity(targeted.assignments, planted.labels[1])
  assert.ok(p > 0.9, `targeted: sentiment purity ${p}`)
  // Each cluster is described by one polarity's latents, with labels and links.
  for (const c of targeted.clusters) {
    assert.equal(c.latents.length, 5)
    const words = new Set(c.latents.map(l => l.label!.split(' ')[0]))
    assert.equal(words.size, 1, `cluster ${c.id} mixes polarities: ${c.latents.map(l => l.label)}`)
    for (const l of c.latents) assert.equal(l.href, `/latents/${l.latent}?dataset=mixed`)
    assert.equal(c.central.length, 5)
    for (const r of c.central) assert.equal(targeted.assignments[r], c.id)
  }
  assert.equal(targeted.clusters[0].size + targeted.clusters[1].size, 150)
})

test('same request and seed, same result; affinities are top-k per row and sum to 1 over all clusters', async () => {
  const ctx = await ctxPromise
  const req = { dataset: 'mixed', k: 3, seed: 7, affinityTop: 3 }
  const a = await computeClusters(ctx, req)
  const b = await computeClusters(ctx, req)
  assert.deepEqual(withoutTimes(a), withoutTimes(b))
  assert.ok(purity(a.assignments, planted.labels[0]) > 0.9)
  assert.equal(a.affinities!.length, 150)
  for (const row of a.affinities!) {
    assert.equal(row.length, 3)
    assert.ok(row[0][1] >= row[1][1] && row[1][1] >= row[2][1])
    assert.ok(Math.abs(row.reduce((s, [, v]) => s + v, 0) - 1) < 1e-4)
  }
  const none = await computeClusters(ctx, { ...req, affinityTop: 0 })
  assert.equal(none.affinities, undefined)
})

test('an explicit latent list and method kmeans', async () => {
  const ctx = await ctxPromise
  const topic = planted.groupLatents[0].flat()
  const r = await computeClusters(ctx, {
    dataset: 'mixed',
    k: 3,
    latents: [...topic].reverse(),
    method: 'kmeans',
    seed: 1
  })
  assert.deepEqual(
    r.latentsUsed,
    [...topic].sort((x, y) => x - y)
  )
  assert.equal(r.method, 'kmeans')
  assert.equal(r.similarity, 'cosine')
  assert.equal(r.eigenvalues, undefined)
  assert.ok(purity(r.assignments, planted.labels[0]) > 0.9)
})

test('progress rises to 1 through the phases', async () => {
  const ctx = await ctxPromise
  const seen: Array<[number, string]> = []
  await computeClusters(ctx, { dataset: 'mixed', k: 2 }, (f, phase) => seen.push([f, phase]))
  for (let i = 1; i < seen.length; i++)
    assert.ok(seen[i][0] >= seen[i - 1][0], `progress went back at ${i}: ${seen[i - 1]} -> ${seen[i]}`)
  assert.deepEqual(seen.at(-1), [1, 'done'])
  for (const phase of ['reading', 'similarity', 'embedding', 'kmeans', 'describing'])
    assert.ok(
      seen.some(([, p]) => p === phase),
      phase
    )
})

test('errors a user can act on', async () => {
  const ctx = await ctxPromise
  const status = async (req: Record<string, unknown>) => {
    try {
      await computeClusters(ctx, req)
      return 0
    } catch (err) {
      assert.ok(err instanceof ApiError, String(err))
      return err.status
    }
  }
  assert.equal(await status({ dataset: 'nope', k: 2 }), 404)
  assert.equal(await status({ dataset: 'mixed', k: 2, latents: [N_LATENTS] }), 400)
  assert.equal(await status({ dataset: 'mixed', k: 2, latents: [1], phrases: ['x'] }), 400)
  assert.equal(await status({ dataset: 'mixed', k: 151 }), 400)
  assert.equal(await status({ dataset: 'mixed', k: 1 }), 400)
  assert.equal(await status({ dataset: 'mixed', k: 2, similarity: 'euclid' }), 400)
  const kmeansJaccard = await computeClusters(ctx, {
    dataset: 'mixed',
    k: 2,
    method: 'kmeans',
    similarity: 'jaccard'
  }).catch((e: unknown) => e)
  assert.ok(kmeansJaccard instanceof ApiError && kmeansJaccard.status === 400)
  assert.match(kmeansJaccard.message, /similarity jaccard is for method spectral/)
  // A latent that never fires in this dataset.
  const present = new Set(planted.csr.latents)
  const silent = Array.from({ length: N_LATENTS }, (_, l) => l).find(l => !present.has(l))!
  assert.equal(await status({ dataset: 'mixed', k: 2, latents: [silent] }), 422)
  // A latent in one document only: no two documents share anything to be compared by.
  const df = new Int32Array(N_LATENTS)
  for (const l of planted.csr.latents) df[l]++
  const lonely = df.findIndex(n => n === 1)
  assert.ok(lonely >= 0, 'the fixture has a latent in exactly one document')
  for (const similarity of ['cosine', 'jaccard']) {
    const err = await computeClusters(ctx, { dataset: 'mixed', k: 2, latents: [lonely], similarity }).catch(
      (e: unknown) => e
    )
    assert.ok(err instanceof ApiError && err.status === 422 && err.code === 'nothing-shared', String(err))
    assert.match(err.message, /no two documents share/)
  }
  // k-means still answers (every document is as near to every centroid).
  assert.equal((await computeClusters(ctx, { dataset: 'mixed', k: 2, latents: [lonely], method: 'kmeans' })).k, 2)
})

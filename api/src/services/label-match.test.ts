/** @module Tests of label matching: labels warmed ahead of the search path, label cosines with and without an overlay. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { LabelEmbeddingCache, embedLabels } from '@latentbase/shared/embeddings/label-cache'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import type { LabelInfo } from '@latentbase/shared/catalog/label-overlay'
import { matchText } from '@latentbase/shared/embeddings/label-text'
import { warmLabelEmbeddings } from '@latentbase/shared/embeddings/label-warm'
import { publishEncoderCatalog, StoreEncoderCatalog } from '@latentbase/shared/catalog/store-catalog'
import { labelMatcher } from './label-match.ts'
import { loadLabelInfo } from './latent-page-service.ts'

const info = (labels: (string | null)[], sources: (string | null)[], extra: Partial<LabelInfo> = {}): LabelInfo => ({
  labels,
  sources,
  detection: new Float32Array(labels.length).fill(NaN),
  fuzzing: new Float32Array(labels.length).fill(NaN),
  ...extra
})

test('label cosines: the same words score ~1 whatever the example; unrelated words low; an overlaid label counts with its new text', async () => {
  const labels = [
    '"whale", "harpoon" (e.g. "...lowered the boats...")',
    '"whale", "harpoon" (e.g. "...congress shall...")',
    '"html", "font" (e.g. "...<font>...")',
    null
  ]
  const sources = labels.map(() => 'offline-lift')
  const embedder = new OfflineEmbedder()
  const m = await labelMatcher(
    new LabelEmbeddingCache(new MemoryObjectStore()),
    'fp-test',
    embedder,
    info(labels, sources)
  )
  assert.ok(m.cosine(0, 1) > 0.98, `same words, other example: ${m.cosine(0, 1)}`)
  assert.ok(m.cosine(0, 2) < 0.3, `unrelated: ${m.cosine(0, 2)}`)
  assert.equal(m.cosine(0, 3), 0, 'no label')
  const top = m.top(await embedder.embed(['whale harpoon']), 2)
  assert.deepEqual(Array.from(top.latents).sort(), [0, 1])
  assert.ok(Math.abs(top.similarities[0] - top.similarities[1]) < 0.02, 'the examples no longer tell them apart')

  // Latent 2 relabelled by an overlay to the whale words: now a near-duplicate of 0.
  const overlaid = info(
    [labels[0], labels[1], 'a whale and a harpoon', null],
    [...sources.slice(0, 2), 'llm:test', null],
    { base: labels, overlaid: Int32Array.from([2]) }
  )
  const o = await labelMatcher(new LabelEmbeddingCache(new MemoryObjectStore()), 'fp-test', embedder, overlaid)
  assert.ok(o.cosine(2, 0) > 0.5 && o.cosine(0, 2) === o.cosine(2, 0), `overlay vs base: ${o.cosine(2, 0)}`)
  assert.ok(Math.abs(o.cosine(0, 1) - m.cosine(0, 1)) < 1e-6)

  // The encoder's labels are stored sparse (hashed features), the overlay's dense: every pair's cosine is exactly the
  // one computed from dense codes.
  const dense = await embedLabels(embedder, [...labels.map(l => matchText(l, 'offline-lift')), 'a whale and a harpoon'])
  const d = dense.dimensions
  const cosine = (i: number, j: number) => {
    if (!dense.present[i] || !dense.present[j]) return 0
    let dot = 0
    for (let p = 0; p < d; p++) dot += dense.codes[i * d + p] * dense.codes[j * d + p]
    return dot * dense.scales[i] * dense.scales[j]
  }
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) assert.equal(m.cosine(i, j), cosine(i, j), `${i}, ${j}`)
  for (const j of [0, 1]) assert.equal(o.cosine(2, j), cosine(4, j), `overlaid 2 (dense) with ${j} (sparse)`)
})

test('labels warmed when the encoder is published: the search path over the store catalog embeds none of them', async () => {
  const objects = new MemoryObjectStore()
  const encoderInfo = {
    id: 'whales',
    fingerprint: 'fp-whales',
    hookName: 'blocks.0.hook_resid_post',
    dIn: 8,
    dSae: 3,
    architecture: 'relu',
    maxTokens: 64,
    labelled: 2
  }
  const encoder = {
    info: encoderInfo,
    labels: ['"whale", "harpoon" (e.g. "...lowered the boats...")', null, '"tax" (e.g. "...congress...")'],
    labelSources: ['offline-lift', null, 'offline-lift']
  }
  await publishEncoderCatalog(objects, [encoder])
  await warmLabelEmbeddings(new LabelEmbeddingCache(objects), [encoder], new OfflineEmbedder())

  // An API process: the catalog and labels read back from the store, the overlay scope as search passes it.
  const inner = new OfflineEmbedder()
  let texts = 0
  const embedder = {
    id: inner.id,
    dimensions: inner.dimensions,
    embed(t: string[]) {
      texts += t.length
      return inner.embed(t)
    }
  }

  const catalog = await StoreEncoderCatalog.load(objects)
  const labelInfo = await loadLabelInfo(catalog, 'whales', 3, { objects, tenant: 'local', fingerprint: 'fp-whales' })
  const m = await labelMatcher(new LabelEmbeddingCache(objects), 'fp-whales', embedder, labelInfo)
  assert.equal(texts, 0, 'no label embedded on the search path')
  assert.deepEqual(Array.from(m.top(await inner.embed(['whale']), 1).latents), [0])
})

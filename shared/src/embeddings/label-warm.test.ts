/** @module Tests of embedding an encoder's labels at registration: what a later cache finds, what is skipped, what fails alone. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryObjectStore } from '../store/memory-store.ts'
import type { EncoderInfo } from '../contract/encoder.ts'
import type { Embedder } from './embedder.ts'
import { LabelEmbeddingCache, labelEmbeddingsKey } from './label-cache.ts'
import { encoderMatchTexts } from './label-text.ts'
import { OfflineEmbedder } from './offline.ts'
import { warmLabelEmbeddings, warmLabelEmbeddingsFromEnv } from './label-warm.ts'

/** The offline embedder, counting the texts it is asked to embed. */
function counting(inner: Embedder = new OfflineEmbedder()): Embedder & { texts: number } {
  const e = {
    id: inner.id,
    dimensions: inner.dimensions,
    texts: 0,
    embed(texts: string[]) {
      e.texts += texts.length
      return inner.embed(texts)
    }
  }
  return e
}

const info = (id: string, dSae: number): EncoderInfo => ({
  id,
  fingerprint: `fp-${id}`,
  hookName: 'blocks.0.hook_resid_post',
  dIn: 8,
  dSae,
  architecture: 'relu',
  maxTokens: 64,
  labelled: dSae
})

const offlineLabels = [
  '"whale", "harpoon" (e.g. "...lowered the boats...")',
  null,
  '"tax", "congress" (e.g. "...shall...")'
]
const offlineSources = ['offline-lift', null, 'offline-lift']

test('warmed labels: a later cache (another process) finds them by the texts a search matches, and embeds nothing', async () => {
  const objects = new MemoryObjectStore()
  const embedder = counting()
  const lines: string[] = []
  const encoders = [
    { info: info('whales', 3), labels: offlineLabels, labelSources: offlineSources },
    { info: info('unlabelled', 2), labels: [null, null] }
  ]
  const first = await warmLabelEmbeddings(new LabelEmbeddingCache(objects), encoders, embedder, l => lines.push(l))
  assert.deepEqual(
    first.map(r => [r.encoder, r.outcome, r.labels]),
    [
      ['whales', 'embedded', 2],
      ['unlabelled', 'no-labels', 0]
    ]
  )
  assert.equal(embedder.texts, 2)
  assert.match(lines.join('\n'), /whales: embedded 2 labels with offline/)
  assert.ok(await objects.head(labelEmbeddingsKey('fp-whales', embedder.id)))
  assert.equal(await objects.head(labelEmbeddingsKey('fp-unlabelled', embedder.id)), null)

  // Another process: its warm reads a header only, and its first search's lookup embeds nothing.
  const later = counting()
  const again = await warmLabelEmbeddings(new LabelEmbeddingCache(objects), encoders, later)
  assert.equal(again[0].outcome, 'current')
  const found = await new LabelEmbeddingCache(objects).get(
    'fp-whales',
    later,
    encoderMatchTexts(offlineLabels.slice(), offlineSources)
  )
  assert.equal(later.texts, 0, 'nothing embedded again')
  assert.deepEqual(Array.from(found.present), [1, 0, 1])

  // Labels regenerated under the same encoder: a different digest, embedded again.
  const relabelled = [{ ...encoders[0], labels: ['"sea" (e.g. "...the sea...")', 'new', null] }]
  const redo = await warmLabelEmbeddings(new LabelEmbeddingCache(objects), relabelled, later)
  assert.equal(redo[0].outcome, 'embedded')
  assert.equal(later.texts, 2)
})

test('an encoder whose labels cannot be embedded is reported, and the next one is still warmed', async () => {
  const objects = new MemoryObjectStore()
  const inner = new OfflineEmbedder()
  let calls = 0
  const flaky: Embedder = {
    id: inner.id,
    dimensions: inner.dimensions,
    embed: texts => (calls++ === 0 ? Promise.reject(new Error('endpoint said 503')) : inner.embed(texts))
  }
  const lines: string[] = []
  const results = await warmLabelEmbeddings(
    new LabelEmbeddingCache(objects),
    [
      { info: info('a', 3), labels: offlineLabels, labelSources: offlineSources },
      { info: info('b', 1), labels: ['plain label'] }
    ],
    flaky,
    l => lines.push(l)
  )
  assert.deepEqual(
    results.map(r => r.outcome),
    ['failed', 'embedded']
  )
  assert.match(results[0].error!, /503/)
  assert.match(lines[0], /a: could not embed its labels ahead of time .*503/)
  assert.equal(await objects.head(labelEmbeddingsKey('fp-a', inner.id)), null, 'nothing half-written')
})

test('LATENTBASE_WARM_LABEL_EMBEDDINGS: on by default, off when asked, a mistyped value refused by name', () => {
  assert.equal(warmLabelEmbeddingsFromEnv(undefined), true)
  assert.equal(warmLabelEmbeddingsFromEnv('on'), true)
  assert.equal(warmLabelEmbeddingsFromEnv('off'), false)
  assert.throws(
    () => warmLabelEmbeddingsFromEnv('no'),
    /LATENTBASE_WARM_LABEL_EMBEDDINGS must be "on" or "off", got "no"/
  )
})

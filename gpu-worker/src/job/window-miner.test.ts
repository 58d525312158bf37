/** @module The window miner re-encodes chosen (document, latent) pairs: each window's max token activation is the pooled value the encode job stored. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { readByDocument } from '@latentbase/shared/store/latent-shards/read-by-document'
import { readByLatent } from '@latentbase/shared/store/latent-shards/read-by-latent'
import { loadEncoder, type LoadedEncoder } from '../encode/runtime.ts'
import { DEMO_ENCODER_DIR } from '../registry.ts'
import { encodeDataset } from './encode.ts'
import { encoderWindowMiner } from './window-miner.ts'

let encoder: LoadedEncoder
before(async () => {
  encoder = await loadEncoder(DEMO_ENCODER_DIR, { log: () => {} })
})
after(async () => {
  await encoder.close()
})

/** Encodes inline documents with the demo encoder into a fresh memory store (no stored top examples). */
async function encodeInline(id: string, docs: unknown[], poolRoles?: string[]) {
  const objects = new MemoryObjectStore()
  const datasets = new DatasetStore(objects)
  const record: DatasetRecord = {
    id,
    tenant: 'local',
    name: id,
    status: 'running',
    encoder: 'demo',
    pooling: { method: 'max', outlierNormRatio: 100 },
    source: { inline: docs.length },
    ...(poolRoles ? { poolRoles } : {}),
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    progress: { documents: { done: 0, total: docs.length }, tokens: 0 },
    attempts: 1
  }
  await objects.put(layout.inlineInput('local', id), docs.map(d => JSON.stringify(d)).join('\n') + '\n')
  await datasets.putRecord(record)
  const { manifest } = await encodeDataset(record, {
    objects,
    datasets,
    encoder,
    allowLocalSources: false,
    topExamplesPerLatent: 0
  })
  return { objects, manifest, prefix: layout.datasetPrefix('local', id) }
}

test('mined windows peak at the stored pooled value and position; another encoder version gives nothing', async () => {
  const docs = Array.from({ length: 12 }, (_, i) => ({
    text: `Letter ${i}: ${'the tide rose over the old harbour wall while the bells rang. '.repeat(1 + (i % 4))}`
  }))
  const { objects, manifest, prefix } = await encodeInline('ds_w', docs)
  // Latents present in the first document, strongest first.
  const first = await readByDocument(objects, prefix, manifest.latents.byDocument, { start: 0, end: 1 })
  const order = Array.from(first.latents.keys()).sort((a, b) => first.values[b] - first.values[a])
  const latents = order.slice(0, 4).map(k => first.latents[k])
  const csc = await readByLatent(objects, prefix, manifest.latents.byLatent, latents, {
    nDocs: manifest.documents.count,
    nLatents: manifest.encoder.dSae
  })
  const pairs: Array<{ latent: number; doc: number; value: number; position: number }> = []
  for (const l of latents)
    for (let j = csc.indptr[l]; j < Math.min(csc.indptr[l + 1], csc.indptr[l] + 3); j++)
      pairs.push({ latent: l, doc: csc.docs[j], value: csc.values[j], position: csc.positions[j] })
  assert.ok(pairs.length >= 4, `${pairs.length} pairs`)
  const mined = await encoderWindowMiner(objects, new Map([['demo', encoder]]))({ prefix, manifest }, pairs)
  assert.equal(mined.length, pairs.length)
  for (const p of pairs) {
    const w = mined.find(m => m.latent === p.latent && m.doc === p.doc)!
    assert.equal(w.tokens.length, w.activations.length)
    const max = Math.max(...w.activations)
    assert.ok(
      Math.abs(max - p.value) <= 1e-3 * Math.max(1, p.value),
      `latent ${p.latent} doc ${p.doc}: window max ${max}, pooled ${p.value}`
    )
  }
  const stale = await encoderWindowMiner(
    objects,
    new Map([['demo', { ...encoder, baseFingerprint: 'other' } as LoadedEncoder]])
  )({ prefix, manifest }, pairs)
  assert.deepEqual(stale, [])
})

test("a chat dataset's windows peak where its own poolRoles pooled (the user's turns here, not the assistant's)", async () => {
  const docs = Array.from({ length: 6 }, (_, i) => ({
    messages: [
      { role: 'user', content: `Question ${i}: why do the harbour bells ring when the tide rises over the wall?` },
      {
        role: 'assistant',
        content: `Answer ${i}: ${'because the keeper rings them at high water. '.repeat(1 + (i % 3))}`
      }
    ]
  }))
  const { objects, manifest, prefix } = await encodeInline('ds_chat', docs, ['user'])
  const first = await readByDocument(objects, prefix, manifest.latents.byDocument, { start: 0, end: 1 })
  const order = Array.from(first.latents.keys()).sort((a, b) => first.values[b] - first.values[a])
  const pairs = order.slice(0, 6).map(k => ({ latent: first.latents[k], doc: 0, value: first.values[k] }))
  const miner = encoderWindowMiner(objects, new Map([['demo', encoder]]))
  const mined = await miner({ prefix, manifest, poolRoles: ['user'] }, pairs)
  assert.equal(mined.length, pairs.length)
  for (const p of pairs) {
    const w = mined.find(m => m.latent === p.latent)!
    const max = Math.max(...w.activations)
    assert.ok(
      Math.abs(max - p.value) <= 1e-3 * Math.max(1, p.value),
      `latent ${p.latent}: window ${max}, pooled ${p.value}`
    )
  }
  // Mined as the assistant's turns, the windows would be elsewhere: what the miner did before it took poolRoles.
  const wrong = await miner({ prefix, manifest }, pairs)
  assert.ok(
    pairs.some(p => {
      const w = wrong.find(m => m.latent === p.latent)
      return !w || Math.abs(Math.max(...w.activations) - p.value) > 1e-3 * Math.max(1, p.value)
    }),
    'the default roles give other windows for this dataset'
  )
})

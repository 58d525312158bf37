/**
 * @module A document re-encoded token by token: each latent's max and argmax are the pooled value and position the
 * encode job stored, in one window or several; a document's text, encoded as a text, has the document's latents.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { readByDocument } from '@latentbase/shared/store/latent-shards/read-by-document'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { loadEncoder, type LoadedEncoder } from '../encode/runtime.ts'
import { DEMO_ENCODER_DIR } from '../registry.ts'
import { encodeDataset } from './encode.ts'
import { stageInlineDataset } from '../bench/stage-dataset.ts'
import { encoderDocumentActivations, encoderTextActivations } from './document-activations.ts'

let encoder: LoadedEncoder
before(async () => {
  encoder = await loadEncoder(DEMO_ENCODER_DIR, { log: () => {} })
})
after(async () => {
  await encoder.close()
})

const DOCS = [
  { text: 'The tide rose over the old harbour wall while the bells of the church rang for the fishermen.' },
  {
    messages: [
      { role: 'user', content: 'Which wine goes with grilled salmon?' },
      { role: 'assistant', content: 'A dry white such as a Chablis, or a light Pinot Noir if you prefer red wine.' }
    ]
  },
  { text: 'Quarterly revenue grew by twelve percent, driven by strong sales of cloud software licences in Europe.' }
]

async function encodeWith(enc: LoadedEncoder) {
  const objects = new MemoryObjectStore()
  const datasets = new DatasetStore(objects)
  const record = await stageInlineDataset(objects, datasets, { id: 'ds_a', encoder: 'demo', docs: DOCS })
  const { manifest } = await encodeDataset(record, {
    objects,
    datasets,
    encoder: enc,
    allowLocalSources: false,
    topExamplesPerLatent: 0
  })
  return { objects, manifest, prefix: layout.datasetPrefix('local', 'ds_a') }
}

/** Every stored latent of every document: the re-encoded max and argmax equal what the job pooled. */
async function assertMatchesStored(enc: LoadedEncoder) {
  const { objects, manifest, prefix } = await encodeWith(enc)
  const read = encoderDocumentActivations(objects, new Map([['demo', enc]]))
  const stored = await readByDocument(objects, prefix, manifest.latents.byDocument, { start: 0, end: DOCS.length })
  const docs = await readDocuments(objects, prefix, manifest.documents.files, undefined, ['token_count'])
  let windows = 0
  for (let row = 0; row < DOCS.length; row++) {
    const k0 = stored.indptr[row]
    const k1 = stored.indptr[row + 1]
    const present = new Set(stored.latents.subarray(k0, k1))
    let absent = 0
    while (present.has(absent)) absent++
    const latents = Int32Array.from([...stored.latents.subarray(k0, k1), absent])
    const got = (await read({ prefix, manifest }, row, latents))!
    assert.ok(got, `row ${row}`)
    const n = got.tokens.length
    assert.equal(n, Number(docs.token_count[row]), `row ${row}: one token per token the reader read`)
    assert.equal(got.pooled.length, n)
    assert.equal(got.activations.length, latents.length * n)
    for (let c = 0; c < latents.length; c++) {
      const values = got.activations.subarray(c * n, (c + 1) * n)
      let max = 0
      let at = -1
      for (let t = 0; t < n; t++) {
        if (values[t] > max) [max, at] = [values[t], t]
        if (!got.pooled[t]) assert.equal(values[t], 0, `row ${row} latent ${latents[c]}: token ${t} is not pooled`)
      }
      if (c === latents.length - 1) {
        assert.equal(max, 0, `latent ${absent} is not stored for row ${row}, so it fires nowhere`)
        continue
      }
      const value = stored.values[k0 + c]
      assert.ok(
        Math.abs(max - value) <= 1e-3 * Math.max(1, value),
        `row ${row} latent ${latents[c]}: max ${max}, pooled ${value}`
      )
      assert.equal(at, stored.positions[k0 + c], `row ${row} latent ${latents[c]}: argmax`)
      if (at >= enc.prepareContext.maxTokens) windows++
    }
  }
  return { windows, objects, manifest, prefix, read }
}

test('each latent peaks where and as high as the encode job pooled it; the chat turn the dataset did not pool is 0', async () => {
  const { objects, manifest, prefix, read } = await assertMatchesStored(encoder)
  const chat = (await read({ prefix, manifest }, 1, Int32Array.from([0, 1, 2])))!
  const text = chat.tokens.join('')
  assert.match(text, /Chablis/)
  // The user's turn is read but not pooled (the dataset pools the assistant's).
  const firstPooled = chat.pooled.indexOf(1)
  assert.ok(firstPooled > 0 && /salmon/.test(chat.tokens.slice(0, firstPooled).join('')), text)
  // Another encoder version (its fingerprint) would fire elsewhere: no answer rather than a wrong one.
  assert.equal(
    await read({ prefix, manifest: { ...manifest, encoderFingerprint: 'other' } }, 0, Int32Array.of(1)),
    null
  )
  assert.equal(await read({ prefix, manifest }, 0, Int32Array.of(1)).then(r => r?.tokens[0] !== undefined), true)
  void objects
})

test('a long document read in several windows is joined back: argmaxes past the first window match the stored ones', async () => {
  const windowed = {
    ...encoder,
    prepareContext: { ...encoder.prepareContext, maxTokens: 8, longDocuments: 'window' as const }
  }
  const { windows } = await assertMatchesStored(windowed)
  assert.ok(windows > 5, `${windows} latents peak in a later window`)
})

test("a document's text encoded as a text: its strongest latents are the document's stored ones, peaking alike", async () => {
  const { objects, manifest, prefix } = await encodeWith(encoder)
  const read = encoderTextActivations(new Map([['demo', encoder]]))
  const stored = await readByDocument(objects, prefix, manifest.latents.byDocument, { start: 0, end: DOCS.length })
  for (const row of [0, 2]) {
    const k0 = stored.indptr[row]
    const k1 = stored.indptr[row + 1]
    const order = Array.from({ length: k1 - k0 }, (_, i) => k0 + i).sort(
      (x, y) => stored.values[y] - stored.values[x] || stored.latents[x] - stored.latents[y]
    )
    const got = (await read({ manifest }, DOCS[row].text!, { top: 8 }))!
    assert.equal(got.present, k1 - k0, 'every latent the document has, and no other')
    assert.deepEqual(
      Array.from(got.latents),
      order.slice(0, 8).map(k => stored.latents[k])
    )
    const n = got.tokens.length
    for (let c = 0; c < got.latents.length; c++) {
      const values = got.activations.subarray(c * n, (c + 1) * n)
      const max = Math.max(...values)
      assert.ok(Math.abs(max - stored.values[order[c]]) <= 1e-3 * Math.max(1, max))
      assert.equal(values.indexOf(max), stored.positions[order[c]])
    }
  }
  // A chat, as chat messages: rendered and pooled as the dataset's chat document was (the assistant's turn).
  const k0 = stored.indptr[1]
  const k1 = stored.indptr[2]
  const chat = (await read({ manifest }, { messages: DOCS[1].messages! }, { top: 5 }))!
  assert.equal(chat.present, k1 - k0)
  const strongestStored = Array.from({ length: k1 - k0 }, (_, i) => k0 + i)
    .sort((x, y) => stored.values[y] - stored.values[x] || stored.latents[x] - stored.latents[y])
    .slice(0, 5)
    .map(k => stored.latents[k])
  assert.deepEqual(Array.from(chat.latents), strongestStored)
  // Chosen latents come back in the order asked, a latent the text lacks at 0 everywhere.
  const chosen = (await read({ manifest }, DOCS[0].text!, { top: 8, latents: Int32Array.of(7, stored.latents[0]) }))!
  assert.deepEqual(Array.from(chosen.latents), [7, stored.latents[0]])
  assert.equal(chosen.present, stored.indptr[1] - stored.indptr[0], 'one pass counts what fires all the same')
  // Another encoder version: no answer rather than other latents.
  assert.equal(await read({ manifest: { ...manifest, encoderFingerprint: 'other' } }, 'hello', { top: 3 }), null)
})

/** @module Tests of the facets file: a round trip, and that a slice's counts read only its field's vectors. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFacets, readFacetSliceCounts, readFacetSliceRows, writeFacets } from './facets.ts'
import { facetCounts, facetSelection, facetsOf } from '../../analysis/facets.ts'
import { evaluateSlice } from '../../analysis/slice.ts'
import { csrFromCoo } from '../../analysis/sparse.ts'
import { parseSliceText } from '../../contract/slice.ts'
import { CountingObjectStore, MemoryObjectStore } from '../memory-store.ts'
import { mulberry32 } from '../../util/random.ts'

const nLatents = 3000
const n = 300

function fixture(longValues = false) {
  const r = mulberry32(3)
  const docs: number[] = []
  const latents: number[] = []
  const values: number[] = []
  for (let d = 0; d < n; d++)
    for (let k = 0; k < 40; k++) {
      docs.push(d)
      latents.push(Math.floor(r() * nLatents))
      values.push(r())
    }
  const csr = csrFromCoo(n, nLatents, Int32Array.from(docs), Int32Array.from(latents), Float32Array.from(values))
  // 25 values of 3,000 characters: a header past the first read.
  const pad = longValues ? 'v'.repeat(3000) : ''
  const metadata = Array.from({ length: n }, (_, i) =>
    JSON.stringify({ lang: ['en', 'fr', 'de'][i % 3], model: `${pad}m${i % 25}`, ...(i % 4 ? { split: i % 2 } : {}) })
  )
  const tokenCount = Int32Array.from({ length: n }, (_, i) => 10 + (i % 50))
  return facetsOf(csr, metadata, tokenCount)
}

test('a facets file reads back as written', async () => {
  const f = fixture()
  const store = new MemoryObjectStore()
  await store.put('facets.bin', writeFacets(f))
  assert.deepEqual(await readFacets(store, 'facets.bin'), f)
  await store.put('bad.bin', new Uint8Array(16))
  await assert.rejects(readFacets(store, 'bad.bin'), /not a facets file/)
})

test("a slice's counts read the header and its field's vectors only, and equal the counts from memory", async () => {
  for (const longValues of [false, true]) {
    const f = fixture(longValues)
    const store = new CountingObjectStore(new MemoryObjectStore())
    const bytes = writeFacets(f)
    await store.put('facets.bin', bytes)
    const vector = nLatents * 4
    for (const text of [
      'metadata.lang = "fr"',
      'metadata.lang != "fr"',
      'metadata.split = 1',
      'not metadata.split exists',
      longValues ? `metadata.model = "${'v'.repeat(3000)}m3"` : 'metadata.model in ("m3", "m4")'
    ]) {
      const slice = parseSliceText(text)
      store.reset()
      const got = await readFacetSliceCounts(store, 'facets.bin', slice)
      const selection = facetSelection(f, slice)!
      const field = f.fields[selection.field]
      const want = facetCounts(
        f,
        selection,
        selection.values.map(v => field.counts[v]),
        f.total
      )
      assert.deepEqual(got, want, text)
      // Header reads, then one range over the selected values (and every document's vector for a complement).
      const vectorsEnd = bytes.length - f.fields.length * n // then a byte per document and field
      const vectorsRead = store.fetches.filter(x => x.start >= vectorsEnd - (1 + 3 + 25 + 2) * vector)
      const wanted = (selection.values.at(-1)! - selection.values[0] + 1 || 0) + (selection.complement ? 1 : 0)
      assert.equal(
        vectorsRead.reduce((s, x) => s + x.bytes, 0),
        wanted * vector,
        text
      )
      assert.ok(store.bytesRead < bytes.length / 3 + (longValues ? 200_000 : 0), text)
    }
    assert.equal(
      await readFacetSliceCounts(store, 'facets.bin', parseSliceText('metadata.lang = "fr" and latent 3')),
      null
    )
  }
})

test("a slice's rows read the header and its field's byte per document, and equal evaluating the slice", async () => {
  const f = fixture()
  const store = new CountingObjectStore(new MemoryObjectStore())
  const bytes = writeFacets(f)
  await store.put('facets.bin', bytes)
  const metadata = Array.from({ length: n }, (_, i) => ({
    lang: ['en', 'fr', 'de'][i % 3],
    model: `m${i % 25}`,
    ...(i % 4 ? { split: i % 2 } : {})
  }))
  const row = Int32Array.from({ length: n }, (_, i) => i)
  for (const text of [
    'metadata.lang = "fr"',
    'metadata.lang != "fr"',
    'not metadata.split exists',
    'metadata.split = 1'
  ]) {
    const slice = parseSliceText(text)
    store.reset()
    const rows = await readFacetSliceRows(store, 'facets.bin', slice)
    assert.deepEqual(rows, evaluateSlice(slice, { nDocs: n, documents: { row, metadata } }), text)
    // The header (read once per store and key), then n bytes.
    assert.equal(store.fetches.at(-1)!.bytes, n, text)
    if (text !== 'metadata.lang = "fr"') assert.equal(store.fetches.length, 1, `${text}: the header is kept`)
    assert.ok(store.bytesRead < bytes.length / 4, text)
  }
  assert.equal(
    await readFacetSliceRows(store, 'facets.bin', parseSliceText('metadata.lang = "fr" and tokens > 3')),
    null
  )
})

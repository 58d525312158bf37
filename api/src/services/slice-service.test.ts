/** @module Tests of slice resolution: a slice's rows are evaluated once per dataset version and process, then reused. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CountingObjectStore, MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { clearShardMetadataCache } from '@latentbase/shared/store/parquet/read'
import { parseSliceText as parseSlice } from '@latentbase/shared/contract/slice'
import { writeSyntheticDataset } from '../bench/synthetic-store.ts'
import { loadReadyDataset } from './ready-dataset.ts'
import { sliceDataset } from './slice-service.ts'

test('a slice is read once per dataset version: the same slice again reads nothing, another slice or dataset reads', async () => {
  const inner = new MemoryObjectStore()
  const datasets = new DatasetStore(inner)
  const spec = { nDocs: 300, nLatents: 64, meanActive: 6, topics: 4, topicLatents: 4 }
  const a = await writeSyntheticDataset(
    inner,
    datasets,
    { tenant: 't', id: 'a', encoderId: 'syn' },
    { ...spec, seed: 1 }
  )
  await writeSyntheticDataset(inner, datasets, { tenant: 't', id: 'b', encoderId: 'syn' }, { ...spec, seed: 2 })
  const objects = new CountingObjectStore(inner)
  const ready = (id: string) => loadReadyDataset(datasets, 't', id, 'dataset')
  const where = parseSlice('metadata.topic < 2')
  const expected = Int32Array.from(a.topicOf.keys()).filter(row => a.topicOf[row] < 2)

  const first = await sliceDataset(objects, await ready('a'), where, 'where')
  assert.deepEqual(first.slice?.rows, expected)
  assert.ok(objects.fetches.length > 0, 'the first evaluation reads')
  // Parquet footers and pages cached per store are dropped, so what is left to hit is the slice's rows.
  clearShardMetadataCache()
  objects.reset()
  // The same slice, spelled otherwise (the canonical text is the key), from a freshly loaded dataset.
  const again = await sliceDataset(objects, await ready('a'), parseSlice('metadata.topic<2'), 'where')
  assert.deepEqual(again.slice?.rows, expected)
  assert.deepEqual(objects.fetches, [], 'nothing is read again')
  clearShardMetadataCache()
  await sliceDataset(objects, await ready('a'), parseSlice('metadata.topic >= 2'), 'where')
  assert.ok(objects.fetches.length > 0, 'another slice is evaluated')
  clearShardMetadataCache()
  objects.reset()
  const other = await sliceDataset(objects, await ready('b'), where, 'where')
  assert.ok(objects.fetches.length > 0, 'the same slice of another dataset is evaluated')
  assert.ok(other.slice!.rows.length > 0)
})

test("a slice on one facet key reads its rows from the facets file; another slice reads the documents' columns", async () => {
  const inner = new MemoryObjectStore()
  const datasets = new DatasetStore(inner)
  const spec = { nDocs: 500, nLatents: 64, meanActive: 6, topics: 5, topicLatents: 4, partDocuments: 200 }
  const a = await writeSyntheticDataset(inner, datasets, { tenant: 't', id: 'f', encoderId: 'syn' }, spec)
  const objects = new CountingObjectStore(inner)
  const ready = await loadReadyDataset(datasets, 't', 'f', 'dataset')
  assert.deepEqual(ready.manifest.facets?.fields, ['topic'], 'item has a value per document: no facet')
  for (const [text, facets] of [
    ['metadata.topic in (1, 3)', true],
    ['not metadata.topic = 4', true],
    ['metadata.topic in (1, 3) and tokens >= 0', false]
  ] as const) {
    clearShardMetadataCache()
    objects.reset()
    const got = await sliceDataset(objects, ready, parseSlice(text), 'where')
    const want = Int32Array.from(a.topicOf.keys()).filter(row =>
      text.startsWith('not') ? a.topicOf[row] !== 4 : a.topicOf[row] === 1 || a.topicOf[row] === 3
    )
    assert.deepEqual(got.slice?.rows, want, text)
    const keys = new Set(objects.fetches.map(f => f.key.slice(f.key.indexOf('/f/') + 3)))
    assert.deepEqual(
      [...keys].every(k => k === 'stats/facets.bin'),
      facets,
      `${text}: read ${[...keys].join(', ')}`
    )
  }
})

/** @module Tests of the encode job against the demo encoder: determinism across re-runs, crash safety, tombstones, chat pooling. */
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore, DatasetDeletedError } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { readByDocument } from '@latentbase/shared/store/latent-shards/read-by-document'
import { readByLatent } from '@latentbase/shared/store/latent-shards/read-by-latent'
import { bm25SidecarKey, openBm25Sidecar } from '@latentbase/shared/store/documents/bm25-sidecar'
import { cscKey } from '@latentbase/shared/store/latent-shards/csc'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import { loadEncoder, type LoadedEncoder } from '../encode/runtime.ts'
import { DEMO_ENCODER_DIR } from '../registry.ts'
import { encodeDataset } from './encode.ts'
import { latentSidecars } from './part.ts'

let encoder: LoadedEncoder
before(async () => {
  encoder = await loadEncoder(DEMO_ENCODER_DIR, { log: () => {} })
})

const docs = [
  ...Array.from({ length: 24 }, (_, i) => ({
    id: `t${i}`,
    text: `Document ${i}: ${'the white whale swam past the ship and the crew cheered. '.repeat(1 + (i % 7))}Call me ${i}.`,
    metadata: { i }
  })),
  {
    id: 'chat',
    messages: [
      { role: 'user', content: 'Please list three fruits.' },
      { role: 'assistant', content: 'Apples, pears and plums.' }
    ],
    metadata: {}
  }
]

async function setup(store = new MemoryObjectStore(), id = 'ds_test') {
  const datasets = new DatasetStore(store)
  const record: DatasetRecord = {
    id,
    tenant: 'local',
    name: 'test',
    status: 'running',
    encoder: 'demo',
    pooling: { method: 'max', outlierNormRatio: 100 },
    source: { inline: docs.length },
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    progress: { documents: { done: 0, total: docs.length }, tokens: 0 },
    attempts: 1
  }
  await store.put(layout.inlineInput('local', id), docs.map(d => JSON.stringify(d)).join('\n') + '\n')
  await datasets.putRecord(record)
  return { store, datasets, record }
}

async function snapshot(store: MemoryObjectStore, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const { key } of await store.list(prefix)) {
    if (key.endsWith('dataset.json')) continue // the mutable job record, not store contents
    out.set(key, Buffer.from((await store.get(key))!).toString('base64'))
  }
  return out
}

const options = {
  allowLocalSources: false,
  chunkDocuments: 8,
  partDocuments: 16,
  topExamplesPerLatent: 2,
  progressIntervalMs: 0
}

test('LATENTBASE_LATENT_SIDECARS=off writes no sidecar and nothing else differs; reads without positions give the same answer', async () => {
  const prefix = layout.datasetPrefix('local', 'ds_test')
  const on = await setup()
  await encodeDataset(on.record, { ...options, objects: on.store, datasets: on.datasets, encoder })
  const off = await setup()
  process.env.LATENTBASE_LATENT_SIDECARS = 'off'
  try {
    await encodeDataset(off.record, { ...options, objects: off.store, datasets: off.datasets, encoder })
  } finally {
    delete process.env.LATENTBASE_LATENT_SIDECARS
  }
  const withSidecars = await snapshot(on.store, prefix)
  const without = await snapshot(off.store, prefix)
  const sidecars = [...withSidecars.keys()].filter(k => k.endsWith('.csc'))
  assert.ok(sidecars.length >= 2)
  assert.deepEqual(
    [...without.keys()],
    [...withSidecars.keys()].filter(k => !k.endsWith('.csc'))
  )
  for (const [key, bytes] of without)
    if (!key.endsWith('manifest.json') && !/versions\//.test(key)) assert.equal(bytes, withSidecars.get(key), key)
  const manifest = (await off.datasets.getManifest('local', 'ds_test'))!
  assert.ok(manifest.latents.byLatent.every(f => f.cscBytes === undefined))
  const every = Int32Array.from({ length: encoder.info.dSae }, (_, l) => l)
  const reference = (await on.datasets.getManifest('local', 'ds_test'))!.latents.byLatent
  const a = await readByLatent(on.store, prefix, reference, every, {}, { positions: false })
  const b = await readByLatent(off.store, prefix, manifest.latents.byLatent, every, {}, { positions: false })
  for (const k of ['indptr', 'docs', 'values', 'positions'] as const) assert.deepEqual(b[k], a[k], k)
  assert.throws(() => latentSidecars('no'), /LATENTBASE_LATENT_SIDECARS must be "on" or "off", got "no"/)
})

test('two stores get byte-identical contents; a re-run after the commit changes nothing; the bookkeeping is swept', async () => {
  const first = await setup()
  await encodeDataset(first.record, { ...options, objects: first.store, datasets: first.datasets, encoder })
  const prefix = layout.datasetPrefix('local', 'ds_test')
  const once = await snapshot(first.store, prefix)
  await encodeDataset(first.record, { ...options, objects: first.store, datasets: first.datasets, encoder })
  const twice = await snapshot(first.store, prefix)
  const other = await setup()
  await encodeDataset(other.record, { ...options, objects: other.store, datasets: other.datasets, encoder })
  const elsewhere = await snapshot(other.store, prefix)
  assert.deepEqual([...twice.keys()], [...once.keys()])
  for (const key of once.keys())
    assert.doesNotMatch(
      key.slice(prefix.length),
      /^(input\/|parts\/|plan\.json|finalize\.json)/,
      `${key} left after the commit`
    )
  assert.ok(once.size >= 8, 'two parts of documents, by-document and by-latent shards, stats, examples, manifest')
  for (const [key, bytes] of once) {
    assert.equal(twice.get(key), bytes, `${key} changed on re-run`)
    assert.equal(elsewhere.get(key), bytes, `${key} differs between stores`)
  }

  const manifest = (await first.datasets.getManifest('local', 'ds_test'))!
  assert.equal(manifest.documents.count, docs.length)
  assert.equal(manifest.documents.files.length, 2, 'partDocuments 16 splits 25 documents into two parts')
  const csr = await readByDocument(first.store, prefix, manifest.latents.byDocument)
  assert.equal(csr.nDocs, docs.length)
  assert.equal(csr.latents.length, manifest.latents.nnz)
  // Each by-latent shard has its sidecar, of the size the manifest says, and reads without positions agree with it.
  for (const f of manifest.latents.byLatent)
    assert.equal(await first.store.head(prefix + cscKey(f.key)), f.cscBytes, `${f.key}: sidecar`)
  // Each documents shard has its BM25 sidecar, of the stated size, indexing exactly the shard's rows.
  for (const f of manifest.documents.files) {
    assert.ok(f.bm25Bytes, `${f.key}: BM25 sidecar size`)
    assert.equal(await first.store.head(prefix + bm25SidecarKey(f.key)), f.bm25Bytes, `${f.key}: BM25 sidecar`)
    const sidecar = await openBm25Sidecar(first.store, prefix + bm25SidecarKey(f.key), f.bm25Bytes)
    const { row } = await readDocuments(first.store, prefix, [f], undefined, ['token_count'])
    assert.deepEqual(Array.from(sidecar.rows), Array.from(row))
  }
  const every = Int32Array.from({ length: encoder.info.dSae }, (_, l) => l)
  const bySidecar = await readByLatent(first.store, prefix, manifest.latents.byLatent, every, {}, { positions: false })
  const byShard = await readByLatent(
    first.store,
    prefix,
    manifest.latents.byLatent.map(({ cscBytes, ...f }) => f),
    every,
    {},
    { positions: false }
  )
  assert.deepEqual(bySidecar.indptr, byShard.indptr)
  assert.deepEqual(bySidecar.docs, byShard.docs)
  assert.deepEqual(bySidecar.values, byShard.values)
  assert.equal(bySidecar.docs.length, manifest.latents.nnz)
  const stats = await readLatentStats(first.store, prefix + manifest.stats.key)
  const counts = new Int32Array(encoder.info.dSae)
  for (let k = 0; k < csr.latents.length; k++) counts[csr.latents[k]]++
  assert.deepEqual(
    Array.from(stats.docCount),
    Array.from(counts),
    'merged part statistics equal counts from the shards'
  )
  const text = await readDocuments(
    first.store,
    prefix,
    manifest.documents.files,
    [24],
    ['id', 'messages', 'masked_tokens']
  )
  assert.equal(text.id[0], 'chat')
  assert.deepEqual(JSON.parse(String(text.messages![0])), (docs[24] as { messages: unknown }).messages)
  assert.ok(Number(text.masked_tokens[0]) > 5, 'the user turn and template tokens are left out of pooling')
})

test('running the next batch while the host takes this one (overlapHost) writes byte-identical contents', async () => {
  const prefix = layout.datasetPrefix('local', 'ds_test')
  const contents = []
  // Small batches, so that each chunk holds several and the host's work really overlaps the next run.
  for (const overlapHost of [false, true]) {
    const s = await setup()
    await encodeDataset(s.record, {
      ...options,
      maxTokensPerBatch: 96,
      overlapHost,
      objects: s.store,
      datasets: s.datasets,
      encoder
    })
    contents.push(await snapshot(s.store, prefix))
  }
  assert.deepEqual([...contents[1].keys()], [...contents[0].keys()])
  for (const [key, bytes] of contents[0]) assert.equal(contents[1].get(key), bytes, `${key} differs with overlap`)
})

test('a job stopped mid-way leaves no manifest; the retry completes it', async () => {
  const { store, datasets, record } = await setup()
  const abort = new AbortController()
  await assert.rejects(
    encodeDataset(record, {
      ...options,
      objects: store,
      datasets,
      encoder,
      signal: abort.signal,
      log: line => {
        if (line.startsWith('part 0')) abort.abort()
      }
    })
  )
  assert.equal(await datasets.getManifest('local', 'ds_test'), null, 'a half-written dataset is never visible')
  const done = await encodeDataset(record, { ...options, objects: store, datasets, encoder })
  assert.equal(done.manifest.documents.count, docs.length)
  assert.ok(await datasets.getManifest('local', 'ds_test'))
})

test('a dataset deleted while encoding is never committed', async () => {
  const { store, datasets, record } = await setup()
  let deleted = false
  await assert.rejects(
    encodeDataset(record, {
      ...options,
      objects: store,
      datasets,
      encoder,
      log: line => {
        if (!deleted && line.startsWith('part 1')) {
          deleted = true
          void datasets.deleteDataset('local', 'ds_test')
        }
      }
    }),
    (err: Error) => err instanceof DatasetDeletedError
  )
  assert.equal(await datasets.getManifest('local', 'ds_test'), null)
  assert.equal(await datasets.getRecord('local', 'ds_test'), null)
})

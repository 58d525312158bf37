/**
 * @module Fault injection on the encode job: the object store fails (before or after the write lands) at seeded
 * random points; no half-written dataset is ever visible, and the retried job leaves exactly the store an
 * uninterrupted run leaves.
 */
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import type { ObjectStore, PutOptions } from '@latentbase/shared/store/object-store'
import { mulberry32 } from '@latentbase/shared/util/random'
import { loadEncoder, type LoadedEncoder } from '../encode/runtime.ts'
import { DEMO_ENCODER_DIR } from '../registry.ts'
import { encodeDataset } from './encode.ts'

let encoder: LoadedEncoder
before(async () => {
  encoder = await loadEncoder(DEMO_ENCODER_DIR, { log: () => {} })
})

// Small on purpose (the job runs 33 times): still three parts of two chunks each, so every kind of put is hit.
const docs = Array.from({ length: 12 }, (_, i) => ({
  id: `d${i}`,
  text: `Note ${i}. ${'Rain fell on the harbour and the gulls went quiet. '.repeat(1 + (i % 3))}`,
  metadata: {}
}))
const options = {
  allowLocalSources: false,
  chunkDocuments: 2,
  partDocuments: 4,
  topExamplesPerLatent: 2,
  progressIntervalMs: 0
}

/** Fails the n-th put: before it lands ('lost'), or after it lands with the answer lost ('landed'). */
class FaultyStore implements ObjectStore {
  puts = 0
  constructor(
    readonly inner: MemoryObjectStore,
    private failAt: number,
    private readonly mode: 'lost' | 'landed'
  ) {}
  get(key: string) {
    return this.inner.get(key)
  }
  getRange(key: string, start: number, end: number) {
    return this.inner.getRange(key, start, end)
  }
  head(key: string) {
    return this.inner.head(key)
  }
  delete(key: string) {
    return this.inner.delete(key)
  }
  list(prefix: string) {
    return this.inner.list(prefix)
  }
  async put(key: string, body: Uint8Array | string, opts?: PutOptions): Promise<void> {
    this.puts++
    if (this.puts === this.failAt) {
      if (this.mode === 'landed') await this.inner.put(key, body, opts)
      throw new Error(`injected store failure at put ${this.puts} (${this.mode}) of ${key}`)
    }
    return this.inner.put(key, body, opts)
  }
}

async function setup(store: ObjectStore) {
  const datasets = new DatasetStore(store)
  const record: DatasetRecord = {
    id: 'ds_f',
    tenant: 'local',
    name: 'faults',
    status: 'running',
    encoder: 'demo',
    pooling: { method: 'max', outlierNormRatio: 100 },
    source: { inline: docs.length },
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    progress: { documents: { done: 0, total: docs.length }, tokens: 0 },
    attempts: 1
  }
  await store.put(layout.inlineInput('local', 'ds_f'), docs.map(d => JSON.stringify(d)).join('\n') + '\n')
  await datasets.putRecord(record)
  return { datasets, record }
}

async function contents(store: MemoryObjectStore): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const { key } of await store.list(layout.datasetPrefix('local', 'ds_f'))) {
    if (key.endsWith('dataset.json')) continue // the mutable job record
    out.set(key, Buffer.from((await store.get(key))!).toString('base64'))
  }
  return out
}

test('store failures at random points: never a visible half dataset, and the retry equals an uninterrupted run', async () => {
  const clean = new MemoryObjectStore()
  const counting = new FaultyStore(clean, -1, 'lost')
  const c = await setup(counting)
  const setupPuts = counting.puts
  await encodeDataset(c.record, { ...options, objects: counting, datasets: c.datasets, encoder })
  const reference = await contents(clean)
  const jobPuts = counting.puts - setupPuts
  assert.ok(jobPuts >= 10, `${jobPuts} puts in a clean run`)

  const rand = mulberry32(2026)
  const points = new Set<number>([1, jobPuts])
  while (points.size < 8) points.add(1 + Math.floor(rand() * jobPuts))
  for (const at of [...points].sort((a, b) => a - b)) {
    for (const mode of ['lost', 'landed'] as const) {
      const inner = new MemoryObjectStore()
      const faulty = new FaultyStore(inner, -1, mode)
      const { datasets, record } = await setup(faulty)
      ;(faulty as unknown as { failAt: number }).failAt = faulty.puts + at
      let failed = false
      try {
        await encodeDataset(record, { ...options, objects: faulty, datasets, encoder })
      } catch (err) {
        failed = true
        assert.match((err as Error).message, /injected store failure/)
      }
      const manifest = await datasets.getManifest('local', 'ds_f')
      if (failed && !(mode === 'landed' && at === jobPuts)) {
        assert.equal(manifest, null, `put ${at} (${mode}) failed: no manifest may be visible`)
      }
      // The queue redelivers: the retry runs on a healthy store.
      await encodeDataset(record, { ...options, objects: inner, datasets: new DatasetStore(inner), encoder })
      const after = await contents(inner)
      assert.deepEqual([...after.keys()].sort(), [...reference.keys()].sort(), `put ${at} (${mode}): same keys`)
      for (const [key, bytes] of reference)
        assert.equal(after.get(key), bytes, `put ${at} (${mode}): ${key} differs from the uninterrupted run`)
    }
  }
})

/**
 * @module Scale-out: a dataset split into part jobs that several workers take from one queue; the manifest is
 * written once, by whoever completes the last part, however the finishers race; a finalizer that dies is resumed
 * by its own redelivery; a part that keeps failing fails the dataset naming the part.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import type { ObjectStore, PutOptions } from '@latentbase/shared/store/object-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { runConsumer } from '@latentbase/shared/queue/consumer'
import type { JobQueue, QueueMessage } from '@latentbase/shared/queue/job-queue'
import { withLiveProgress } from '@latentbase/shared/store/encode-progress'
import { loadEncoder, type LoadedEncoder } from '../encode/runtime.ts'
import { DEMO_ENCODER_DIR } from '../registry.ts'
import { encodeDataset, encodePart, planEncode } from './encode.ts'
import { handleJob, onDeadLetter, type WorkerDeps } from './handler.ts'

let encoder: LoadedEncoder
let dir: string
before(async () => {
  encoder = await loadEncoder(DEMO_ENCODER_DIR, { log: () => {} })
  dir = await mkdtemp(join(tmpdir(), 'latentbase-scale-out-'))
})
after(async () => {
  await encoder.close()
  await rm(dir, { recursive: true, force: true })
})

const docs = Array.from({ length: 22 }, (_, i) => ({
  id: `n${i}`,
  text: `Note ${i}: ${'the tide came in over the flats and the birds lifted. '.repeat(1 + (i % 4))}${i % 3 ? 'Thanks, see you.' : 'Regards.'}`,
  metadata: { i }
}))
const encodeOptions = { partDocuments: 4, chunkDocuments: 3, topExamplesPerLatent: 2, progressIntervalMs: 0 }
const PARTS = Math.ceil(docs.length / encodeOptions.partDocuments)

/** Counts the manifest writes that landed and the finalize claims taken. */
class CountingStore extends MemoryObjectStore {
  manifests = 0
  claims = 0
  failGets?: (key: string) => boolean
  override async put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<void> {
    await super.put(key, body, options)
    if (key.endsWith('/manifest.json')) this.manifests++
    if (key.endsWith('/finalize.json')) this.claims++
  }
  override async get(key: string): Promise<Uint8Array | null> {
    if (this.failGets?.(key)) throw new Error(`injected read failure: ${key}`)
    return super.get(key)
  }
}

async function dataset(store: ObjectStore, id: string): Promise<DatasetRecord> {
  const record: DatasetRecord = {
    id,
    tenant: 'local',
    name: id,
    status: 'queued',
    encoder: 'demo',
    pooling: { method: 'max', outlierNormRatio: 100 },
    source: { inline: docs.length },
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    progress: { documents: { done: 0, total: docs.length }, tokens: 0 },
    attempts: 0,
    webhook: {
      url: 'https://hooks.example/encode',
      secret: 'whsec_' + Buffer.from('scale-out-test-secret-0123456789').toString('base64')
    }
  }
  await store.put(layout.inlineInput('local', id), docs.map(d => JSON.stringify(d)).join('\n') + '\n')
  await new DatasetStore(store).putRecord(record)
  return record
}

/** Every object of the dataset but its mutable record, as base64. */
async function contents(store: MemoryObjectStore, id: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const { key } of await store.list(layout.datasetPrefix('local', id))) {
    if (!key.endsWith('/dataset.json'))
      out.set(
        key.slice(layout.datasetPrefix('local', id).length),
        Buffer.from((await store.get(key))!).toString('base64')
      )
  }
  return out
}

test('four workers on one queue: parts spread across them, every document once, one manifest, the bytes of a one-process run', async () => {
  const reference = new MemoryObjectStore()
  const refRecord = await dataset(reference, 'ds_scale')
  await encodeDataset(refRecord, {
    ...encodeOptions,
    objects: reference,
    datasets: new DatasetStore(reference),
    encoder,
    allowLocalSources: false
  })
  const expected = await contents(reference, 'ds_scale')

  const store = new CountingStore()
  const datasets = new DatasetStore(store)
  await dataset(store, 'ds_scale')
  let workers: WorkerDeps[] = []
  const queue = new EmbeddedQueue<JobMessage>(join(dir, 'scale-queue'), {
    maxReceives: 3,
    deadLetter: (m: QueueMessage<JobMessage>, reason: string) => onDeadLetter(workers[0], m.body, reason)
  })
  const partsBy = new Map<number, number[]>()
  const finalizedBy: number[] = []
  workers = Array.from({ length: 4 }, (_, w) => ({
    objects: store,
    datasets,
    queue,
    allowLocalSources: false,
    encoder: async () => encoder,
    encodeOptions,
    log: (line: string) => {
      const part = /part (\d+)\] part \d+: \d+ documents/.exec(line)
      if (part) partsBy.set(Number(part[1]), [...(partsBy.get(Number(part[1])) ?? []), w])
      if (line.includes('finalizing')) finalizedBy.push(w)
    }
  }))
  await queue.send({ kind: 'encode', tenant: 'local', datasetId: 'ds_scale' })
  const abort = new AbortController()
  const consumers = workers.map(deps =>
    runConsumer(queue, m => handleJob(m.body, deps, abort.signal, m), {
      signal: abort.signal,
      visibilitySeconds: 30,
      heartbeatSeconds: 5,
      waitSeconds: 0.05,
      onError: err => {
        throw err
      }
    })
  )
  const deadline = Date.now() + 60_000
  let record = await datasets.getRecord('local', 'ds_scale')
  const seenProgress: number[] = []
  while (record?.status !== 'ready' && record?.status !== 'failed' && Date.now() < deadline) {
    await new Promise(r => setTimeout(r, 20))
    record = await datasets.getRecord('local', 'ds_scale')
    if (record?.status === 'running') seenProgress.push((await withLiveProgress(store, record)).progress.documents.done)
  }
  abort.abort()
  await Promise.all(consumers)
  await queue.close()

  assert.equal(record?.status, 'ready', record?.error?.message ?? 'not ready')
  assert.equal(record!.stats!.documents, docs.length)
  assert.deepEqual(record!.stats!.parts, { count: PARTS, redelivered: 0 })
  assert.deepEqual(
    [...partsBy.keys()].sort((a, b) => a - b),
    Array.from({ length: PARTS }, (_, p) => p),
    'every part encoded'
  )
  assert.ok(
    [...partsBy.values()].every(by => by.length === 1),
    'no part encoded twice'
  )
  assert.ok(
    new Set([...partsBy.values()].flat()).size >= 2,
    `parts spread over workers: ${JSON.stringify([...partsBy])}`
  )
  assert.equal(finalizedBy.length, 1, 'one finalizer')
  assert.equal(store.manifests, 1, 'the manifest is written once')
  const got = await contents(store, 'ds_scale')
  assert.deepEqual([...got.keys()].sort(), [...expected.keys()].sort())
  for (const [key, bytes] of expected) assert.equal(got.get(key), bytes, `${key} differs from the one-process run`)
  assert.ok(
    seenProgress.length > 0 && seenProgress.every((v, i) => i === 0 || v >= seenProgress[i - 1]),
    `live progress only grows: ${seenProgress}`
  )
})

test('finishers racing for the last part: one claim, one manifest, one ready event', async () => {
  const store = new CountingStore()
  const datasets = new DatasetStore(store)
  const record = await dataset(store, 'ds_race')
  const sent: JobMessage[] = []
  const queue = {
    send: async (job: JobMessage) => {
      sent.push(job)
      return 'id'
    }
  } as unknown as JobQueue<JobMessage>
  const finalizing: number[] = []
  const deps: WorkerDeps = {
    objects: store,
    datasets,
    queue,
    allowLocalSources: false,
    encoder: async () => encoder,
    encodeOptions,
    log: line => {
      const m = /part (\d+)\] every part done: finalizing/.exec(line)
      if (m) finalizing.push(Number(m[1]))
    }
  }
  await handleJob({ kind: 'encode', tenant: 'local', datasetId: 'ds_race' }, deps)
  const partJobs = sent.splice(0)
  assert.equal(partJobs.length, PARTS)
  // Every part encoded (as by workers that died before acknowledging); then all their jobs come back at once.
  const running = (await datasets.getRecord('local', 'ds_race'))!
  const plan = await planEncode(running, {
    ...encodeOptions,
    objects: store,
    datasets,
    encoder,
    allowLocalSources: false
  })
  for (let p = 0; p < PARTS; p++)
    await encodePart(running, plan, p, {
      ...encodeOptions,
      objects: store,
      datasets,
      encoder,
      allowLocalSources: false
    })
  await Promise.all(partJobs.map(job => handleJob(job, deps, undefined, { receiveCount: 2 })))
  assert.equal(finalizing.length, 1, `one finalizer, not ${JSON.stringify(finalizing)}`)
  assert.equal(store.claims, 1)
  assert.equal(store.manifests, 1)
  assert.equal((await datasets.getRecord('local', 'ds_race'))?.status, 'ready')
  assert.deepEqual(
    sent.map(j => j.kind === 'webhook' && j.event),
    ['dataset.ready'],
    'one ready event'
  )
  assert.equal(record.id, 'ds_race')
})

test('a finalizer that died holding the claim: other parts leave it be, its own redelivery finishes the job', async () => {
  const store = new CountingStore()
  const datasets = new DatasetStore(store)
  await dataset(store, 'ds_claim')
  const sent: JobMessage[] = []
  const queue = {
    send: async (job: JobMessage) => {
      sent.push(job)
      return 'id'
    }
  } as unknown as JobQueue<JobMessage>
  const deps: WorkerDeps = {
    objects: store,
    datasets,
    queue,
    allowLocalSources: false,
    encoder: async () => encoder,
    encodeOptions
  }
  await handleJob({ kind: 'encode', tenant: 'local', datasetId: 'ds_claim' }, deps)
  const partJobs = sent.splice(0)
  // Part 2's worker encoded the last part, took the claim, and died before the manifest.
  for (const job of partJobs) {
    if (job.kind === 'encode-part' && job.part === 2) continue
    await handleJob(job, deps, undefined, { receiveCount: 1 })
  }
  store.failGets = key => key.endsWith('/parts/part-00000.stats.parquet')
  await assert.rejects(handleJob(partJobs[2], deps, undefined, { receiveCount: 1 }), /injected read failure/)
  store.failGets = undefined
  assert.equal(store.claims, 1)
  assert.equal(await datasets.getManifest('local', 'ds_claim'), null, 'nothing visible yet')
  // A duplicate of another part sees every part done and the claim taken by part 2: it does nothing.
  await handleJob(partJobs[0], deps, undefined, { receiveCount: 2 })
  assert.equal(store.manifests, 0)
  await handleJob(partJobs[2], deps, undefined, { receiveCount: 2 })
  assert.equal(store.manifests, 1)
  const record = await datasets.getRecord('local', 'ds_claim')
  assert.equal(record?.status, 'ready')
  assert.equal(record?.stats?.documents, docs.length)
  assert.deepEqual(
    (await store.list(layout.datasetPrefix('local', 'ds_claim') + 'parts/')).length,
    0,
    'bookkeeping swept'
  )
})

test('a part that keeps failing is dead-lettered and fails the dataset, naming the part and its last error', async () => {
  const store = new CountingStore()
  const datasets = new DatasetStore(store)
  await dataset(store, 'ds_bad_part')
  store.failGets = key => key.endsWith('/input/part-00003.jsonl')
  let deps!: WorkerDeps
  const queue = new EmbeddedQueue<JobMessage>(join(dir, 'bad-part-queue'), {
    maxReceives: 2,
    deadLetter: (m: QueueMessage<JobMessage>, reason: string) => onDeadLetter(deps, m.body, reason)
  })
  deps = { objects: store, datasets, queue, allowLocalSources: false, encoder: async () => encoder, encodeOptions }
  await queue.send({ kind: 'encode', tenant: 'local', datasetId: 'ds_bad_part' })
  const abort = new AbortController()
  const done = runConsumer(queue, m => handleJob(m.body, deps, abort.signal, m), {
    signal: abort.signal,
    visibilitySeconds: 1,
    heartbeatSeconds: 0.5,
    waitSeconds: 0.05,
    retryDelaySeconds: () => 0,
    onError: () => {}
  })
  const deadline = Date.now() + 30_000
  let record = await datasets.getRecord('local', 'ds_bad_part')
  while (record?.status !== 'failed' && Date.now() < deadline) {
    await new Promise(r => setTimeout(r, 50))
    record = await datasets.getRecord('local', 'ds_bad_part')
  }
  abort.abort()
  await done
  await queue.close()
  assert.equal(record?.status, 'failed')
  assert.equal(record?.error?.code, 'retries-exhausted')
  assert.match(record!.error!.message, /part 3/)
  assert.match(record!.error!.message, /injected read failure/)
  assert.equal(store.manifests, 0)
})

/**
 * @module Tests of the queue message handler under faults: a poison message dead-lettered after N receives with the
 * dataset failed and why; the same job delivered twice; a webhook receiver down for a while, then getting every
 * event exactly as signed.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Webhook } from 'standardwebhooks'
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import type { JobMessage, WebhookJob } from '@latentbase/shared/contract/job'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { runConsumer } from '@latentbase/shared/queue/consumer'
import type { JobQueue, QueueMessage } from '@latentbase/shared/queue/job-queue'
import { loadEncoder, type LoadedEncoder } from '../encode/runtime.ts'
import { DEMO_ENCODER_DIR } from '../registry.ts'
import { handleJob, onDeadLetter, type WorkerDeps } from './handler.ts'

const SECRET = 'whsec_' + Buffer.from('handler-test-secret-0123456789ab').toString('base64')
let encoder: LoadedEncoder
let dir: string
before(async () => {
  encoder = await loadEncoder(DEMO_ENCODER_DIR, { log: () => {} })
  dir = await mkdtemp(join(tmpdir(), 'latentbase-handler-'))
})
after(async () => {
  await encoder.close()
  await rm(dir, { recursive: true, force: true })
})

async function dataset(store: MemoryObjectStore, id: string, webhookUrl?: string): Promise<DatasetRecord> {
  const datasets = new DatasetStore(store)
  const record: DatasetRecord = {
    id,
    tenant: 'local',
    name: id,
    status: 'queued',
    encoder: 'demo',
    pooling: { method: 'max', outlierNormRatio: 100 },
    source: { inline: 3 },
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    progress: { documents: { done: 0, total: 3 }, tokens: 0 },
    attempts: 0,
    ...(webhookUrl ? { webhook: { url: webhookUrl, secret: SECRET } } : {})
  }
  await store.put(
    layout.inlineInput('local', id),
    ['one small note', 'a second note', 'and a third'].map(text => JSON.stringify({ text })).join('\n') + '\n'
  )
  await datasets.putRecord(record)
  return record
}

test('a poison message is dead-lettered after maxReceives, and the dataset is failed saying why', async () => {
  const store = new MemoryObjectStore()
  const datasets = new DatasetStore(store)
  await dataset(store, 'ds_poison')
  let deps!: WorkerDeps
  const queue = new EmbeddedQueue<JobMessage>(join(dir, 'poison-queue'), {
    maxReceives: 3,
    deadLetter: (m: QueueMessage<JobMessage>, reason: string) => onDeadLetter(deps, m.body, reason)
  })
  let loads = 0
  deps = {
    objects: store,
    datasets,
    queue,
    allowLocalSources: false,
    // The worker's GPU keeps failing: transient each time, so the queue redelivers until it gives up.
    encoder: async () => {
      loads++
      throw new Error('CUDA error: an illegal memory access was encountered')
    }
  }
  await queue.send({ kind: 'encode', tenant: 'local', datasetId: 'ds_poison' })
  const abort = new AbortController()
  const done = runConsumer(queue, m => handleJob(m.body, deps, abort.signal), {
    signal: abort.signal,
    visibilitySeconds: 1,
    heartbeatSeconds: 0.5,
    waitSeconds: 0.2,
    retryDelaySeconds: () => 0,
    onError: () => {}
  })
  const deadline = Date.now() + 20_000
  let record = await datasets.getRecord('local', 'ds_poison')
  while (record?.status !== 'failed' && Date.now() < deadline) {
    await new Promise(r => setTimeout(r, 100))
    record = await datasets.getRecord('local', 'ds_poison')
  }
  abort.abort()
  await done
  assert.equal(record?.status, 'failed')
  assert.equal(record?.error?.code, 'retries-exhausted')
  assert.match(record!.error!.message, /after 3 attempts/)
  assert.match(record!.error!.message, /CUDA error: an illegal memory access/, 'the user learns the last error')
  assert.equal(loads, 3, 'exactly maxReceives attempts')
  assert.equal((await queue.deadLetters()).length, 1)
  await queue.close()
})

/** Runs the queued encode-part jobs in order, each delivered once (webhook jobs are left in `sent`). */
async function runParts(sent: Array<{ job: JobMessage }>, deps: WorkerDeps): Promise<JobMessage[]> {
  const parts: JobMessage[] = []
  for (let i = 0; i < sent.length; ) {
    if (sent[i].job.kind !== 'encode-part') {
      i++
      continue
    }
    const [{ job }] = sent.splice(i, 1)
    parts.push(job)
    await handleJob(job, deps, undefined, { receiveCount: 1 })
  }
  return parts
}

/**
 * Worker dependencies over an in-memory store whose queue collects what it is sent (`sent`); `intercept` may take a
 * send over by returning the promise the send should give instead.
 */
function collectingWorker(
  store: MemoryObjectStore,
  partDocuments: number,
  intercept?: (job: JobMessage) => Promise<string> | undefined
) {
  const datasets = new DatasetStore(store)
  const sent: Array<{ job: JobMessage }> = []
  const queue = {
    send: async (job: JobMessage) => {
      const instead = intercept?.(job)
      if (instead) return instead
      sent.push({ job })
      return 'id'
    }
  } as unknown as JobQueue<JobMessage>
  const deps: WorkerDeps = {
    objects: store,
    datasets,
    queue,
    allowLocalSources: false,
    encoder: async () => encoder,
    encodeOptions: { topExamplesPerLatent: 1, partDocuments }
  }
  return { datasets, sent, deps }
}

test('the same jobs delivered twice (the plan while its parts wait, then every job after the commit): no-ops, the store unchanged', async () => {
  const store = new MemoryObjectStore()
  await dataset(store, 'ds_twice')
  const { datasets, sent, deps } = collectingWorker(store, 2)
  const listing = async () => new Map((await store.list('local/datasets/ds_twice/')).map(o => [o.key, o.size]))
  const job: JobMessage = { kind: 'encode', tenant: 'local', datasetId: 'ds_twice' }
  await handleJob(job, deps)
  assert.deepEqual(
    sent.map(s => s.job),
    [0, 1].map(part => ({ kind: 'encode-part', tenant: 'local', datasetId: 'ds_twice', part })),
    'one job per part'
  )
  let before = await listing()
  let record = await datasets.getRecord('local', 'ds_twice')
  await handleJob(job, deps)
  assert.equal(sent.length, 2, 'the parts are not queued twice')
  assert.deepEqual(await listing(), before)
  assert.deepEqual(await datasets.getRecord('local', 'ds_twice'), record, 'the record is not touched either')

  const parts = await runParts(sent, deps)
  record = await datasets.getRecord('local', 'ds_twice')
  assert.equal(record?.status, 'ready')
  assert.deepEqual(record?.stats?.parts, { count: 2, redelivered: 0 })
  before = await listing()
  for (const again of [job, ...parts]) await handleJob(again, deps, undefined, { receiveCount: 2 })
  assert.deepEqual(await listing(), before)
  assert.deepEqual(await datasets.getRecord('local', 'ds_twice'), record)
  assert.equal(sent.length, 0, 'no second event or job')
})

test('a planner that dies between its part messages: the redelivery queues the rest, and the dataset completes', async () => {
  const store = new MemoryObjectStore()
  await dataset(store, 'ds_cut')
  // The process dies while sending the second part message: that send never returns, and nothing after it runs (a
  // thrown error would run the planner's own error handling, which a SIGKILL does not).
  let crashAfter = 1
  let died: () => void
  const dead = new Promise<void>(ok => (died = ok))
  const { datasets, sent, deps } = collectingWorker(store, 1, job => {
    if (job.kind !== 'encode-part' || crashAfter-- > 0) return undefined
    died()
    return new Promise<string>(() => {})
  })
  const job: JobMessage = { kind: 'encode', tenant: 'local', datasetId: 'ds_cut' }
  void handleJob(job, deps)
  await dead
  assert.deepEqual(
    sent.map(s => (s.job as { part: number }).part),
    [0]
  )
  const cut = await datasets.getRecord('local', 'ds_cut')
  assert.equal(cut?.progress.parts?.total, 3, 'the record already knew the parts when the planner died')
  // The plan message comes back (it was never acknowledged): every part not done is queued this time.
  crashAfter = Infinity
  await handleJob(job, deps)
  assert.deepEqual(
    sent.map(s => (s.job as { part: number }).part),
    [0, 0, 1, 2]
  )
  await runParts(sent, deps)
  const record = await datasets.getRecord('local', 'ds_cut')
  assert.equal(record?.status, 'ready')
  assert.equal(record?.stats?.documents, 3)
})

test('a webhook receiver down for a while gets the event later, once, signed exactly as the spec says', async () => {
  const got: Array<{ status: number; headers: Record<string, string>; body: string }> = []
  let downFor = 3
  const server: Server = createServer((req, res) => {
    let body = ''
    req.on('data', c => {
      body += c
    })
    req.on('end', () => {
      const status = downFor-- > 0 ? 503 : 204
      got.push({ status, headers: req.headers as Record<string, string>, body })
      res.writeHead(status).end()
    })
  })
  await new Promise<void>(ok => server.listen(0, '127.0.0.1', ok))
  try {
    const store = new MemoryObjectStore()
    const datasets = new DatasetStore(store)
    await dataset(store, 'ds_hook', `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`)
    const sent: Array<{ job: JobMessage; delaySeconds?: number }> = []
    const queue = {
      send: async (job: JobMessage, o?: { delaySeconds?: number }) => {
        sent.push({ job, delaySeconds: o?.delaySeconds })
        return 'id'
      }
    } as unknown as JobQueue<JobMessage>
    const deps: WorkerDeps = {
      objects: store,
      datasets,
      queue,
      allowLocalSources: false,
      encoder: async () => encoder,
      encodeOptions: { topExamplesPerLatent: 1 }
    }
    await handleJob({ kind: 'encode', tenant: 'local', datasetId: 'ds_hook' }, deps)
    await runParts(sent, deps)
    let job = sent.shift()!.job as WebhookJob
    assert.equal(job.kind, 'webhook')
    // Deliver, and on failure take the re-queued job as if its delay had passed.
    for (let i = 0; i < 10 && got.at(-1)?.status !== 204; i++) {
      await handleJob({ ...job, notBefore: undefined }, deps)
      const next = sent.shift()
      if (next) {
        assert.ok((next.delaySeconds ?? 0) > 0, 'retries wait')
        job = next.job as WebhookJob
      }
    }
    assert.deepEqual(
      got.map(g => g.status),
      [503, 503, 503, 204]
    )
    assert.equal(sent.length, 0, 'nothing re-queued after the 2xx')
    assert.equal(
      new Set(got.map(g => g.headers['webhook-id'])).size,
      1,
      'one webhook-id across retries, so receivers can deduplicate'
    )
    assert.equal(new Set(got.map(g => g.body)).size, 1, 'the same body every time')
    const delivered = got.at(-1)!
    const event = new Webhook(SECRET).verify(delivered.body, {
      'webhook-id': delivered.headers['webhook-id'],
      'webhook-timestamp': delivered.headers['webhook-timestamp'],
      'webhook-signature': delivered.headers['webhook-signature']
    }) as { type: string; data: { id: string; status: string } }
    assert.equal(event.type, 'dataset.ready')
    assert.equal(event.data.id, 'ds_hook')
    assert.equal(event.data.status, 'ready')
  } finally {
    server.close()
  }
})

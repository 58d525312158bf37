/** @module Tests of the SDK against the real Hono app in-process (store in memory, embedded queue on disk, no worker). */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { StaticEncoderCatalog } from '@latentbase/shared/catalog/catalog'
import { signWebhook } from '@latentbase/shared/webhooks/sign'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { createApp } from '@latentbase/api/app'
import { createClient, verifyWebhook, type LatentbaseError, DatasetFailedError } from './index.ts'

let dir: string
let queue: EmbeddedQueue<JobMessage>
let datasets: DatasetStore
let client: ReturnType<typeof createClient>
const requested: string[] = []

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'latentbase-sdk-'))
  const objects = new MemoryObjectStore()
  datasets = new DatasetStore(objects)
  queue = new EmbeddedQueue<JobMessage>(join(dir, 'queue'))
  const info = {
    id: 'tiny',
    fingerprint: 'f'.repeat(64),
    hookName: 'blocks.0.hook_resid_post',
    dIn: 8,
    dSae: 32,
    architecture: 'standard',
    maxTokens: 64,
    labelled: 0
  }
  const app = createApp({
    objects,
    datasets,
    queue,
    encoders: new StaticEncoderCatalog([{ info, labels: new Array(32).fill(null) }]),
    mode: 'local',
    tenantOf: () => 'local'
  })
  client = createClient({
    baseUrl: 'http://latentbase.test/',
    fetch: async (input, init) => {
      requested.push(String(input))
      return app.request(String(input), init)
    }
  })
})

after(async () => {
  await queue.close()
  await rm(dir, { recursive: true, force: true })
})

test('create queues one encode job and returns the dataset; a generated webhook secret is shown once', async () => {
  const created = await client.datasets.create({
    name: 'notes',
    encoder: 'tiny',
    documents: [
      { text: 'hello' },
      {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello!' }
        ]
      }
    ],
    webhook: { url: 'http://127.0.0.1:9/hook' }
  })
  assert.equal(created.status, 'queued')
  assert.equal(created.name, 'notes')
  assert.deepEqual(created.source, { inline: 2 })
  assert.match(created.webhookSecret!, /^whsec_[A-Za-z0-9+/=]{40,}$/)
  assert.deepEqual(created.webhook, { url: 'http://127.0.0.1:9/hook' })
  const [message] = await queue.receive({ max: 10 })
  assert.deepEqual(message.body, { kind: 'encode', tenant: 'local', datasetId: created.id })
  await queue.ack(message)

  const got = await client.datasets.get(created.id)
  assert.equal(got.id, created.id)
  assert.equal((got as Record<string, unknown>).webhookSecret, undefined, 'the secret is never returned again')
  assert.ok((await client.datasets.list()).some(d => d.id === created.id))

  const given = await client.datasets.create({
    encoder: 'tiny',
    documents: [{ text: 'x' }],
    webhook: { url: 'http://127.0.0.1:9/h', secret: 'whsec_' + Buffer.alloc(24, 7).toString('base64') }
  })
  assert.equal(given.webhookSecret, undefined)
})

test('errors surface as LatentbaseError with the problem document', async () => {
  await assert.rejects(
    client.datasets.get('ds_nope'),
    (e: LatentbaseError) => e.status === 404 && e.code === 'dataset-not-found' && /ds_nope/.test(e.message)
  )
  await assert.rejects(
    client.datasets.create({ documents: [{ text: 'x' }] }),
    (e: LatentbaseError) => e.status === 422 && /unknown encoder "demo"; available: tiny/.test(e.message)
  )
  const queued = await client.datasets.create({ encoder: 'tiny', documents: [{ text: 'y' }] })
  const other = await client.datasets.create({ encoder: 'tiny', documents: [{ text: 'z' }] })
  await assert.rejects(
    client.diff({ a: queued.id, b: [other.id, 'ds_missing'], latents: [1, 2] }),
    (e: LatentbaseError) => e.status === 409 || e.status === 404
  )
  const url = requested.at(-1)!
  assert.match(url, /\/diff\?a=ds_\w+&b=ds_\w+&b=ds_missing&latents=1%2C2$/)
  await assert.rejects(
    client.diff({ a: queued.id, b: other.id }),
    (e: LatentbaseError) => e.status === 409 && e.code === 'dataset-not-ready'
  )
})

test('delete makes a dataset indistinguishable from a missing one', async () => {
  const d = await client.datasets.create({ encoder: 'tiny', documents: [{ text: 'bye' }] })
  await client.datasets.delete(d.id)
  await assert.rejects(client.datasets.get(d.id), (e: LatentbaseError) => e.status === 404)
  await assert.rejects(client.datasets.delete(d.id), (e: LatentbaseError) => e.status === 404)
  assert.ok(!(await client.datasets.list()).some(x => x.id === d.id))
})

test('waitUntilReady reports a failed job with its reason', async () => {
  const d = await client.datasets.create({ encoder: 'tiny', documents: [{ text: 'q' }] })
  const record = (await datasets.getRecord('local', d.id))!
  setTimeout(
    () =>
      void datasets.putRecord({
        ...record,
        status: 'failed',
        error: { code: 'bad-format', message: 'line 3 is not JSON' }
      }),
    50
  )
  await assert.rejects(
    client.datasets.waitUntilReady(d.id, { intervalMs: 20, timeoutMs: 5000 }),
    (e: DatasetFailedError) => e instanceof DatasetFailedError && /line 3 is not JSON/.test(e.message)
  )
})

test('verifyWebhook accepts a correctly signed event and rejects a tampered one', async () => {
  const secret = 'whsec_' + Buffer.alloc(32, 3).toString('base64')
  const now = Math.floor(Date.now() / 1000)
  const record = {
    id: 'ds_x',
    name: 'n',
    status: 'ready',
    encoder: 'demo',
    pooling: { method: 'max', outlierNormRatio: 100 },
    source: { inline: 1 },
    createdAt: 't',
    updatedAt: 't',
    progress: { documents: { done: 1, total: 1 }, tokens: 3 },
    attempts: 1
  }
  const body = JSON.stringify({ type: 'dataset.ready', timestamp: new Date().toISOString(), data: record })
  const headers = {
    'webhook-id': 'msg_1',
    'webhook-timestamp': String(now),
    'webhook-signature': await signWebhook(secret, 'msg_1', now, body)
  }
  const event = await verifyWebhook(secret, headers, body)
  assert.equal(event.data.id, 'ds_x')
  await assert.rejects(verifyWebhook(secret, headers, body.replace('ds_x', 'ds_y')))
  await assert.rejects(verifyWebhook(secret, { ...headers, 'webhook-timestamp': String(now - 3600) }, body))
})

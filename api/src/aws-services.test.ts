/** @module The same API and worker on S3 + SQS wire protocols (fauxqs in-process): create, encode, read back, diff. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs'
import { startFauxqs } from 'fauxqs'
import { JobMessage } from '@latentbase/shared/contract/job'
import { S3ObjectStore } from '@latentbase/shared/store/s3-store'
import { startTestS3, type TestS3 } from '@latentbase/shared/store/s3-testkit'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { SqsQueue } from '@latentbase/shared/queue/sqs-queue'
import { runConsumer } from '@latentbase/shared/queue/consumer'
import { handleJob } from '@latentbase/gpu-worker/job/handler'
import { DEMO_ENCODER_DIR, catalogOf, loadEncoders } from '@latentbase/gpu-worker/registry'
import { loadSpamAssassin } from '@latentbase/gpu-worker/corpus/spam-assassin'
import { createClient } from '@latentbase/sdk'
import { createApp } from './app.ts'

let s3: TestS3
let sqsServer: Awaited<ReturnType<typeof startFauxqs>>
let sqs: SQSClient
const abort = new AbortController()
let consumer: Promise<void>
let client: ReturnType<typeof createClient>
let objects: S3ObjectStore

before(async () => {
  s3 = await startTestS3('latentbase-test')
  sqsServer = await startFauxqs({ port: 0, logger: false })
  sqs = new SQSClient({
    endpoint: sqsServer.address,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' }
  })
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `jobs-${randomUUID()}` }))
  objects = new S3ObjectStore({ client: s3.client, bucket: s3.bucket })
  const datasets = new DatasetStore(objects)
  const queue = new SqsQueue<JobMessage>({ client: sqs, queueUrl: QueueUrl!, schema: JobMessage })
  const encoders = await loadEncoders([DEMO_ENCODER_DIR], () => {})
  const app = createApp({
    objects,
    datasets,
    queue,
    encoders: catalogOf(encoders),
    mode: 'cloud',
    tenantOf: () => 'acme'
  })
  client = createClient({
    baseUrl: 'http://api.test',
    fetch: async (input, init) => app.request(String(input), init),
    poll: { maxIntervalMs: 1000 }
  })
  consumer = runConsumer(
    queue,
    m =>
      handleJob(
        m.body,
        {
          objects,
          datasets,
          queue,
          allowLocalSources: false,
          encoder: async id => encoders.get(id),
          encodeOptions: { topExamplesPerLatent: 1 }
        },
        abort.signal
      ),
    { visibilitySeconds: 60, heartbeatSeconds: 10, waitSeconds: 1, signal: abort.signal }
  )
})

after(async () => {
  abort.abort()
  await consumer
  sqs.destroy()
  await sqsServer.stop()
  await s3.stop()
})

test('datasets created through the API are encoded from SQS into S3, and diffed from S3 range reads', async () => {
  const emails = loadSpamAssassin()
  const pick = (group: string) =>
    emails
      .filter(e => e.group === group)
      .slice(0, 12)
      .map(e => ({ id: e.id, text: e.text.slice(0, 800) }))
  const spam = await client.datasets.create({ documents: pick('spam-2') })
  const ham = await client.datasets.create({ documents: pick('easy-ham-2') })
  await client.datasets.waitUntilReady(spam.id, { timeoutMs: 120_000 })
  await client.datasets.waitUntilReady(ham.id, { timeoutMs: 120_000 })
  const keys = (await objects.list(`acme/datasets/${spam.id}/`)).map(o => o.key)
  assert.ok(keys.includes(`acme/datasets/${spam.id}/manifest.json`))
  assert.ok(
    keys.some(k => k.includes('/latents/by-latent/')),
    'shards live in the bucket under the tenant prefix'
  )
  const diff = await client.diff({ a: spam.id, b: ham.id, limit: 5 })
  assert.equal(diff.latents.length, 5)
  const doc = await client.documents.get(ham.id, 0)
  assert.ok(doc.latents.length > 0)
})

test('cloud mode refuses local file sources', async () => {
  await assert.rejects(
    client.datasets.create({ source: { url: '/etc/passwd' } }),
    (e: Error & { status?: number }) => e.status === 422 && /http\(s\)/.test(e.message)
  )
})

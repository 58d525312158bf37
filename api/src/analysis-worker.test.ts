/**
 * @module Tests of the cloud analysis consumer: a GET /correlations job travels through SQS and S3 (fauxqs, in-process)
 * and comes back ready, with labels read from the encoder catalog published in the bucket.
 */
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs'
import { startFauxqs } from 'fauxqs'
import { AnalysisQueueMessage } from '@latentbase/shared/contract/analysis-job'
import { CorrelationsResult } from '@latentbase/shared/contract/correlations'
import type { JobMessage } from '@latentbase/shared/contract/job'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import { S3ObjectStore } from '@latentbase/shared/store/s3-store'
import { publishEncoderCatalog } from '@latentbase/shared/catalog/store-catalog'
import { startTestS3, type TestS3 } from '@latentbase/shared/store/s3-testkit'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { SqsQueue } from '@latentbase/shared/queue/sqs-queue'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createApp } from './app.ts'
import { runAnalysisWorker } from './analysis-worker.ts'
import { syntheticCatalog, syntheticTopics, writeSyntheticDataset } from './bench/synthetic-store.ts'

const N_LATENTS = 256
const topics = syntheticTopics(N_LATENTS, 3, 10)
const encoders = syntheticCatalog('syn', N_LATENTS, topics)
const embedder: Embedder = {
  id: 'test-none',
  dimensions: 1,
  embed: async texts => new Float32Array(texts.length).fill(1)
}

let s3: TestS3
let sqsServer: Awaited<ReturnType<typeof startFauxqs>>
let sqs: SQSClient
let queueUrl: string
let dir: string

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'latentbase-analysis-worker-'))
  s3 = await startTestS3('latents')
  sqsServer = await startFauxqs({ port: 0, logger: false })
  sqs = new SQSClient({
    endpoint: sqsServer.address,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' }
  })
  queueUrl = (
    await sqs.send(new CreateQueueCommand({ QueueName: 'analysis', Attributes: { VisibilityTimeout: '30' } }))
  ).QueueUrl!
})
after(async () => {
  sqs?.destroy()
  await sqsServer?.stop()
  await s3?.stop()
  await rm(dir, { recursive: true, force: true })
})

test('a large GET /correlations is queued on SQS, run by the worker against S3, and read back through the API', async () => {
  const objects = new S3ObjectStore({ client: s3.client, bucket: s3.bucket })
  // What a GPU worker publishes at start-up; the analysis worker below loads no encoder and reads this.
  await publishEncoderCatalog(
    objects,
    await Promise.all(encoders.list().map(async info => ({ info, labels: await encoders.labels(info.id) })))
  )
  const datasets = new DatasetStore(objects)
  await writeSyntheticDataset(
    objects,
    datasets,
    { tenant: 'local', id: 'ds_cloud', encoderId: 'syn' },
    { nDocs: 80, nLatents: N_LATENTS, meanActive: 20, topics: 3, topicLatents: 10, topicRate: 0.9, seed: 5 }
  )
  const analysisQueue = new SqsQueue<AnalysisQueueMessage>({ client: sqs, queueUrl, schema: AnalysisQueueMessage })
  const app = createApp({
    objects,
    datasets,
    encoders,
    embedder,
    mode: 'local',
    tenantOf: () => 'local',
    queue: new EmbeddedQueue<JobMessage>(join(dir, 'encode-queue')),
    analysisQueue,
    correlationsDirectMaxDocuments: 10
  })
  const accepted = await app.request(
    '/correlations?dataset=ds_cloud&minCount=2&maxLabelSimilarity=1&minActivation=0&limit=5'
  )
  assert.equal(accepted.status, 202)
  const { job } = (await accepted.json()) as { job: { id: string; href: string } }

  const abort = new AbortController()
  const lines: string[] = []
  const worker = runAnalysisWorker({
    env: { ANALYSIS_QUEUE_URL: queueUrl, BUCKET: s3.bucket },
    embedder,
    s3: s3.client,
    sqs,
    log: l => lines.push(l),
    signal: abort.signal
  })
  try {
    const deadline = Date.now() + 20_000
    let status = 'queued'
    while (status !== 'ready' && status !== 'failed') {
      if (Date.now() > deadline) throw new Error(`job still ${status}; worker log: ${lines.join(' | ')}`)
      await new Promise(r => setTimeout(r, 100))
      status = ((await (await app.request(job.href)).json()) as { status: string }).status
    }
    assert.equal(status, 'ready')
    const result = CorrelationsResult.parse(await (await app.request(`${job.href}/result`)).json())
    assert.equal(result.documents, 80)
    assert.ok(result.pairs.length > 0)
    const labels = await encoders.labels('syn')
    for (const pair of result.pairs) {
      assert.equal(pair.a.label, labels[pair.a.latent])
      assert.equal(pair.b.label, labels[pair.b.latent])
    }
    assert.ok(
      result.pairs.some(p => p.a.label !== null),
      'labels come from the published catalog'
    )
  } finally {
    abort.abort()
    await worker
  }
})

test('the worker refuses to start without its queue or bucket, naming the variable', async () => {
  await assert.rejects(
    runAnalysisWorker({ env: { BUCKET: 'b' }, encoders, embedder, signal: AbortSignal.abort() }),
    /ANALYSIS_QUEUE_URL/
  )
})

/**
 * @module The API Lambda entry (`api/src/lambda.handler`) on API Gateway v2 / Function URL events, over S3 and SQS wire
 * protocols (fauxqs in-process): keys from S3, the catalog the GPU worker publishes, a job on SQS, a diff read from S3.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs'
import { startFauxqs } from 'fauxqs'
import { startTestS3, type TestS3 } from '@latentbase/shared/store/s3-testkit'
import { S3ObjectStore } from '@latentbase/shared/store/s3-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { ApiKeyStore } from '@latentbase/shared/auth/api-keys'
import { publishEncoderCatalog } from '@latentbase/shared/catalog/store-catalog'
import {
  syntheticEncoderInfo,
  syntheticLabels,
  syntheticTopics,
  writeSyntheticDataset
} from './bench/synthetic-store.ts'

let s3: TestS3
let sqsServer: Awaited<ReturnType<typeof startFauxqs>>
let sqs: SQSClient
let queueUrl: string
let key: string
let handler: typeof import('./lambda.ts').handler

function event(method: string, path: string, init: { query?: string; key?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = { host: 'abc.lambda-url.us-east-1.on.aws' }
  if (init.key) headers.authorization = `Bearer ${init.key}`
  if (init.body) headers['content-type'] = 'application/json'
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: init.query ?? '',
    headers,
    requestContext: {
      accountId: 'anonymous',
      apiId: 'abc',
      domainName: 'abc.lambda-url.us-east-1.on.aws',
      domainPrefix: 'abc',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.9', userAgent: 'test' },
      requestId: 'r1',
      routeKey: '$default',
      stage: '$default',
      time: '22/Nov/2026:07:00:00 +0000',
      timeEpoch: 0
    },
    body: init.body ? JSON.stringify(init.body) : undefined,
    isBase64Encoded: false
  }
}
async function invoke(method: string, path: string, init?: Parameters<typeof event>[2]) {
  const res = (await handler(event(method, path, init) as never, {} as never)) as {
    statusCode: number
    body: string
    headers: Record<string, string>
  }
  return { status: res.statusCode, headers: res.headers, body: res.body ? JSON.parse(res.body) : null }
}

before(async () => {
  s3 = await startTestS3('lambda-store')
  sqsServer = await startFauxqs({ port: 0, logger: false })
  sqs = new SQSClient({
    endpoint: sqsServer.address,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' }
  })
  queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'encode' }))).QueueUrl!
  Object.assign(process.env, {
    BUCKET: s3.bucket,
    QUEUE_URL: queueUrl,
    S3_ENDPOINT: s3.endpoint,
    SQS_ENDPOINT: sqsServer.address,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test'
  })
  const objects = new S3ObjectStore({ client: s3.client, bucket: s3.bucket })
  const topics = syntheticTopics(128, 4, 8)
  await publishEncoderCatalog(objects, [
    { info: syntheticEncoderInfo('syn', 128), labels: syntheticLabels(128, topics) }
  ])
  const datasets = new DatasetStore(objects)
  const spec = { nLatents: 128, meanActive: 12, topics: 4, topicLatents: 8 }
  await writeSyntheticDataset(
    objects,
    datasets,
    { tenant: 'acme', id: 'ds_a', encoderId: 'syn' },
    { ...spec, nDocs: 120, seed: 3, topicRate: 0.9 }
  )
  await writeSyntheticDataset(
    objects,
    datasets,
    { tenant: 'acme', id: 'ds_b', encoderId: 'syn' },
    { ...spec, nDocs: 100, seed: 4 }
  )
  key = (await new ApiKeyStore(objects).create('acme')).key
  handler = (await import('./lambda.ts')).handler
})

after(async () => {
  sqs?.destroy()
  await sqsServer?.stop()
  await s3?.stop()
})

test('no key: 401; a key: its tenant, the published encoders', async () => {
  assert.equal((await invoke('GET', '/datasets')).status, 401)
  assert.equal((await invoke('GET', '/health')).status, 200)
  const encoders = await invoke('GET', '/encoders', { key })
  assert.equal(encoders.status, 200)
  assert.deepEqual(
    (Array.isArray(encoders.body) ? encoders.body : encoders.body.encoders).map((e: { id: string }) => e.id),
    ['syn']
  )
})

test('POST /datasets answers 202 and puts one encode job on SQS', async () => {
  const res = await invoke('POST', '/datasets', {
    key,
    body: { encoder: 'syn', documents: [{ text: 'from a lambda' }] }
  })
  assert.equal(res.status, 202, JSON.stringify(res.body))
  const got = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 })
  )
  assert.deepEqual(
    (got.Messages ?? []).map(m => JSON.parse(m.Body!)),
    [{ kind: 'encode', tenant: 'acme', datasetId: res.body.id }]
  )
})

test('GET /diff reads both datasets from S3 with the catalog labels', async () => {
  const res = await invoke('GET', '/diff', { key, query: 'a=ds_a&b=ds_b&limit=5' })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.equal(res.body.a.documents, 120)
  assert.equal(res.body.latents.length, 5)
  assert.ok(res.body.latents.every((l: { label: string | null }) => typeof l.label === 'string'))
})

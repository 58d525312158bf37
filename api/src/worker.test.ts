/**
 * @module The API as a Cloudflare Worker, in the real workerd runtime (miniflare): the bundle `wrangler deploy --dry-run`
 * builds from wrangler.jsonc, R2 for the store, Cloudflare Queues for jobs, API keys and tenants, a ready dataset's diff.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, rm } from 'node:fs/promises'
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs'
import { startFauxqs } from 'fauxqs'
import { SqsQueue } from '@latentbase/shared/queue/sqs-queue'
import { fileURLToPath } from 'node:url'
import { Miniflare } from 'miniflare'
import { R2ObjectStore, type R2BucketLike } from '@latentbase/shared/store/r2-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { ApiKeyStore } from '@latentbase/shared/auth/api-keys'
import { publishEncoderCatalog } from '@latentbase/shared/catalog/store-catalog'
import { buildWorkerBundle, FREE_PLAN_LIMIT_BYTES } from '../../infra/worker-bundle.ts'
import { ensureWebBuild } from '../../web/build.ts'
import {
  syntheticEncoderInfo,
  syntheticLabels,
  syntheticTopics,
  writeSyntheticDataset
} from './bench/synthetic-store.ts'

const ENCODER = 'syn'
const WEB_DIST = fileURLToPath(new URL('../../web/dist', import.meta.url))
const N_LATENTS = 256

let mf: Miniflare
let outDir: string
let bundleBytes = 0
let scriptPath: string
let keyA: string
let keyB: string
let labels: string[]

/** Messages the test's own consumer Worker received from the encode queue, stored in its R2 bucket. */
async function receivedJobs(): Promise<unknown[]> {
  const sink = (await mf.getR2Bucket('SINK', 'sink')) as unknown as R2BucketLike
  const out: unknown[] = []
  for (const o of (await sink.list({ prefix: 'jobs/' })).objects)
    out.push(JSON.parse(new TextDecoder().decode(await (await sink.get(o.key))!.arrayBuffer())))
  return out
}

async function call(path: string, init: { method?: string; key?: string; body?: unknown } = {}) {
  const res = await mf.dispatchFetch(`http://latentbase.test${path}`, {
    method: init.method ?? 'GET',
    headers: {
      ...(init.key ? { authorization: `Bearer ${init.key}` } : {}),
      ...(init.body ? { 'content-type': 'application/json' } : {})
    },
    body: init.body ? JSON.stringify(init.body) : undefined
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null }
}

before(async () => {
  // The static assets a deploy uploads beside the script (web/dist, with the embedder's lexicon), current.
  await ensureWebBuild({ log: () => {} })
  // The exact bundle a deploy would upload, from wrangler.jsonc.
  const bundle = await buildWorkerBundle()
  outDir = bundle.outDir
  scriptPath = bundle.script
  bundleBytes = bundle.gzipBytes
  console.log(`[worker] ${bundle.wranglerSize}`)
  // A node: import would only be a warning at bundle time and a failure at run time.
  assert.deepEqual(bundle.nodeImports, [], 'the Worker bundle must not import node: modules')
  // The API reads Parquet but never writes it, and the offline embedder's lexicon is a static asset, not script.
  const script = await readFile(scriptPath, 'utf8')
  assert.ok(!script.includes('node_modules/hyparquet-writer/'), 'hyparquet-writer is in the Worker bundle')
  assert.ok(!script.includes('physician'), "the offline embedder's lexicon is inlined in the Worker bundle")

  mf = new Miniflare({
    workers: [
      {
        name: 'api',
        modules: true,
        scriptPath,
        // Module names are paths relative to this root; the default (cwd) would put the bundle at '../..'.
        modulesRoot: outDir,
        compatibilityDate: '2026-07-01',
        r2Buckets: ['STORE'],
        queueProducers: { JOBS: { queueName: 'latentbase-encode' } },
        // As wrangler.jsonc: web/dist (built by `npm ci`), which holds the offline embedder's lexicon too.
        assets: { directory: WEB_DIST, binding: 'ASSETS', routerConfig: { has_user_worker: true } }
      },
      {
        // Stands in for the GPU container: records each message it is handed.
        name: 'sink',
        modules: true,
        compatibilityDate: '2026-07-01',
        r2Buckets: ['SINK'],
        queueConsumers: { 'latentbase-encode': { maxBatchTimeout: 0, maxBatchSize: 1 } },
        script: `export default {
          async queue(batch, env) {
            for (const m of batch.messages) { await env.SINK.put('jobs/' + m.id, JSON.stringify(m.body)); m.ack() }
          },
        }`
      }
    ]
  })

  // Seed R2 the way production is seeded: the GPU worker publishes its encoders, the CLI makes keys, the worker writes datasets.
  const objects = new R2ObjectStore({ bucket: (await mf.getR2Bucket('STORE', 'api')) as unknown as R2BucketLike })
  const datasets = new DatasetStore(objects)
  labels = syntheticLabels(N_LATENTS, syntheticTopics(N_LATENTS, 4, 8))
  await publishEncoderCatalog(objects, [{ info: syntheticEncoderInfo(ENCODER, N_LATENTS), labels }])
  const spec = { nLatents: N_LATENTS, meanActive: 20, topics: 4, topicLatents: 8, rowGroupRows: 2000 }
  await writeSyntheticDataset(
    objects,
    datasets,
    { tenant: 'acme', id: 'ds_ham', encoderId: ENCODER, name: 'ham' },
    { ...spec, nDocs: 300, seed: 1 }
  )
  await writeSyntheticDataset(
    objects,
    datasets,
    { tenant: 'acme', id: 'ds_spam', encoderId: ENCODER, name: 'spam' },
    { ...spec, nDocs: 250, seed: 2, topicRate: 0.9 }
  )
  const keys = new ApiKeyStore(objects)
  keyA = (await keys.create('acme', 'test')).key
  keyB = (await keys.create('globex', 'test')).key
})

after(async () => {
  await mf?.dispose()
  if (outDir) await rm(outDir, { recursive: true, force: true })
})

test('the bundle is within the Workers size limit (3 MB compressed on the free plan)', () => {
  console.log(`[worker] bundle: ${(bundleBytes / 1024).toFixed(1)} KiB gzipped`)
  assert.ok(bundleBytes > 10_000 && bundleBytes < FREE_PLAN_LIMIT_BYTES, `${bundleBytes} bytes`)
})

test('without a valid API key: 401 with WWW-Authenticate; /health stays public', async () => {
  const none = await call('/datasets')
  assert.equal(none.status, 401)
  assert.equal(none.body.code, 'unauthorized')
  assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/)
  assert.equal((await call('/datasets', { key: 'lb_' + 'x'.repeat(43) })).status, 401)
  assert.equal((await call('/health')).status, 200)
})

test('GET /encoders lists the encoder the GPU worker published to R2', async () => {
  const res = await call('/encoders', { key: keyA })
  assert.equal(res.status, 200)
  const ids = (Array.isArray(res.body) ? res.body : res.body.encoders).map((e: { id: string }) => e.id)
  assert.deepEqual(ids, [ENCODER])
})

test('POST /datasets: 202, the inline documents land in R2 and one encode job reaches the queue consumer', async () => {
  const res = await call('/datasets', {
    method: 'POST',
    key: keyA,
    body: { name: 'edge', encoder: ENCODER, documents: [{ text: 'hello from the edge' }, { text: 'second' }] }
  })
  assert.equal(res.status, 202, JSON.stringify(res.body))
  assert.equal(res.body.status, 'queued')
  const id: string = res.body.id
  const objects = new R2ObjectStore({ bucket: (await mf.getR2Bucket('STORE', 'api')) as unknown as R2BucketLike })
  const input = await objects.get(`acme/datasets/${id}/input/documents.jsonl`)
  assert.ok(input && new TextDecoder().decode(input).includes('hello from the edge'))
  let jobs: unknown[] = []
  for (let i = 0; i < 100 && !jobs.some(j => (j as { datasetId?: string }).datasetId === id); i++) {
    await new Promise(r => setTimeout(r, 100))
    jobs = await receivedJobs()
  }
  assert.deepEqual(
    jobs.filter(j => (j as { datasetId?: string }).datasetId === id),
    [{ kind: 'encode', tenant: 'acme', datasetId: id }]
  )
  // The record is readable through the API by its tenant, and only by it.
  assert.equal((await call(`/datasets/${id}`, { key: keyA })).body.status, 'queued')
  assert.equal((await call(`/datasets/${id}`, { key: keyB })).status, 404)
})

test('GET /search embeds labels and query with the offline embedder, its lexicon read from the static assets', async () => {
  const topic = syntheticTopics(N_LATENTS, 4, 8)[0][0]
  const res = await call(`/search?dataset=ds_spam&q=${encodeURIComponent(labels[topic])}&k=3&limit=5`, { key: keyA })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.ok(
    res.body.latents.some((l: { latent: number }) => l.latent === topic),
    JSON.stringify(res.body.latents)
  )
  assert.ok(res.body.results.length > 0)
})

test('GET /diff reads a ready dataset pair from R2, with labels from the published catalog', async () => {
  const res = await call('/diff?a=ds_spam&b=ds_ham&limit=10', { key: keyA })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.equal(res.body.a.documents, 250)
  assert.equal(res.body.b[0].documents, 300)
  assert.ok(res.body.latents.length > 0 && res.body.latents.length <= 10)
  for (const l of res.body.latents) {
    assert.equal(l.label, labels[l.latent])
    assert.ok(l.frequencyA >= 0 && l.frequencyA <= 1)
  }
  // Spam was written with topics firing at 0.9 against 0.6: its strongest latents over ham are topic latents.
  assert.ok(res.body.latents[0].difference > 0)
  assert.match(res.body.latents[0].label, /^topic /)
})

test('another tenant sees the same datasets as missing: reads, diffs and deletes all answer 404', async () => {
  const missing = await call('/datasets/ds_nope', { key: keyB })
  const read = await call('/datasets/ds_ham', { key: keyB })
  assert.equal(read.status, 404)
  assert.equal(read.body.code, missing.body.code)
  assert.equal((await call('/diff?a=ds_spam&b=ds_ham', { key: keyB })).status, 404)
  assert.equal((await call('/datasets/ds_ham', { method: 'DELETE', key: keyB })).status, 404)
  assert.deepEqual((await call('/datasets', { key: keyB })).body.datasets, [])
  const own = (await call('/datasets', { key: keyA })).body.datasets.map((d: { id: string }) => d.id)
  assert.ok(own.includes('ds_ham') && own.includes('ds_spam'))
  // Still there for its owner.
  assert.equal((await call('/datasets/ds_ham', { key: keyA })).body.status, 'ready')
})

test('with SQS_QUEUE_URL the Worker sends jobs straight to SQS (SigV4 over fetch, in workerd) for the AWS consumers', async () => {
  const server = await startFauxqs({ port: 0, logger: false })
  const sqs = new SQSClient({
    endpoint: server.address,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' }
  })
  const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'encode' }))).QueueUrl!
  const mf2 = new Miniflare({
    modules: true,
    scriptPath,
    modulesRoot: outDir,
    compatibilityDate: '2026-07-01',
    r2Buckets: ['STORE'],
    bindings: {
      SQS_QUEUE_URL: queueUrl,
      SQS_ENDPOINT: server.address,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test'
    }
  })
  try {
    const objects = new R2ObjectStore({ bucket: (await mf2.getR2Bucket('STORE')) as unknown as R2BucketLike })
    await publishEncoderCatalog(objects, [{ info: syntheticEncoderInfo(ENCODER, N_LATENTS), labels }])
    const key = (await new ApiKeyStore(objects).create('acme')).key
    const res = await mf2.dispatchFetch('http://latentbase.test/datasets', {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ encoder: ENCODER, documents: [{ text: 'to sqs' }] })
    })
    const body = (await res.json()) as { id: string }
    assert.equal(res.status, 202, JSON.stringify(body))
    const got = await new SqsQueue({ client: sqs, queueUrl }).receive({ max: 10, waitSeconds: 2 })
    assert.deepEqual(
      got.map(m => m.body),
      [{ kind: 'encode', tenant: 'acme', datasetId: body.id }]
    )
  } finally {
    await mf2.dispose()
    sqs.destroy()
    await server.stop()
  }
})

test('POST /uploads in workerd: the raw body lands in R2 under the tenant, and only that tenant can make a dataset of it', async () => {
  const body = '{"text":"uploaded through the Worker"}\n'
  const res = await mf.dispatchFetch('http://latentbase.test/uploads?filename=notes.jsonl', {
    method: 'POST',
    headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/x-ndjson' },
    body
  })
  assert.equal(res.status, 201)
  const up = (await res.json()) as { id: string; url: string; bytes: number }
  assert.equal(up.bytes, body.length)
  const bucket = (await mf.getR2Bucket('STORE', 'api')) as unknown as R2BucketLike
  assert.equal(new TextDecoder().decode(await (await bucket.get(`acme/uploads/${up.id}`))!.arrayBuffer()), body)
  const mine = await call('/datasets', {
    method: 'POST',
    key: keyA,
    body: { source: { url: up.url }, encoder: ENCODER }
  })
  assert.equal(mine.status, 202)
  assert.equal(mine.body.name, 'notes.jsonl')
  const theirs = await call('/datasets', {
    method: 'POST',
    key: keyB,
    body: { source: { url: up.url }, encoder: ENCODER }
  })
  assert.equal(theirs.status, 422)
  assert.equal(theirs.body.code, 'upload-not-found')
})

/** @module End-to-end tests of the local deployment: HTTP API + durable queue + worker + demo encoder, through the SDK. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { mkdtemp, rm, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient, verifyWebhook, type LatentbaseError, type DatasetFailedError } from '@latentbase/sdk'
import { DEMO_ENCODER_DIR, loadEncoders } from '@latentbase/gpu-worker/registry'
import type { LoadedEncoder } from '@latentbase/gpu-worker/encode/runtime'
import { startLocal, type LocalServer } from './local-server.ts'
import { loadSpamAssassin } from '@latentbase/gpu-worker/corpus/spam-assassin'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import { labelEmbeddingsKey } from '@latentbase/shared/embeddings/label-cache'

let dataDir: string
let server: LocalServer
let encoders: Map<string, LoadedEncoder>
let client: ReturnType<typeof createClient>
let files: Server
let filesUrl: string
const served = new Map<string, { status?: number; type?: string; body: string | Buffer }>()

const emails = loadSpamAssassin()
const ham = emails
  .filter(e => e.group === 'easy-ham-1')
  .slice(0, 40)
  .map(e => ({ id: e.id, text: e.text.slice(0, 1500), metadata: { group: e.group } }))
const spam = emails
  .filter(e => e.group === 'spam-1')
  .slice(0, 40)
  .map(e => ({ id: e.id, text: e.text.slice(0, 1500), metadata: { group: e.group } }))

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'latentbase-e2e-'))
  encoders = await loadEncoders([DEMO_ENCODER_DIR], () => {})
  server = await startLocal({ dataDir, port: 0, encoders, log: () => {} })
  // Polls capped at 1 s: a ready dataset is seen within a second, not up to 5 s later (and the in-process server is not
  // kept busy answering polls while it encodes).
  client = createClient({ baseUrl: server.url, poll: { maxIntervalMs: 1000 } })
  files = createServer((req, res) => {
    const f = served.get(req.url ?? '')
    if (!f) {
      res.writeHead(404).end('no such file')
      return
    }
    res.writeHead(f.status ?? 200, { 'content-type': f.type ?? 'application/octet-stream' }).end(f.body)
  })
  await new Promise<void>(ok => files.listen(0, '127.0.0.1', ok))
  filesUrl = `http://127.0.0.1:${(files.address() as { port: number }).port}`
})

after(async () => {
  await server.close()
  files.close()
  await rm(dataDir, { recursive: true, force: true })
})

async function raw(path: string, init?: RequestInit) {
  const res = await fetch(server.url + path, init)
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    body: (await res.json().catch(() => null)) as Record<string, unknown> | null
  }
}

test('bad requests get problem+json answers a user can act on', async () => {
  const malformed = await raw('/datasets', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"documents": ['
  })
  assert.equal(malformed.status, 400)
  assert.match(malformed.type, /application\/problem\+json/)

  const neither = await raw('/datasets', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}'
  })
  assert.equal(neither.status, 400)
  assert.match(String(neither.body?.detail), /exactly one of "source"/)

  const badDoc = await raw('/datasets', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ documents: [{ id: 'x' }] })
  })
  assert.equal(badDoc.status, 400)
  assert.match(String(badDoc.body?.detail), /documents\.0/)

  const encoder = await raw('/datasets', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ documents: [{ text: 'hi' }], encoder: 'nope' })
  })
  assert.equal(encoder.status, 422)
  assert.match(String(encoder.body?.detail), /unknown encoder "nope"; available: demo/)

  const missing = await raw('/datasets/ds_missing')
  assert.equal(missing.status, 404)
  assert.equal(missing.body?.code, 'dataset-not-found')

  const diffParams = await raw('/diff?a=x')
  assert.equal(diffParams.status, 400)
  assert.match(String(diffParams.body?.detail), /b/)

  const route = await raw('/nowhere')
  assert.equal(route.status, 404)
  assert.match(route.type, /problem\+json/)

  const health = await raw('/health')
  assert.equal(health.status, 200)
  assert.equal(health.body?.ok, true)
  const spec = await raw('/openapi.json')
  assert.ok((spec.body?.paths as Record<string, unknown> | undefined)?.['/diff'])
})

test('inline ham and spam encode to ready datasets, documents read back, and diff ranks latents with statistics', async () => {
  const a = await client.datasets.create({ name: 'spam', documents: spam })
  const b = await client.datasets.create({ name: 'ham', documents: ham })
  assert.equal(a.status, 'queued')
  const readyA = await client.datasets.waitUntilReady(a.id, { timeoutMs: 300_000 })
  const readyB = await client.datasets.waitUntilReady(b.id, { timeoutMs: 300_000 })
  assert.equal(readyA.stats?.documents, spam.length)
  assert.equal(readyB.stats?.documents, ham.length)
  assert.ok(readyA.stats!.tokens > spam.length * 10)
  assert.ok(readyA.stats!.maskedTokens.special >= spam.length, 'BOS is masked in every document')

  const listed = await client.datasets.list()
  assert.ok(listed.some(d => d.id === a.id) && listed.some(d => d.id === b.id))

  const doc = await client.documents.get(a.id, 3)
  assert.equal(doc.id, spam[3].id)
  assert.equal(doc.text, spam[3].text)
  assert.deepEqual(doc.metadata, { group: 'spam-1' })
  assert.ok(doc.latents.length > 5)
  for (let i = 1; i < doc.latents.length; i++) assert.ok(doc.latents[i - 1].value >= doc.latents[i].value)
  assert.ok(doc.latents.every(l => l.value > 0 && l.position >= 0 && l.position < doc.tokenCount))
  // The local server holds the encoder: the document re-encoded token by token peaks where the page says.
  const shown = await client.documents.activations(a.id, 3, [doc.latents[0].latent, doc.latents[1].latent])
  assert.equal(shown.tokens.length, doc.tokenCount)
  assert.deepEqual(
    shown.latents.map(l => l.position),
    [doc.latents[0].position, doc.latents[1].position]
  )
  await assert.rejects(
    client.documents.get(a.id, spam.length),
    (e: LatentbaseError) => e.status === 404 && /has 40 documents/.test(e.message)
  )

  const diff = await client.diff({ a: a.id, b: b.id, limit: 10 })
  assert.equal(diff.a.documents, spam.length)
  assert.equal(diff.b[0].documents, ham.length)
  assert.equal(diff.latents.length, 10)
  assert.ok(diff.tested > 10)
  for (let i = 1; i < diff.latents.length; i++) assert.ok(diff.latents[i - 1].difference >= diff.latents[i].difference)
  const top = diff.latents[0]
  assert.ok(top.difference > 0 && top.ci95[0] <= top.difference && top.difference <= top.ci95[1])
  assert.ok(
    top.frequencyA - top.frequencyB === top.difference ||
      Math.abs(top.frequencyA - top.frequencyB - top.difference) < 1e-12
  )
  assert.equal(top.against, b.id)
  assert.ok(top.pValue >= 0 && top.pValue <= 1 && top.qValue !== null && top.qValue >= top.pValue)
  // Counts must agree with the documents' own pooled latents.
  let present = 0
  for (let row = 0; row < spam.length; row++) {
    const d = await client.documents.get(a.id, row)
    if (d.latents.some(l => l.latent === top.latent)) present++
    // Each latent's frequency is the dataset's, as the diff counts it.
    const own = d.latents.find(l => l.latent === top.latent)
    if (own) assert.equal(own.frequency, top.frequencyA)
  }
  assert.equal(present, top.countA)
  assert.ok(doc.latents.every(l => l.frequency !== undefined && l.frequency > 0 && l.frequency <= 1))

  const forced = await client.diff({ a: a.id, b: b.id, limit: 1, latents: [7, 4000] })
  assert.deepEqual(
    forced.latents
      .slice(1)
      .map(l => l.latent)
      .sort((x, y) => x - y),
    [7, 4000]
  )

  const reversed = await client.diff({ a: a.id, b: b.id, limit: 5, direction: 'b' })
  assert.ok(reversed.latents[0].difference <= 0)

  const stratified = await client.diff({ a: a.id, b: b.id, controlLength: true, limit: 5 })
  assert.equal(stratified.design, 'length-stratified')
  assert.ok(stratified.latents.every(l => l.test === 'cmh'))

  // Different pooling means a different fingerprint: refused, never silently compared.
  const mean = await client.datasets.create({
    name: 'spam-mean',
    documents: spam.slice(0, 5),
    pooling: { method: 'mean' }
  })
  await client.datasets.waitUntilReady(mean.id, { timeoutMs: 120_000 })
  await assert.rejects(
    client.diff({ a: mean.id, b: b.id }),
    (e: LatentbaseError) =>
      e.status === 409 && e.code === 'encoder-mismatch' && e.message.includes(mean.id) && e.message.includes(b.id)
  )

  await client.datasets.delete(mean.id)
  await assert.rejects(client.datasets.get(mean.id), (e: LatentbaseError) => e.status === 404)
  const left = await readdir(join(dataDir, 'store', 'local', 'datasets')).catch(() => [] as string[])
  assert.ok(!left.includes(mean.id), 'the deleted dataset files are gone')
})

test('unreachable, malformed and wrongly-described sources fail the job with a reason', async () => {
  served.set('/bad.jsonl', { body: '{"text": "fine"}\nthis is not json\n' })
  served.set('/wrong-field.jsonl', {
    body: Array.from({ length: 30 }, (_, i) => JSON.stringify({ body: `message ${i}`, subject: 's' })).join('\n')
  })
  const gone = await client.datasets.create({ source: { url: `${filesUrl}/missing.jsonl` } })
  const wrong = await client.datasets.create({ source: { url: `${filesUrl}/wrong-field.jsonl` } })
  const refused = await client.datasets.create({ source: { url: 'http://127.0.0.1:1/data.jsonl' } })
  const partly = await client.datasets.create({ source: { url: `${filesUrl}/bad.jsonl` } })
  await assert.rejects(client.datasets.waitUntilReady(gone.id, { timeoutMs: 60_000 }), (e: DatasetFailedError) =>
    /404/.test(e.message)
  )
  await assert.rejects(
    client.datasets.waitUntilReady(wrong.id, { timeoutMs: 60_000 }),
    (e: DatasetFailedError) => /text/.test(e.message) && /body/.test(e.message)
  )
  await assert.rejects(
    client.datasets.waitUntilReady(refused.id, { timeoutMs: 60_000 }),
    (e: DatasetFailedError) => e.dataset.error!.code.length > 0
  )
  const ok = await client.datasets.waitUntilReady(partly.id, { timeoutMs: 60_000 })
  assert.equal(ok.stats!.documents, 1)
  assert.equal(
    Object.values(ok.stats!.skipped).reduce((s, n) => s + n, 0),
    1
  )
  const health = await raw('/health')
  assert.equal(health.status, 200, 'the server keeps serving')
})

test('a webhook receiver on loopback gets a correctly signed dataset.ready', async () => {
  const received: Array<{ headers: Record<string, string>; body: string }> = []
  let failFirst = true
  const receiver = createServer((req, res) => {
    let body = ''
    req.on('data', c => {
      body += c
    })
    req.on('end', () => {
      if (failFirst) {
        failFirst = false
        res.writeHead(503).end()
        return
      }
      received.push({ headers: req.headers as Record<string, string>, body })
      res.writeHead(204).end()
    })
  })
  await new Promise<void>(ok => receiver.listen(0, '127.0.0.1', ok))
  const url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`
  const created = await client.datasets.create({ documents: ham.slice(0, 3), webhook: { url } })
  assert.match(created.webhookSecret ?? '', /^whsec_/)
  await client.datasets.waitUntilReady(created.id, { timeoutMs: 120_000 })
  const deadline = Date.now() + 30_000
  while (received.length === 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 100))
  receiver.close()
  assert.equal(received.length, 1, 'delivered once after one failed attempt')
  const event = await verifyWebhook(created.webhookSecret!, received[0].headers, received[0].body)
  assert.equal(event.type, 'dataset.ready')
  assert.equal(event.data.id, created.id)
  await assert.rejects(
    verifyWebhook(created.webhookSecret!, received[0].headers, received[0].body.replace('ready', 'Ready'))
  )
})

test('pairBy matches documents by a metadata field and uses McNemar on the pairs', async () => {
  const prompts = ham.slice(0, 10)
  const a = await client.datasets.create({
    documents: prompts.map((d, i) => ({ text: d.text, metadata: { prompt: `p${i}` } }))
  })
  const b = await client.datasets.create({
    documents: [
      ...spam.slice(0, 10).map((d, i) => ({ text: d.text, metadata: { prompt: `p${9 - i}` } })),
      { text: 'unmatched', metadata: { prompt: 'other' } }
    ]
  })
  await client.datasets.waitUntilReady(a.id, { timeoutMs: 120_000 })
  await client.datasets.waitUntilReady(b.id, { timeoutMs: 120_000 })
  const paired = await client.diff({ a: a.id, b: b.id, pairBy: 'prompt', limit: 5 })
  assert.equal(paired.design, 'paired')
  assert.equal(paired.pairs, 10)
  assert.ok(paired.latents.every(l => l.test === 'mcnemar'))
  await assert.rejects(
    client.diff({ a: a.id, b: b.id, pairBy: 'nothing' }),
    (e: LatentbaseError) => e.status === 422 && /metadataFields/.test(e.message)
  )
})

test('a server stopped mid-job picks the job up again after a restart, and nothing is lost', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'latentbase-restart-'))
  const docs = emails
    .filter(e => e.group === 'easy-ham-2')
    .slice(0, 96)
    .map(e => ({ id: e.id, text: e.text.slice(0, 1200) }))
  const encodeOptions = { chunkDocuments: 8, progressIntervalMs: 0, topExamplesPerLatent: 1 }
  const first = await startLocal({ dataDir: dir, port: 0, encoders, log: () => {}, encodeOptions })
  const c1 = createClient({ baseUrl: first.url })
  const created = await c1.datasets.create({ documents: docs })
  for (
    let d = await c1.datasets.get(created.id);
    d.progress.documents.done < 8;
    d = await c1.datasets.get(created.id)
  ) {
    assert.notEqual(d.status, 'ready', 'the job must still be running when the server stops')
    await new Promise(r => setTimeout(r, 20))
  }
  await first.close()
  const second = await startLocal({ dataDir: dir, port: 0, encoders, log: () => {}, encodeOptions })
  try {
    const c2 = createClient({ baseUrl: second.url, poll: { maxIntervalMs: 1000 } })
    const ready = await c2.datasets.waitUntilReady(created.id, { timeoutMs: 180_000, intervalMs: 200 })
    assert.equal(ready.stats!.documents, docs.length)
    assert.deepEqual(
      ready.stats!.parts,
      { count: 1, redelivered: 1 },
      'the part cut off by the stop was finished by its redelivery'
    )
    const last = await c2.documents.get(created.id, docs.length - 1)
    assert.equal(last.id, docs.at(-1)!.id)
  } finally {
    await second.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('the analyses answer on an encoded dataset through the SDK: latent page, search, correlations, clusters', async () => {
  // The demo encoder's label embeddings were written at start-up, before any search asked for them.
  const [warmed] = await server.labelsWarmed
  assert.equal(warmed.outcome, 'embedded')
  assert.ok(warmed.labels > 1000, `${warmed.labels} labels`)
  const key = labelEmbeddingsKey(encoders.get(warmed.encoder)!.info.fingerprint, new OfflineEmbedder().id)
  const header = await new FsObjectStore(join(dataDir, 'store')).get(key.replace(/\.bin$/, '.json'))
  assert.equal(JSON.parse(new TextDecoder().decode(header!)).count, encoders.get(warmed.encoder)!.info.dSae)
  const d = await client.datasets.create({ documents: [...ham.slice(0, 15), ...spam.slice(0, 15)] })
  await client.datasets.waitUntilReady(d.id, { timeoutMs: 120_000 })
  const doc = await client.documents.get(d.id, 0)
  const page = await client.latents.get(d.id, doc.latents[0].latent)
  assert.equal(page.latent, doc.latents[0].latent)
  assert.ok(page.topExamples.length > 0 && page.topExamples[0].tokens.length === page.topExamples[0].activations.length)
  const found = await client.search({ dataset: d.id, q: 'unsubscribe', method: 'bm25', limit: 5 })
  assert.ok(found.results.length > 0)
  const bySae = await client.search({ dataset: d.id, q: 'money', method: 'sae', limit: 5 })
  assert.ok(bySae.latents.length > 0)
  const pairs = await client.correlations({ dataset: d.id, minCount: 2, limit: 5 })
  assert.equal(pairs.documents, 30)
  const clusters = await client.clusters({ dataset: d.id, k: 2, seed: 1 })
  assert.equal(clusters.assignments.length, 30)
  const again = await client.clusters({ dataset: d.id, k: 2, seed: 1 })
  assert.deepEqual(again.assignments, clusters.assignments, 'same seed, same clusters')
})

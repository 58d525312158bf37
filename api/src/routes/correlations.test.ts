/** @module Tests of GET /correlations over a store written in the test: a planted pair, label-similarity and adjacency filters, errors. */
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { STORE_VERSION, type Manifest } from '@latentbase/shared/contract/manifest'
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import { CorrelationsQuery, CorrelationsResult } from '@latentbase/shared/contract/correlations'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import { StaticEncoderCatalog } from '@latentbase/shared/catalog/catalog'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { writeDocumentsShard } from '@latentbase/shared/store/documents/write'
import { writeLatentShards } from '@latentbase/shared/store/latent-shards/write'
import { HISTOGRAM_EDGES, statsFromCsr } from '@latentbase/shared/analysis/latent-stats'
import { writeLatentStats } from '@latentbase/shared/store/stats/write'
import { csrFromCoo } from '@latentbase/shared/analysis/sparse'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { analysesClient, type Call } from '@latentbase/sdk/analyses'
import { createApp } from '../app.ts'
import { computeCorrelations } from '../services/correlations-service.ts'
import type { AnalysisContext } from '../services/context.ts'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const TENANT = 'local'
const N_LATENTS = 300
const N_DOCS = 3000
// Planted: X and Y together in 30 documents; S1 and S2 together in 30 others but labelled alike; P and Q together in
// 30 more, always peaking on neighbouring tokens.
const X = 201,
  Y = 17,
  S1 = 50,
  S2 = 250,
  P = 90,
  Q = 91

/** Bag-of-words embedding over hashed word buckets: labels sharing their words have cosine near 1, others near 0. */
const embedCalls: string[][] = []
const embedder: Embedder = {
  id: 'test-bag-of-words',
  dimensions: 64,
  async embed(texts) {
    embedCalls.push(texts)
    const out = new Float32Array(texts.length * 64)
    texts.forEach((t, i) => {
      for (const w of t.toLowerCase().split(/\W+/).filter(Boolean)) {
        let h = 7
        for (const ch of w) h = (h * 31 + ch.charCodeAt(0)) >>> 0
        out[i * 64 + (h % 64)] += 1
      }
      let norm = 0
      for (let j = 0; j < 64; j++) norm += out[i * 64 + j] ** 2
      for (let j = 0; j < 64; j++) out[i * 64 + j] /= Math.sqrt(norm) || 1
    })
    return out
  }
}

const labels = Array.from({ length: N_LATENTS }, (_, l) => `latent number ${l} word${l}`)
labels[X] = 'questions about tax returns'
labels[Y] = 'greeting at the start of a letter'
labels[S1] = 'mentions of the ocean'
labels[S2] = 'the ocean mentioned'
labels[P] = 'the token New'
labels[Q] = 'the token York'
const encoders = new StaticEncoderCatalog([
  {
    info: {
      id: 'syn',
      fingerprint: 'syn',
      hookName: 'blocks.0.hook_resid_post',
      dIn: 8,
      dSae: N_LATENTS,
      architecture: 'topk',
      maxTokens: 512,
      labelled: N_LATENTS
    },
    labels
  }
])

let objects: MemoryObjectStore
let datasets: DatasetStore
let planted: Record<string, Set<number>>

function rand32(seed: number) {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = Math.imul(s ^ (s >>> 15), s | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

async function writeDataset(id: string, status: 'ready' | 'running' = 'ready') {
  const rand = rand32(5)
  const d: number[] = [],
    l: number[] = [],
    v: number[] = [],
    p: number[] = []
  const pick = (n: number, taken: Set<number>) => {
    const s = new Set<number>()
    while (s.size < n) {
      const x = Math.floor(rand() * N_DOCS)
      if (!taken.has(x)) {
        s.add(x)
        taken.add(x)
      }
    }
    return s
  }
  const taken = new Set<number>()
  planted = { xy: pick(30, taken), s: pick(30, taken), pq: pick(30, taken) }
  const special = new Set([X, Y, S1, S2, P, Q])
  for (let i = 0; i < N_DOCS; i++) {
    const row = new Map<number, number>()
    // Zipf-like background over the other latents, positions spread over 200 tokens.
    for (let j = 0; j < N_LATENTS; j++)
      if (!special.has(j) && rand() < 0.5 / (1 + j) ** 0.7) row.set(j, Math.floor(rand() * 200))
    // Planted content sits wherever the document puts it: positions vary (a fixed one would make the latent positional).
    if (planted.xy.has(i)) {
      row.set(X, 10 + (i % 37))
      row.set(Y, 150 + (i % 41))
    }
    if (planted.s.has(i)) {
      row.set(S1, 20 + (i % 29))
      row.set(S2, 120 + (i % 31))
    }
    if (planted.pq.has(i)) {
      const at = Math.floor(rand() * 190)
      row.set(P, at)
      row.set(Q, at + 1)
    }
    for (const [latent, pos] of row) {
      d.push(i)
      l.push(latent)
      v.push(planted.xy.has(i) && (latent === X || latent === Y) ? 5 : 0.5 + rand())
      p.push(pos)
    }
  }
  // Each planted latent also fires alone in a few documents.
  for (const latent of special)
    for (let t = 0; t < 4; t++) {
      const i = Math.floor(rand() * N_DOCS)
      if (!taken.has(i)) {
        d.push(i)
        l.push(latent)
        v.push(1)
        p.push(5)
      }
    }
  const csr = csrFromCoo(N_DOCS, N_LATENTS, d, l, v, p)
  const prefix = layout.datasetPrefix(TENANT, id)
  const shards = writeLatentShards(csr, { rowGroupRows: 1000 })
  const docs = writeDocumentsShard({
    row: Int32Array.from({ length: N_DOCS }, (_, i) => i),
    id: Array.from({ length: N_DOCS }, (_, i) => `doc-${i}`),
    text: Array.from({ length: N_DOCS }, (_, i) => `document ${i}`),
    metadata: Array.from({ length: N_DOCS }, () => '{}'),
    token_count: new Int32Array(N_DOCS).fill(200),
    truncated: new Uint8Array(N_DOCS),
    masked_tokens: new Int32Array(N_DOCS)
  })
  await objects.put(prefix + layout.documentsShard(0), docs.bytes)
  await objects.put(prefix + layout.byDocumentShard(0), shards.byDocument.bytes)
  await objects.put(prefix + layout.byLatentShard(0), shards.byLatent.bytes)
  await objects.put(prefix + layout.latentStats(), writeLatentStats(statsFromCsr(csr)))
  const at = new Date(0).toISOString()
  const record: DatasetRecord = {
    id,
    tenant: TENANT,
    name: id,
    status,
    encoder: 'syn',
    pooling: { method: 'max', outlierNormRatio: 100 },
    source: { inline: N_DOCS },
    createdAt: at,
    updatedAt: at,
    progress: { documents: { done: N_DOCS, total: N_DOCS }, tokens: N_DOCS * 200 },
    attempts: 1
  }
  await datasets.putRecord(record)
  if (status !== 'ready') return
  const manifest: Manifest = {
    storeVersion: STORE_VERSION,
    datasetId: id,
    tenant: TENANT,
    createdAt: at,
    encoder: { id: 'syn', hookName: 'blocks.0.hook_resid_post', dSae: N_LATENTS, architecture: 'topk' },
    encoderFingerprint: 'syn',
    pooling: { method: 'max', outlierNormRatio: 100 },
    maxTokens: 512,
    longDocuments: 'truncate',
    documents: { count: N_DOCS, tokens: N_DOCS * 200, files: [{ key: layout.documentsShard(0), ...docs.file }] },
    latents: {
      nnz: csr.latents.length,
      byDocument: [{ key: layout.byDocumentShard(0), ...shards.byDocument.file }],
      byLatent: [{ key: layout.byLatentShard(0), ...shards.byLatent.file }]
    },
    stats: { key: layout.latentStats(), histogramEdges: Array.from(HISTOGRAM_EDGES) },
    summary: {}
  }
  await datasets.commitManifest(TENANT, id, manifest)
}

function app() {
  const deps = {
    objects,
    datasets,
    encoders,
    embedder,
    mode: 'local' as const,
    tenantOf: () => TENANT,
    queue: new EmbeddedQueue<JobMessage>(join(mkdtempSync(join(tmpdir(), 'lb-corr-')), 'queue'))
  }
  return createApp(deps)
}

async function get(path: string) {
  const res = await app().request(path)
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as any }
}

before(async () => {
  objects = new MemoryObjectStore()
  datasets = new DatasetStore(objects)
  await writeDataset('ds_corr')
  await writeDataset('ds_busy', 'running')
})

const key = (p: { a: { latent: number }; b: { latent: number } }) =>
  [p.a.latent, p.b.latent].sort((x, y) => x - y).join('-')

test('the planted pair comes out on top, with labels, links, frequencies and conditional probabilities', async () => {
  const { status, body } = await get('/correlations?dataset=ds_corr&limit=5')
  assert.equal(status, 200)
  const result = CorrelationsResult.parse(body)
  assert.equal(result.documents, N_DOCS)
  assert.equal(key(result.pairs[0]), [Y, X].join('-'))
  const top = result.pairs[0]
  assert.equal(top.count, 30)
  assert.ok(top.npmi > 0.8)
  const [a, b] = top.a.latent === Y ? [top.a, top.b] : [top.b, top.a]
  assert.equal(a.label, labels[Y])
  assert.equal(b.href, `/latents/${X}?dataset=ds_corr`)
  assert.ok(a.documents >= 30 && a.documents <= 34)
  assert.ok(Math.abs(a.frequency - a.documents / N_DOCS) < 1e-12)
  assert.ok(Math.abs(top.pAGivenB - 30 / top.b.documents) < 1e-12)
  assert.ok(Math.abs(top.pBGivenA - 30 / top.a.documents) < 1e-12)
  assert.equal(top.adjacentShare, 0)
  assert.ok(top.labelSimilarity !== null && top.labelSimilarity < 0.2)
  for (let i = 1; i < result.pairs.length; i++) assert.ok(result.pairs[i].npmi <= result.pairs[i - 1].npmi)
  const keys = result.pairs.map(key)
  assert.ok(!keys.includes([S1, S2].join('-')), 'pairs whose labels say the same thing are dropped')
  assert.ok(!keys.includes([P, Q].join('-')), 'pairs peaking on adjacent tokens are dropped')
  assert.ok(result.dropped.similarLabels >= 1)
  assert.ok(result.dropped.adjacent >= 1)
  assert.equal(result.embedder, 'test-bag-of-words')
  assert.ok(embedCalls.flat().length < 200, 'only the labels of examined pairs are embedded')
})

test('with the filters off, the dropped pairs come back, flagged', async () => {
  const before = embedCalls.length
  const { body } = await get('/correlations?dataset=ds_corr&limit=10&maxLabelSimilarity=1&dropAdjacent=false')
  const result = CorrelationsResult.parse(body)
  assert.equal(embedCalls.length, before, 'no embedding when the label filter is off')
  assert.equal(result.embedder, null)
  const byKey = new Map(result.pairs.map(p => [key(p), p]))
  const same = byKey.get([S1, S2].join('-'))!
  const near = byKey.get([P, Q].join('-'))!
  assert.ok(same && near)
  assert.equal(same.labelSimilarity, null)
  assert.ok(near.adjacentShare >= 30 / 34 && near.adjacentShare <= 1)
  assert.equal(result.dropped.adjacent, 0)
})

test('thresholds narrow the list', async () => {
  const loose = CorrelationsResult.parse(
    (await get('/correlations?dataset=ds_corr&limit=500&minNpmi=0.1&minCount=5')).body
  )
  const strict = CorrelationsResult.parse(
    (await get('/correlations?dataset=ds_corr&limit=500&minNpmi=0.1&minCount=31')).body
  )
  assert.ok(loose.pairs.length > strict.pairs.length)
  assert.ok(strict.pairs.every(p => p.count >= 31))
  assert.ok(loose.pairs.every(p => p.npmi >= 0.1 && p.count >= 5))
  const narrow = CorrelationsResult.parse((await get('/correlations?dataset=ds_corr&minFrequency=0.02')).body)
  assert.ok(narrow.latentsConsidered < loose.latentsConsidered)
  assert.ok(narrow.pairs.every(p => p.a.frequency >= 0.02 && p.b.frequency >= 0.02))
  assert.ok(!narrow.pairs.some(p => key(p) === [Y, X].join('-')), 'the planted latents (1%) are below minFrequency 2%')
})

test('the service reports progress and gives the same answer as the route', async () => {
  const phases: Array<[number, string]> = []
  const ctx: AnalysisContext = { objects, datasets, encoders, embedder, tenant: TENANT }
  const direct = await computeCorrelations(
    ctx,
    CorrelationsQuery.parse({ dataset: 'ds_corr', limit: '5' }),
    (f, phase) => phases.push([f, phase])
  )
  const routed = CorrelationsResult.parse((await get('/correlations?dataset=ds_corr&limit=5')).body)
  assert.deepEqual(direct.pairs, routed.pairs)
  const sliced = await computeCorrelations(
    ctx,
    CorrelationsQuery.parse({ dataset: 'ds_corr', limit: '5' }),
    undefined,
    { sliceEntries: 1000 }
  )
  assert.deepEqual(sliced.pairs, direct.pairs, 'reading the shards in slices of ~100 documents changes nothing')
  assert.equal(sliced.pairsCounted, direct.pairsCounted)
  assert.equal(phases[phases.length - 1][0], 1)
  for (let i = 1; i < phases.length; i++) assert.ok(phases[i][0] >= phases[i - 1][0], 'progress never goes back')
})

test("minActivation: presence at a share of each latent's max drops weak firings; 0 is the paper's value > 0", async () => {
  const key = (p: { a: { latent: number }; b: { latent: number } }) =>
    [p.a.latent, p.b.latent].sort((x, y) => x - y).join('-')
  const xy = [X, Y].sort((x, y) => x - y).join('-')
  const strict = CorrelationsResult.parse(
    (await get('/correlations?dataset=ds_corr&limit=50&maxLabelSimilarity=1')).body
  )
  const paper = CorrelationsResult.parse(
    (await get('/correlations?dataset=ds_corr&limit=50&maxLabelSimilarity=1&minActivation=0')).body
  )
  const s = strict.pairs.find(p => key(p) === xy)!
  const p = paper.pairs.find(p => key(p) === xy)!
  assert.ok(s && p, 'the planted pair is found either way')
  // X and Y fire at 5 in the planted documents and at 1 alone elsewhere: half their 16th strongest value (2.5) leaves only the planted ones.
  assert.equal(s.count, planted.xy.size)
  assert.equal(s.a.documents, planted.xy.size)
  assert.equal(s.pAGivenB, 1)
  assert.ok(p.a.documents > planted.xy.size && p.pAGivenB < 1, 'value > 0 also counts the weak lone firings')
  assert.ok(s.npmi > p.npmi)
  const bad = await get('/correlations?dataset=ds_corr&minActivation=2')
  assert.equal(bad.status, 400)
})

test('errors: unknown or unready dataset, bad parameters', async () => {
  const missing = await get('/correlations?dataset=nope')
  assert.equal(missing.status, 404)
  assert.equal(missing.type, 'application/problem+json')
  assert.equal(missing.body.code, 'dataset-not-found')
  const busy = await get('/correlations?dataset=ds_busy')
  assert.equal(busy.status, 409)
  const bad = await get('/correlations?dataset=ds_corr&minFrequency=0.6&maxFrequency=0.5')
  assert.equal(bad.status, 400)
  assert.match(bad.body.detail, /minFrequency/)
  const noDataset = await get('/correlations')
  assert.equal(noDataset.status, 400)
  assert.match(noDataset.body.detail, /dataset/)
})

test('the SDK method asks the same question and parses the answer', async () => {
  const paths: string[] = []
  const a = app()
  const call: Call = async (schema, method, path) => {
    paths.push(path)
    const res = await a.request(path, { method })
    if (!res.ok) throw new Error(`${res.status}`)
    return schema ? schema.parse(await res.json()) : (undefined as never)
  }
  const { correlations } = analysesClient(call)
  const viaSdk = await correlations({ dataset: 'ds_corr', limit: 3, dropAdjacent: false, maxLabelSimilarity: 1 })
  assert.equal(paths[0], '/correlations?dataset=ds_corr&limit=3&dropAdjacent=false&maxLabelSimilarity=1')
  const direct = CorrelationsResult.parse(
    (await get('/correlations?dataset=ds_corr&limit=3&dropAdjacent=false&maxLabelSimilarity=1')).body
  )
  assert.deepEqual(viaSdk.pairs, direct.pairs)
})

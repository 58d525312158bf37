/** @module Tests of GET /search over a small hand-made store: sae, explicit latents, bm25, hybrid and the problems. */
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { writeDocumentsShard } from '@latentbase/shared/store/documents/write'
import { writeLatentShards } from '@latentbase/shared/store/latent-shards/write'
import { statsFromCsr, quantile, HISTOGRAM_EDGES } from '@latentbase/shared/analysis/latent-stats'
import { writeLatentStats } from '@latentbase/shared/store/stats/write'
import { csrFromCoo } from '@latentbase/shared/analysis/sparse'
import { StaticEncoderCatalog } from '@latentbase/shared/catalog/catalog'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import { SearchResult } from '@latentbase/shared/contract/search'
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import type { Manifest } from '@latentbase/shared/contract/manifest'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { createApp } from '../app.ts'
import { bm25SidecarKey } from '@latentbase/shared/store/documents/bm25-sidecar'
import { OFFLINE_EMBEDDER_ID } from '@latentbase/shared/embeddings/offline'

const TENANT = 'local'
const N_LATENTS = 16
const N_DOCS = 60
// Three planted properties: rows 0-19 whales (latent 3), 20-39 email addresses (latent 5), 40-59 prices (latent 9);
// latent 1 fires everywhere; row 10 also carries a weak latent 5.
const labels: (string | null)[] = Array.from({ length: N_LATENTS }, (_, i) => (i % 4 === 2 ? null : `token "zq${i}x"`))
labels[1] = 'token " the"'
labels[3] = 'whales and whaling ships at sea'
labels[5] = 'email addresses with @'
labels[9] = 'prices in dollars and money'
const texts = Array.from({ length: N_DOCS }, (_, i) =>
  i < 20
    ? `Entry ${i}. The great whale rose beside the ship; ${'the crew watched the sea. '.repeat((i % 5) + 1)}`
    : i < 40
      ? `Entry ${i}. Please write to the list at person${i}@example.org for the minutes.`
      : `Entry ${i}. Save money: the price is only $${i}.99 this week, the offer ends soon.`
)

let store: MemoryObjectStore
let app: ReturnType<typeof createApp>
let whaleP90 = 0
let whaleValues: number[] = []

async function commit(datasets: DatasetStore, id: string, status: DatasetRecord['status'], bm25 = false) {
  const docs: number[] = []
  const lats: number[] = []
  const vals: number[] = []
  const put = (d: number, l: number, v: number) => {
    docs.push(d)
    lats.push(l)
    vals.push(v)
  }
  for (let i = 0; i < N_DOCS; i++) {
    put(i, 1, 0.5)
    if (i < 20) put(i, 3, 1 + i * 0.25)
    else if (i < 40) put(i, 5, 2 + (i % 7))
    else put(i, 9, 3 + (i % 5))
  }
  put(10, 5, 0.1)
  const csr = csrFromCoo(N_DOCS, N_LATENTS, docs, lats, vals)
  const prefix = layout.datasetPrefix(TENANT, id)
  const shards = writeLatentShards(csr, { rowGroupRows: 16 })
  const docShard = writeDocumentsShard(
    {
      row: Int32Array.from({ length: N_DOCS }, (_, i) => i),
      id: texts.map((_, i) => `doc-${i}`),
      text: texts,
      metadata: texts.map(() => '{}'),
      token_count: texts.map(t => t.length),
      truncated: texts.map(() => 0),
      masked_tokens: texts.map(() => 0)
    },
    { rowGroupBytes: 1000, bm25 }
  ) // several row groups: the BM25 index is built one group at a time
  assert.ok(docShard.file.rowGroups.length > 1)
  const stats = statsFromCsr(csr)
  await store.put(prefix + 'latents/by-document/part-00000.parquet', shards.byDocument.bytes)
  await store.put(prefix + 'latents/by-latent/part-00000.parquet', shards.byLatent.bytes)
  await store.put(prefix + 'latents/by-latent/part-00000.csc', shards.byLatent.csc!)
  await store.put(prefix + 'documents/part-00000.parquet', docShard.bytes)
  if (docShard.bm25) await store.put(prefix + bm25SidecarKey('documents/part-00000.parquet'), docShard.bm25)
  await store.put(prefix + layout.latentStats(), writeLatentStats(stats))
  const now = '2026-01-01T00:00:00.000Z'
  const record: DatasetRecord = {
    id,
    tenant: TENANT,
    name: id,
    status,
    encoder: 'syn',
    pooling: { method: 'max', outlierNormRatio: 100 },
    source: { inline: N_DOCS },
    createdAt: now,
    updatedAt: now,
    progress: { documents: { done: N_DOCS, total: N_DOCS }, tokens: 0 },
    attempts: 1
  }
  await datasets.putRecord(record)
  if (status !== 'ready') return stats
  const manifest: Manifest = {
    storeVersion: 1,
    datasetId: id,
    tenant: TENANT,
    createdAt: now,
    encoder: { id: 'syn', hookName: 'h', dSae: N_LATENTS, architecture: 'topk' },
    encoderFingerprint: 'fp-syn',
    pooling: { method: 'max', outlierNormRatio: 100 },
    maxTokens: 512,
    longDocuments: 'truncate',
    documents: { count: N_DOCS, tokens: 0, files: [{ key: 'documents/part-00000.parquet', ...docShard.file }] },
    latents: {
      nnz: csr.latents.length,
      byDocument: [{ key: 'latents/by-document/part-00000.parquet', ...shards.byDocument.file }],
      byLatent: [{ key: 'latents/by-latent/part-00000.parquet', ...shards.byLatent.file }]
    },
    stats: { key: layout.latentStats(), histogramEdges: Array.from(HISTOGRAM_EDGES) },
    summary: {}
  }
  await datasets.commitManifest(TENANT, id, manifest)
  return stats
}

before(async () => {
  store = new MemoryObjectStore()
  const datasets = new DatasetStore(store)
  const stats = await commit(datasets, 'mixed', 'ready')
  await commit(datasets, 'indexed', 'ready', true)
  await commit(datasets, 'pending', 'running')
  whaleP90 = quantile(stats, 3, 0.9)
  whaleValues = Array.from({ length: 20 }, (_, i) => 1 + i * 0.25)
  const encoders = new StaticEncoderCatalog([
    {
      info: {
        id: 'syn',
        fingerprint: 'base-fp',
        hookName: 'h',
        dIn: 8,
        dSae: N_LATENTS,
        architecture: 'topk',
        maxTokens: 512,
        labelled: 13
      },
      labels
    }
  ])
  const deps = {
    objects: store,
    datasets,
    queue: {} as JobQueue<JobMessage>,
    encoders,
    mode: 'local' as const,
    tenantOf: () => TENANT
  }
  app = createApp({ ...deps, embedder: new OfflineEmbedder() })
})

async function get(query: string) {
  const res = await app.request(`/search?${query}`)
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    body: (await res.json()) as Record<string, unknown>
  }
}

test('sae: the latent whose label matches the query ranks the planted documents first, scored value / p90', async () => {
  const { status, body } = await get('dataset=mixed&q=whaling+ships&limit=30&k=3')
  assert.equal(status, 200)
  const r = SearchResult.parse(body)
  assert.equal(r.method, 'sae')
  assert.equal(r.embedder, OFFLINE_EMBEDDER_ID)
  assert.equal(r.latents[0].latent, 3)
  assert.equal(r.latents[0].label, labels[3])
  assert.equal(r.latents[0].weight, 1)
  // k 3, T 0.2: weights 1, 0.19, 0.036; the last is under MIN_RANK_WEIGHT (0.1), so it is neither read nor listed.
  assert.ok(
    r.latents.length === 2 && r.latents[1].weight < 1 && r.latents.every(l => l.label !== null && l.weight >= 0.1),
    JSON.stringify(r.latents)
  )
  const wide = SearchResult.parse((await get('dataset=mixed&q=whaling+ships&limit=30&k=3&temperature=1')).body)
  assert.equal(wide.latents.length, 3, 'T 1: all three weigh >= 0.1 (1, 0.72, 0.51)')
  assert.ok(
    r.results.slice(0, 10).every(h => h.row < 20),
    'the strongest whale documents come first'
  )
  assert.equal(r.results[0].id, 'doc-19')
  assert.ok(r.results[0].snippet.startsWith('Entry 19.'))
  for (let i = 1; i < r.results.length; i++) assert.ok(r.results[i - 1].score >= r.results[i].score)
  assert.ok(
    await store.head(`_encoders/base-fp/label-embeddings/${OFFLINE_EMBEDDER_ID}.bin`),
    'label embeddings cached under the encoder'
  )

  const one = SearchResult.parse((await get('dataset=mixed&q=whaling+ships&limit=30&k=1')).body)
  assert.deepEqual(
    one.latents.map(l => l.latent),
    [3]
  )
  assert.equal(one.matched, 20)
  assert.deepEqual(
    one.results.map(h => h.row),
    Array.from({ length: 20 }, (_, i) => 19 - i)
  )
  one.results.forEach(h => {
    assert.ok(Math.abs(h.score - whaleValues[h.row] / whaleP90) < 1e-5, `row ${h.row}: ${h.score}`)
    // Why it matched: the one latent, its value in the document, the whole score.
    assert.deepEqual(h.latents, [{ latent: 3, value: whaleValues[h.row], share: 1 }])
  })
  // Two latents: each hit lists those it has, largest part first, shares adding up to at most 1.
  for (const h of r.results) {
    assert.ok(h.latents && h.latents.length >= 1, `row ${h.row}`)
    assert.ok(h.latents.every(l => r.latents.some(x => x.latent === l.latent) && l.value > 0))
    const sum = h.latents.reduce((s, l) => s + l.share, 0)
    assert.ok(sum <= 1 + 1e-3 && sum > 0)
    for (let i = 1; i < h.latents.length; i++) assert.ok(h.latents[i - 1].share >= h.latents[i].share)
  }
  assert.ok(Math.abs(one.latents[0].p90 - whaleP90) < 1e-5)
})

test("hits carry their own ids and texts before and after the dataset's ids are held in memory", async () => {
  const check = (r: SearchResult) => {
    assert.ok(r.results.length > 5)
    for (const h of r.results) {
      assert.equal(h.id, `doc-${h.row}`)
      assert.ok(h.snippet.startsWith(`Entry ${h.row}.`), h.snippet)
    }
  }
  const first = SearchResult.parse((await get('dataset=mixed&q=price+offer&method=bm25&limit=12')).body)
  check(first)
  await new Promise(resolve => setTimeout(resolve, 50)) // the background read of every id
  for (const q of [
    'method=bm25&q=price+offer',
    'method=bm25&q=minutes+list',
    'q=whaling+ships',
    'method=hybrid&q=email+addresses'
  ]) {
    const r = SearchResult.parse((await get(`dataset=mixed&${q}&limit=12`)).body)
    check(r)
    if (q.includes('price')) assert.deepEqual(r.results, first.results)
  }
})

test("bm25 and hybrid from the documents shard's BM25 sidecar answer exactly as from the texts, reading the sidecar", async () => {
  const read: string[] = []
  const getRange = store.getRange.bind(store)
  store.getRange = async (key, start, end) => {
    read.push(key)
    return getRange(key, start, end)
  }
  try {
    for (const q of [
      'method=bm25&q=price+offer',
      'method=bm25&q=whale+sea+minutes',
      'method=hybrid&q=email+addresses'
    ]) {
      const fromTexts = SearchResult.parse((await get(`dataset=mixed&${q}&limit=20`)).body)
      const fromSidecar = SearchResult.parse((await get(`dataset=indexed&${q}&limit=20`)).body)
      assert.ok(fromSidecar.results.length > 3, q)
      assert.deepEqual({ ...fromSidecar, dataset: 'mixed' }, fromTexts, q)
    }
  } finally {
    store.getRange = getRange
  }
  assert.ok(
    read.some(k => k.endsWith('/documents/part-00000.bm25')),
    'the sidecar was read'
  )
  // A sidecar gone missing: the texts answer, the same.
  await store.delete(`${layout.datasetPrefix(TENANT, 'indexed')}${bm25SidecarKey('documents/part-00000.parquet')}`)
  const q = 'method=bm25&q=whale+ship&limit=20'
  const warnings: string[] = []
  const warn = console.warn
  console.warn = (line: string) => warnings.push(line)
  try {
    const fallback = SearchResult.parse((await get(`dataset=indexed&${q}`)).body)
    assert.deepEqual({ ...fallback, dataset: 'mixed' }, SearchResult.parse((await get(`dataset=mixed&${q}`)).body))
    await get(`dataset=indexed&method=bm25&q=crew+minutes`)
  } finally {
    console.warn = warn
  }
  assert.equal(warnings.length, 1, 'said once')
  assert.match(warnings[0], /BM25 sidecars of .*indexed.* unreadable .*indexing the texts instead/)
})

test('latents=: an explicit query, weighted in the order given', async () => {
  const r = SearchResult.parse((await get('dataset=mixed&latents=9,5&limit=60')).body)
  assert.equal(r.embedder, null)
  assert.deepEqual(
    r.latents.map(l => [l.latent, l.similarity]),
    [
      [9, null],
      [5, null]
    ]
  )
  assert.ok(Math.abs(r.latents[1].weight - Math.exp(-(1 / 2) / 0.2)) < 1e-6)
  assert.equal(r.matched, 41, 'rows 20-59 and row 10')
  const firstTwenty = new Set(r.results.slice(0, 20).map(h => h.row))
  for (let i = 40; i < 60; i++) assert.ok(firstTwenty.has(i), `price row ${i} ranks above the email rows`)
  assert.equal(r.results.at(-1)!.row, 10, 'the weak latent-5 row last')
})

test('bm25 ranks by the text and centres the snippet on the query word; hybrid fuses both', async () => {
  const r = SearchResult.parse((await get('dataset=mixed&q=money+offer&method=bm25&limit=5')).body)
  assert.equal(r.latents.length, 0)
  assert.equal(r.matched, 20)
  assert.ok(r.results.every(h => h.row >= 40 && h.snippet.includes('money')))
  const h = SearchResult.parse((await get('dataset=mixed&q=whale&method=hybrid&limit=10')).body)
  assert.ok(
    h.results.every(x => x.row < 20),
    JSON.stringify(h.results.map(x => x.row))
  )
  assert.ok(h.results[0].score <= 2 / 61 + 1e-6, 'fused scores are reciprocal ranks')
})

test('problems: no q nor latents, unknown or unready dataset, latent out of range, bm25 without q', async () => {
  const cases: Array<[string, number, string]> = [
    ['dataset=mixed', 400, 'invalid-request'],
    ['q=whale', 400, 'invalid-request'],
    ['dataset=nope&q=whale', 404, 'dataset-not-found'],
    ['dataset=pending&q=whale', 409, 'dataset-not-ready'],
    ['dataset=mixed&latents=3,99', 400, 'invalid-request'],
    ['dataset=mixed&latents=3,x', 400, 'invalid-request'],
    ['dataset=mixed&latents=3&method=bm25', 400, 'invalid-request'],
    ['dataset=mixed&q=whale&temperature=0', 400, 'invalid-request']
  ]
  for (const [query, status, code] of cases) {
    const r = await get(query)
    assert.equal(r.status, status, query)
    assert.equal(r.type, 'application/problem+json', query)
    assert.equal(r.body.code, code, query)
  }
})

test('a failing embeddings endpoint is a 503 that points to bm25 and latents=', async () => {
  const datasets = new DatasetStore(store)
  const broken = createApp({
    objects: store,
    datasets,
    queue: {} as JobQueue<JobMessage>,
    encoders: new StaticEncoderCatalog([
      {
        info: {
          id: 'syn',
          fingerprint: 'other-fp',
          hookName: 'h',
          dIn: 8,
          dSae: N_LATENTS,
          architecture: 'topk',
          maxTokens: 512,
          labelled: 13
        },
        labels
      }
    ]),
    mode: 'local',
    tenantOf: () => TENANT,
    embedder: {
      id: 'down',
      dimensions: 8,
      embed: async () => {
        throw new Error('connect ECONNREFUSED')
      }
    }
  })
  const res = await broken.request('/search?dataset=mixed&q=whales')
  assert.equal(res.status, 503)
  const body = (await res.json()) as { code: string; detail: string }
  assert.equal(body.code, 'embeddings-unavailable')
  assert.match(body.detail, /ECONNREFUSED.*bm25/)
  assert.equal((await broken.request('/search?dataset=mixed&q=whales&method=bm25')).status, 200)
})

test('GET /search is in the OpenAPI document with its parameters', async () => {
  const doc = (await (await app.request('/openapi.json')).json()) as {
    paths: Record<string, { get?: { parameters?: Array<{ name: string }> } }>
  }
  const names = doc.paths['/search']?.get?.parameters?.map(p => p.name) ?? []
  for (const n of ['dataset', 'q', 'method', 'latents', 'k', 'temperature', 'limit']) assert.ok(names.includes(n), n)
})

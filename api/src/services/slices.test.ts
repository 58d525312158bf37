/** @module Analyses on slices (demo encoder, real store): a diff between slices of one dataset equals, field for field, the diff of the same documents encoded as separate datasets, and so do latent pages and the other analyses; slice errors are 400 problems naming the fault. */
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FacetsView, type DatasetRecord, type InlineDocument } from '@latentbase/shared/contract/dataset'
import { parseSliceText } from '@latentbase/shared/contract/slice'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { DiffQuery, DiffResult } from '@latentbase/shared/contract/diff'
import { LatentPage } from '@latentbase/shared/contract/latents'
import { SearchResult } from '@latentbase/shared/contract/search'
import { CorrelationsResult } from '@latentbase/shared/contract/correlations'
import { ClustersResult } from '@latentbase/shared/contract/clusters'
import { CountingObjectStore, MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { readByLatent } from '@latentbase/shared/store/latent-shards/read-by-latent'
import { cscKey } from '@latentbase/shared/store/latent-shards/csc'
import { readByDocument } from '@latentbase/shared/store/latent-shards/read-by-document'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { diffLengthControlled, diffPaired } from '@latentbase/shared/analysis/diff'
import { selectRows } from '@latentbase/shared/analysis/slice'
import { matchPairs } from './diff-service.ts'
import { designBlocks } from './diff-designs.ts'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { StaticEncoderCatalog } from '@latentbase/shared/catalog/catalog'
import { loadEncoder, type LoadedEncoder } from '../../../gpu-worker/src/encode/runtime.ts'
import { DEMO_ENCODER_DIR } from '../../../gpu-worker/src/registry.ts'
import { encodeDataset } from '../../../gpu-worker/src/job/encode.ts'
import { createClient } from '@latentbase/sdk'
import { createApp } from '../app.ts'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import { computeClusters } from './clusters-service.ts'
import { facetsViewOf, sliceDataset } from './slice-service.ts'
import { loadReadyDataset } from './ready-dataset.ts'

const TENANT = 'local'
const subjects = [
  'the whale',
  'my tax return',
  'the quarterly report',
  'a free prize',
  'the lazy dog',
  'sea shells',
  'your order',
  'the meeting',
  'the blowhole',
  'the list',
  'the ship',
  'the crew'
]
// Two "models" answering prompts differently (model y longer and more formal); prompt pairs one y with one x answer.
const docs: InlineDocument[] = []
for (let i = 0; i < subjects.length * 3; i++) {
  const subject = subjects[i % subjects.length]
  const model = i % 3 === 0 ? 'y' : 'x'
  const text =
    model === 'x'
      ? `Sure! Here is a quick note about ${subject}. ${i % 2 ? 'Click here now!!!' : 'Thanks.'}`
      : `Dear Sir, regarding ${subject}: I am writing to inform you that the matter has been reviewed. ${'Kind regards. '.repeat(1 + (i % 2))}`
  docs.push({
    id: `d${i}`,
    text,
    metadata: { model, prompt: `${i % 3 === 2 ? 'q' : 'p'}${Math.floor(i / 3)}`, score: i }
  })
}
const ofModel = (m: string) => docs.filter(d => d.metadata!.model === m)

let encoder: LoadedEncoder
let objects: MemoryObjectStore
let datasets: DatasetStore
let encoders: StaticEncoderCatalog

async function encode(id: string, list: InlineDocument[]): Promise<void> {
  const at = '2026-01-01T00:00:00.000Z'
  const record: DatasetRecord = {
    id,
    tenant: TENANT,
    name: id,
    status: 'running',
    encoder: 'demo',
    pooling: { method: 'max', outlierNormRatio: 100 },
    source: { inline: list.length },
    createdAt: at,
    updatedAt: at,
    progress: { documents: { done: 0, total: list.length }, tokens: 0 },
    attempts: 1
  }
  await objects.put(layout.inlineInput(TENANT, id), list.map(d => JSON.stringify(d)).join('\n') + '\n')
  await datasets.putRecord(record)
  // Small parts and chunks: the whole dataset's shards span several files and row groups.
  await encodeDataset(record, {
    objects,
    datasets,
    encoder,
    allowLocalSources: false,
    chunkDocuments: 8,
    partDocuments: 16,
    topExamplesPerLatent: 3,
    progressIntervalMs: 0
  })
  await datasets.putRecord({ ...record, status: 'ready' })
}

before(async () => {
  encoder = await loadEncoder(DEMO_ENCODER_DIR, { log: () => {} })
  objects = new MemoryObjectStore()
  datasets = new DatasetStore(objects)
  encoders = new StaticEncoderCatalog([{ info: encoder.info, labels: encoder.labels }])
  await encode('ds_all', docs)
  await encode('ds_x', ofModel('x'))
  await encode('ds_y', ofModel('y'))
})

function app() {
  return createApp({
    objects,
    datasets,
    encoders,
    mode: 'local' as const,
    tenantOf: () => TENANT,
    queue: new EmbeddedQueue<JobMessage>(join(mkdtempSync(join(tmpdir(), 'lb-slices-')), 'queue'))
  })
}

async function get(path: string) {
  const res = await app().request(path)
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as any }
}

const q = (params: Record<string, string | string[]>) => {
  const s = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) s.append(k, x)
  return s.toString()
}

/**
 * Every field of two diff results agrees, except the ids and names of the sides and the slice each side names, and
 * the peaks: a slice's come from the whole dataset's top examples (and name it), a separate dataset's from its own.
 */
function assertSameDiff(sliced: DiffResult, separate: DiffResult, againstIds: Record<string, string>): void {
  assert.equal(sliced.design, separate.design)
  assert.equal(sliced.metric, separate.metric)
  assert.equal(sliced.encoder, separate.encoder)
  assert.equal(sliced.pairs, separate.pairs)
  assert.equal(sliced.tested, separate.tested)
  for (const [s, t] of [[sliced.a, separate.a], ...sliced.b.map((b, i) => [b, separate.b[i]])] as const) {
    assert.equal(s.documents, t.documents)
    assert.equal(s.meanTokens, t.meanTokens)
    assert.ok(s.where, 'a sliced side says which slice it is')
  }
  assert.ok(separate.latents.length > 10, 'enough latents to compare')
  assert.equal(sliced.latents.length, separate.latents.length)
  for (let i = 0; i < sliced.latents.length; i++) {
    const { against, peak, ...rest } = sliced.latents[i]
    const { against: againstSeparate, peak: _, ...restSeparate } = separate.latents[i]
    assert.equal(againstIds[against], againstSeparate)
    if (peak) assert.equal(peak.dataset, rest.difference >= 0 ? sliced.a.id : sliced.b[rest.againstIndex ?? 0].id)
    assert.deepEqual(rest, restSeparate, `latent row ${i}`)
  }
}

/**
 * Runs `fn` with the by-latent sidecars of a dataset removed (as in a store written before them), then puts them back;
 * the warnings said meanwhile.
 */
async function withoutSidecars(id: string, fn: () => Promise<void>): Promise<string[]> {
  const manifest = (await datasets.getManifest(TENANT, id))!
  const sidecars = manifest.latents.byLatent.map(f => layout.datasetPrefix(TENANT, id) + cscKey(f.key))
  const saved = await Promise.all(sidecars.map(k => objects.get(k)))
  assert.ok(saved.every(Boolean), 'the encode job wrote a sidecar for every by-latent shard')
  const warn = console.warn
  const warnings: string[] = []
  console.warn = (line: string) => void warnings.push(line)
  try {
    for (const k of sidecars) await objects.delete(k)
    await fn()
  } finally {
    console.warn = warn
    for (const [i, k] of sidecars.entries()) await objects.put(k, saved[i]!)
  }
  return warnings
}

/** Runs `fn` with a dataset's facets file lost (the slice's rows are then counted), then puts it back; the warnings said. */
async function withoutFacets(id: string, fn: () => Promise<void>): Promise<string[]> {
  const manifest = (await datasets.getManifest(TENANT, id))!
  assert.ok(manifest.facets?.fields.includes('model'), 'the encode job wrote facets of metadata.model')
  const key = layout.datasetPrefix(TENANT, id) + manifest.facets!.key
  const saved = (await objects.get(key))!
  const warn = console.warn
  const warnings: string[] = []
  console.warn = (line: string) => void warnings.push(line)
  try {
    await objects.delete(key)
    await fn()
  } finally {
    console.warn = warn
    await objects.put(key, saved)
  }
  return warnings
}

test('diff of two slices of one dataset equals the diff of the same documents encoded as two datasets', async () => {
  const common = { limit: '5000', direction: 'both' }
  const separate = DiffResult.parse((await get(`/diff?${q({ ...common, a: 'ds_x', b: 'ds_y' })}`)).body)
  assert.equal(separate.a.documents, ofModel('x').length)
  // Text form, and the JSON form of the same slices: the same answer.
  for (const [aWhere, bWhere] of [
    ['metadata.model = "x"', "metadata.model = 'y'"],
    [
      JSON.stringify({ field: 'metadata.model', in: ['x'] }),
      JSON.stringify({ not: { field: 'metadata.model', ne: 'y' } })
    ]
  ]) {
    const res = await get(`/diff?${q({ ...common, a: 'ds_all', aWhere, b: 'ds_all', bWhere })}`)
    assert.equal(res.status, 200, JSON.stringify(res.body))
    const sliced = DiffResult.parse(res.body)
    assert.equal(sliced.a.id, 'ds_all')
    assertSameDiff(sliced, separate, { ds_all: 'ds_y' })
  }
  // Those slices were answered by the facets (one metadata key). Without them (a store written before them, or a lost
  // file) the slice's rows are counted from the by-latent sidecars; without those too, from the by-document shards:
  // the same answer each time.
  const slicedDiff = async () => {
    const res = await get(
      `/diff?${q({ ...common, a: 'ds_all', aWhere: 'metadata.model = "x"', b: 'ds_all', bWhere: 'metadata.model = "y"' })}`
    )
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assertSameDiff(DiffResult.parse(res.body), separate, { ds_all: 'ds_y' })
  }
  let sidecarWarnings: string[] = []
  const warnings = await withoutFacets('ds_all', async () => {
    await slicedDiff()
    sidecarWarnings = await withoutSidecars('ds_all', slicedDiff)
  })
  assert.ok(
    warnings.some(w => /facets .* unreadable/.test(w)),
    'the lost facets file is said'
  )
  assert.ok(
    sidecarWarnings.some(w => /\.csc unreadable/.test(w)),
    'the lost sidecar is said'
  )
  // The relative metric and the coverage masks run on the slice's counts too.
  const opts = { limit: '5000', metric: 'relative', minFrequency: '0.1', maxFrequency: '0.9' }
  assertSameDiff(
    DiffResult.parse(
      (
        await get(
          `/diff?${q({ ...opts, a: 'ds_all', aWhere: 'metadata.model = "x"', b: 'ds_all', bWhere: 'metadata.model = "y"' })}`
        )
      ).body
    ),
    DiffResult.parse((await get(`/diff?${q({ ...opts, a: 'ds_x', b: 'ds_y' })}`)).body),
    { ds_all: 'ds_y' }
  )
})

test('paired and length-controlled designs on slices equal the same designs on separate datasets', async () => {
  for (const design of [{ pairBy: 'prompt' }, { controlLength: 'true' }] as Array<Record<string, string>>) {
    const separate = DiffResult.parse(
      (await get(`/diff?${q({ ...design, limit: '5000', direction: 'both', a: 'ds_x', b: 'ds_y' })}`)).body
    )
    const res = await get(
      `/diff?${q({ ...design, limit: '5000', direction: 'both', a: 'ds_all', aWhere: 'metadata.model = "x"', b: 'ds_all', bWhere: 'metadata.model = "y"' })}`
    )
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assertSameDiff(DiffResult.parse(res.body), separate, { ds_all: 'ds_y' })
    if (design.pairBy) assert.ok(separate.pairs! > 0)
  }
})

test('the designs count each latent in blocks of latents: the same statistics as over the documents read whole', async () => {
  const statistics = (l: DiffResult['latents'][number]) => [
    l.latent,
    l.countA,
    l.countB,
    l.difference,
    l.ci95,
    l.pValue,
    l.qValue
  ]
  const options = { ...DiffQuery.parse({ a: 'ds_x', b: 'ds_y' }), limit: 5000, direction: 'both' as const }
  // Paired: x and y answer the same prompts.
  const [x, y] = await Promise.all(['ds_x', 'ds_y'].map(id => byDocument(id, 'metadata')))
  const paired = DiffResult.parse(
    (await get(`/diff?${q({ pairBy: 'prompt', limit: '5000', direction: 'both', a: 'ds_x', b: 'ds_y' })}`)).body
  )
  const pairs = matchPairs(x.column, y.column, 'prompt')
  const pairedReference = diffPaired({ a: x.csr, b: y.csr, ...pairs, labels: encoder.labels, against: 'ds_y', options })
  assert.deepEqual(paired.latents.map(statistics), pairedReference.latents.map(statistics))
  assert.ok(
    paired.latents.some(l => l.pValue < 1),
    'some latent differs within pairs'
  )
  // Length-stratified, on two slices of one dataset that both hold short and long documents (early and late scores).
  const whole = await byDocument('ds_all', 'token_count')
  const early = DiffResult.parse(
    (
      await get(
        `/diff?${q({ controlLength: 'true', limit: '5000', direction: 'both', a: 'ds_all', aWhere: 'metadata.score < 18', b: 'ds_all', bWhere: 'metadata.score >= 18' })}`
      )
    ).body
  )
  const rowsOf = (keep: (i: number) => boolean) =>
    Int32Array.from(docs.keys()).filter(i => keep(docs[i].metadata!.score as number))
  const [rowsA, rowsB] = [rowsOf(score => score < 18), rowsOf(score => score >= 18)]
  const tokens = whole.column.map(Number)
  const stratifiedReference = diffLengthControlled({
    a: selectRows(whole.csr, rowsA),
    b: selectRows(whole.csr, rowsB),
    tokensA: Array.from(rowsA, r => tokens[r]),
    tokensB: Array.from(rowsB, r => tokens[r]),
    labels: encoder.labels,
    against: 'ds_all',
    options
  })
  assert.deepEqual(early.latents.map(statistics), stratifiedReference.latents.map(statistics))
  assert.ok(
    early.latents.some(l => l.pValue < 1 && l.difference !== 0),
    'strata hold both sides'
  )
  // Blocks of a few latents (hundreds of reads) give the same answers as one block.
  const entries = designBlocks.entries
  designBlocks.entries = 50
  try {
    const small = await get(`/diff?${q({ pairBy: 'prompt', limit: '5000', direction: 'both', a: 'ds_x', b: 'ds_y' })}`)
    assert.deepEqual(DiffResult.parse(small.body).latents.map(statistics), paired.latents.map(statistics))
    const smallEarly = await get(
      `/diff?${q({ controlLength: 'true', limit: '5000', direction: 'both', a: 'ds_all', aWhere: 'metadata.score < 18', b: 'ds_all', bWhere: 'metadata.score >= 18' })}`
    )
    assert.deepEqual(DiffResult.parse(smallEarly.body).latents.map(statistics), early.latents.map(statistics))
  } finally {
    designBlocks.entries = entries
  }
})

/** A dataset's documents as a CSR read whole (by document), with one documents column. */
async function byDocument(id: string, column: 'metadata' | 'token_count') {
  const manifest = (await datasets.getManifest(TENANT, id))!
  const prefix = layout.datasetPrefix(TENANT, id)
  const [docs, csr] = await Promise.all([
    readDocuments(objects, prefix, manifest.documents.files, undefined, [column]),
    readByDocument(objects, prefix, manifest.latents.byDocument)
  ])
  return { csr, column: Array.from(docs[column] as ArrayLike<unknown>) as string[] }
}

test('a slice against a whole dataset, and b lists with one slice per b', async () => {
  const whole = DiffResult.parse((await get(`/diff?${q({ limit: '5000', a: 'ds_x', b: ['ds_y', 'ds_all'] })}`)).body)
  const res = await get(
    `/diff?${q({ limit: '5000', a: 'ds_all', aWhere: 'metadata.model = "x"', b: ['ds_y', 'ds_all'], bWhere: ['', 'metadata.score >= 0'] })}`
  )
  assert.equal(res.status, 200, JSON.stringify(res.body))
  const sliced = DiffResult.parse(res.body)
  assert.equal(sliced.b[0].where, undefined, 'an empty bWhere is the whole dataset')
  assert.equal(sliced.b[1].documents, docs.length)
  assert.equal(sliced.tested, whole.tested)
  assert.deepEqual(
    sliced.latents.map(l => [l.latent, l.countA, l.countB, l.againstIndex, l.pValue]),
    whole.latents.map(l => [l.latent, l.countA, l.countB, l.againstIndex, l.pValue])
  )
})

test('a slice against its own dataset with no bWhere is against the rest of it; an empty bWhere= takes the whole', async () => {
  const aWhere = 'metadata.model = "x"'
  const rest = DiffResult.parse(
    (await get(`/diff?${q({ limit: '5000', direction: 'both', a: 'ds_all', aWhere, b: 'ds_all' })}`)).body
  )
  const explicit = DiffResult.parse(
    (
      await get(
        `/diff?${q({ limit: '5000', direction: 'both', a: 'ds_all', aWhere, b: 'ds_all', bWhere: `not (${aWhere})` })}`
      )
    ).body
  )
  assert.equal(rest.b[0].where, explicit.b[0].where)
  assert.match(rest.b[0].where ?? '', /^not /)
  assert.equal(rest.a.documents + rest.b[0].documents, docs.length, 'a and b split the dataset')
  assert.deepEqual(
    rest.latents.map(l => [l.latent, l.countA, l.countB, l.pValue]),
    explicit.latents.map(l => [l.latent, l.countA, l.countB, l.pValue])
  )
  const whole = DiffResult.parse(
    (await get(`/diff?${q({ limit: '5000', direction: 'both', a: 'ds_all', aWhere, b: 'ds_all', bWhere: '' })}`)).body
  )
  assert.equal(whole.b[0].where, undefined)
  assert.equal(whole.b[0].documents, docs.length)
  // Another dataset keeps its whole: the rule is about a's own dataset only.
  const other = DiffResult.parse((await get(`/diff?${q({ limit: '5', a: 'ds_all', aWhere, b: 'ds_y' })}`)).body)
  assert.equal(other.b[0].where, undefined)
})

test('latent slices: documents where a latent fires against those where it does not', async () => {
  const manifest = (await datasets.getManifest(TENANT, 'ds_all'))!
  const csc = await readByLatent(objects, layout.datasetPrefix(TENANT, 'ds_all'), manifest.latents.byLatent, {
    start: 0,
    end: manifest.encoder.dSae
  })
  // A latent present in some but not most documents, and its values there.
  let latent = -1
  for (let l = 0; l < csc.nLatents && latent < 0; l++) {
    const n = csc.indptr[l + 1] - csc.indptr[l]
    if (n >= 5 && n <= docs.length - 5) latent = l
  }
  assert.ok(latent >= 0)
  const values = Array.from(csc.values.subarray(csc.indptr[latent], csc.indptr[latent + 1])).sort((x, y) => x - y)
  const present = values.filter(v => v > 0).length
  const res = await get(
    `/diff?${q({ limit: '1', latents: String(latent), a: 'ds_all', aWhere: `latent ${latent}`, b: 'ds_all', bWhere: `not latent ${latent}` })}`
  )
  assert.equal(res.status, 200, JSON.stringify(res.body))
  const out = DiffResult.parse(res.body)
  assert.equal(out.a.documents, present)
  assert.equal(out.b[0].documents, docs.length - present)
  const row = out.latents.find(l => l.latent === latent)!
  assert.equal(row.countA, present)
  assert.equal(row.countB, 0)
  // A value threshold: the median splits the present documents.
  const median = values[Math.floor(values.length / 2)]
  const above = values.filter(v => v > median).length
  const split = DiffResult.parse(
    (
      await get(
        `/diff?${q({ a: 'ds_all', aWhere: `latent ${latent} > ${median}`, b: 'ds_all', bWhere: `latent ${latent} <= ${median} and metadata.model in ("x", "y")` })}`
      )
    ).body
  )
  assert.equal(split.a.documents, above)
  assert.equal(split.b[0].documents, docs.length - above)
})

test('the SDK sends slices in object or text form', async () => {
  const client = createClient({
    baseUrl: 'http://local',
    fetch: async (input, init) => app().request(String(input).replace('http://local', ''), init)
  })
  const separate = await client.diff({ a: 'ds_x', b: 'ds_y', limit: 5000, direction: 'both' })
  const sliced = await client.diff({
    a: 'ds_all',
    aWhere: { and: [{ field: 'metadata.model', eq: 'x' }, { tokens: { gte: 0 } }] },
    b: 'ds_all',
    bWhere: 'metadata.model = "y"',
    limit: 5000,
    direction: 'both'
  })
  assertSameDiff(sliced, separate, { ds_all: 'ds_y' })
  assert.equal(sliced.a.where, 'metadata.model = "x" and tokens >= 0')
})

test("a dataset's facets list each few-valued key's values, and each value's slice is what a diff takes", async () => {
  const client = createClient({
    baseUrl: 'http://local',
    fetch: async (input, init) => app().request(String(input).replace('http://local', ''), init)
  })
  const view = FacetsView.parse(await client.datasets.facets('ds_all'))
  assert.deepEqual([view.dataset, view.documents, view.stored], ['ds_all', docs.length, true])
  // Merged over the dataset's three parts: model (2 values) and prompt (24); score has 36 values, so it is no facet.
  assert.deepEqual(
    view.fields.map(f => [f.field, f.values.length, f.missing]),
    [
      ['metadata.model', 2, 0],
      ['metadata.prompt', 24, 0]
    ]
  )
  assert.deepEqual(view.other, ['metadata.score'])
  const [x, y] = view.fields[0].values
  assert.deepEqual([x.value, x.documents, x.where], ['x', ofModel('x').length, 'metadata.model = "x"'])
  assert.deepEqual([y.value, y.documents], ['y', ofModel('y').length])
  assert.equal(
    view.fields[1].values.reduce((s, v) => s + v.documents, 0),
    docs.length
  )
  // A value's slice in a diff: its documents and mean length are the ones listed, and those of the same documents
  // encoded as a dataset.
  const separate = await client.diff({ a: 'ds_x', b: 'ds_y', limit: 5 })
  const sliced = await client.diff({ a: 'ds_all', aWhere: x.where, b: 'ds_all', bWhere: y.where, limit: 5 })
  assert.deepEqual([sliced.a.documents, sliced.a.meanTokens], [x.documents, x.meanTokens])
  assert.deepEqual([sliced.a.documents, sliced.a.meanTokens], [separate.a.documents, separate.a.meanTokens])
  assert.deepEqual([sliced.b[0].documents, sliced.b[0].meanTokens], [separate.b[0].documents, separate.b[0].meanTokens])

  // Cached like other answers over ready datasets; a missing dataset is a 404 problem.
  const first = await app().request('/datasets/ds_all/facets')
  const etag = first.headers.get('etag')!
  assert.ok(etag)
  assert.equal((await app().request('/datasets/ds_all/facets', { headers: { 'if-none-match': etag } })).status, 304)
  const missing = await get('/datasets/ds_nope/facets')
  assert.deepEqual(
    [missing.status, missing.type, missing.body.code],
    [404, 'application/problem+json', 'dataset-not-found']
  )
  // A dataset encoded before facets were written says so, with no fields.
  const ready = await loadReadyDataset(datasets, TENANT, 'ds_all', 'dataset')
  // A slice on two facet keys gets its rows from the facets file alone.
  const counting = new CountingObjectStore(objects)
  const twoKeys = await sliceDataset(
    counting,
    ready,
    parseSliceText('metadata.model = "y" or metadata.prompt in ("p1", "q2")'),
    'where'
  )
  assert.deepEqual(
    Array.from(twoKeys.slice!.rows),
    docs.flatMap((d, i) =>
      d.metadata!.model === 'y' || ['p1', 'q2'].includes(d.metadata!.prompt as string) ? [i] : []
    )
  )
  assert.deepEqual(
    new Set(counting.fetches.map(f => f.key.split('/').slice(-2).join('/'))),
    new Set(['stats/facets.bin'])
  )
  const { facets: _, ...older } = ready.manifest
  assert.deepEqual(await facetsViewOf(objects, { ...ready, manifest: older }), {
    dataset: 'ds_all',
    documents: docs.length,
    stored: false,
    fields: [],
    other: []
  })
})

test('bad slices are 400 problems naming the field, the operator or the parameter', async () => {
  const cases: Array<[Record<string, string | string[]>, RegExp]> = [
    [{ aWhere: 'meta.model = "x"' }, /unknown field "meta\.model"/],
    [{ aWhere: 'metadata.model ~ "x"' }, /bad operator "~"/],
    [{ aWhere: 'metadata.model = "x" and' }, /expected a condition/],
    [{ aWhere: JSON.stringify({ field: 'metadata.model', like: 'x' }) }, /unknown operator "like"/],
    [{ aWhere: JSON.stringify({ colour: 'red' }) }, /unknown field "colour"/],
    [{ aWhere: `latent ${10_000_000}` }, /latent 10000000 does not exist/],
    [{ bWhere: ['metadata.model = "y"', 'metadata.model = "x"'] }, /bWhere is given 2 time\(s\) for 1 b dataset/],
    [{ b: 'ds_all', aWhere: 'metadata.model = "x"', bWhere: 'metadata.model = "x"' }, /same slice/]
  ]
  for (const [params, message] of cases) {
    const res = await get(`/diff?${q({ a: 'ds_all', b: 'ds_y', ...params })}`)
    assert.equal(res.status, 400, JSON.stringify(params))
    assert.equal(res.type, 'application/problem+json')
    assert.match(res.body.detail, message)
  }
  // The problem names the parameter once (and which bWhere), so clients can show the reason beside the right field.
  const twoB = await get(
    `/diff?${q({ a: 'ds_all', b: ['ds_x', 'ds_y'], aWhere: 'metadata.model ~ "x"', bWhere: ['', 'colour = 1'] })}`
  )
  assert.deepEqual(twoB.body.errors.map((e: { path: string }) => e.path).sort(), ['aWhere', 'bWhere.1'])
  assert.match(twoB.body.detail, /aWhere: bad operator "~"/)
})

test('a latent page of a slice equals the page of the same documents encoded as a dataset', async () => {
  const diff = DiffResult.parse(
    (await get(`/diff?${q({ limit: '5000', direction: 'both', a: 'ds_x', b: 'ds_y' })}`)).body
  )
  const checked = diff.latents
    .filter(l => l.countA > 0)
    .slice(0, 6)
    .map(l => l.latent)
  assert.ok(checked.length >= 3)
  for (const latent of checked) {
    const separate = LatentPage.parse((await get(`/latents/${latent}?dataset=ds_x`)).body)
    const res = await get(`/latents/${latent}?${q({ dataset: 'ds_all', where: 'metadata.model = "x"' })}`)
    assert.equal(res.status, 200, JSON.stringify(res.body))
    const sliced = LatentPage.parse(res.body)
    assert.equal(sliced.where, 'metadata.model = "x"')
    assert.equal(sliced.sliceDocuments, ofModel('x').length)
    assert.equal(sliced.documents, separate.documents)
    assert.equal(sliced.frequency, separate.frequency)
    assert.equal(sliced.max, separate.max)
    assert.deepEqual(sliced.histogram, separate.histogram)
    assert.equal(sliced.p90, separate.p90)
    assert.ok(Math.abs(sliced.mean! - separate.mean!) <= 1e-9 * separate.mean!, 'the same mean up to summation order')
    // Top examples: the stored ones of the whole dataset that fall in the slice, in rank order.
    const all = LatentPage.parse((await get(`/latents/${latent}?dataset=ds_all`)).body)
    const inSlice = all.topExamples.filter(e => docs[e.row].metadata!.model === 'x')
    assert.deepEqual(sliced.topExamples, inSlice)
    // The slice's strongest documents are the separate dataset's top examples: the same documents, values and peaks
    // (its rows are its own), as many as asked, with their text when asked.
    assert.equal(all.sliceStrongest, undefined, 'a whole dataset has top examples, not a slice list')
    const strongest = (n: number, text = false) =>
      get(
        `/latents/${latent}?${q({ dataset: 'ds_all', where: 'metadata.model = "x"', examples: String(n), ...(text ? { text: 'true' } : {}) })}`
      ).then(r => LatentPage.parse(r.body).sliceStrongest!)
    // Five by default; the separate dataset stores three top examples per latent.
    assert.equal(sliced.sliceStrongest!.length, Math.min(5, sliced.documents))
    assert.deepEqual(
      sliced.sliceStrongest!.slice(0, separate.topExamples.length).map(s => [s.id, s.value, s.position]),
      separate.topExamples.map(e => [e.id, e.value, e.position])
    )
    assert.ok(sliced.sliceStrongest!.every(s => docs[s.row].metadata!.model === 'x'))
    assert.equal((await strongest(1)).length, Math.min(1, separate.topExamples.length))
    assert.deepEqual(
      (await strongest(2, true)).map(s => s.text),
      separate.topExamples.slice(0, 2).map(e => docs.find(d => d.id === e.id)!.text)
    )
  }
  const bad = await get(`/latents/${checked[0]}?${q({ dataset: 'ds_all', where: 'metadata.model =' })}`)
  assert.equal(bad.status, 400)
  assert.match(bad.body.detail, /expected a value/)
})

test('search in a slice ranks as the same documents encoded as a dataset (sae with latents, bm25, hybrid)', async () => {
  const diff = DiffResult.parse((await get(`/diff?${q({ limit: '5', a: 'ds_x', b: 'ds_y' })}`)).body)
  const latents = diff.latents
    .slice(0, 3)
    .map(l => l.latent)
    .join(',')
  const client = createClient({
    baseUrl: 'http://local',
    fetch: async (input, init) => app().request(String(input).replace('http://local', ''), init)
  })
  for (const params of [
    { method: 'sae' as const, latents: latents.split(',').map(Number) },
    { method: 'bm25' as const, q: 'whale prize report' },
    { method: 'hybrid' as const, q: 'dear sir', latents: latents.split(',').map(Number) }
  ]) {
    const separate = SearchResult.parse(await client.search({ dataset: 'ds_x', limit: 50, ...params }))
    const sliced = await client.search({
      dataset: 'ds_all',
      where: { field: 'metadata.model', eq: 'x' },
      limit: 50,
      ...params
    })
    assert.equal(sliced.where, 'metadata.model = "x"')
    assert.ok(separate.results.length > 0, params.method)
    assert.equal(sliced.matched, separate.matched, params.method)
    assert.deepEqual(
      sliced.results.map(r => [r.id, r.score, r.snippet]),
      separate.results.map(r => [r.id, r.score, r.snippet]),
      params.method
    )
    assert.deepEqual(sliced.latents, separate.latents)
    for (const r of sliced.results) assert.equal(docs[r.row].metadata!.model, 'x')
  }
})

test('correlations in a slice equal correlations of the same documents encoded as a dataset', async () => {
  const client = createClient({
    baseUrl: 'http://local',
    fetch: async (input, init) => app().request(String(input).replace('http://local', ''), init)
  })
  // Loose filters so that a 24-document dataset has pairs; label similarity needs an embedder, so it is off.
  for (const minActivation of [0, 0.5]) {
    const params = {
      minNpmi: 0,
      minCount: 2,
      maxFrequency: 0.5,
      maxLabelSimilarity: 1,
      limit: 300,
      minActivation,
      dropAdjacent: false,
      dropPositional: false
    }
    const separate = CorrelationsResult.parse(await client.correlations({ dataset: 'ds_x', ...params }))
    const sliced = CorrelationsResult.parse(
      await client.correlations({ dataset: 'ds_all', where: 'metadata.model = "x"', ...params })
    )
    assert.ok(separate.pairs.length > 10, `pairs at minActivation ${minActivation}`)
    assert.equal(sliced.where, 'metadata.model = "x"')
    const { seconds: _s, dataset: _d, where: _w, pairs, ...rest } = sliced
    const { seconds: _s2, dataset: _d2, pairs: pairsSeparate, ...restSeparate } = separate
    assert.deepEqual(rest, restSeparate)
    for (const p of pairs)
      assert.equal(
        p.a.href,
        `/latents/${p.a.latent}?dataset=ds_all&where=${encodeURIComponent('metadata.model = "x"')}`
      )
    // Peaks come from the whole dataset's top examples, also for a slice: left out of the comparison.
    const strip = (p: (typeof pairs)[number]) => ({
      ...p,
      a: { ...p.a, dataset: '', href: '', peak: undefined },
      b: { ...p.b, dataset: '', href: '', peak: undefined }
    })
    assert.deepEqual(pairs.map(strip), pairsSeparate.map(strip))
    // Counted from the by-document shards when the sidecars are missing: the same answer.
    await withoutSidecars('ds_all', async () => {
      const fallback = CorrelationsResult.parse(
        await client.correlations({ dataset: 'ds_all', where: 'metadata.model = "x"', ...params })
      )
      const { seconds: _s3, ...same } = fallback
      const { seconds: _s4, ...expected } = sliced
      assert.deepEqual(same, expected)
    })
  }
})

test('clustering a slice equals clustering the same documents encoded as a dataset', async () => {
  // The service the POST /clusters route and the analysis job call (the route needs an analysis queue).
  const ctx = { objects, datasets, encoders, embedder: new OfflineEmbedder(), tenant: TENANT }
  const xRows = docs.flatMap((d, i) => (d.metadata!.model === 'x' ? [i] : []))
  for (const method of ['spectral', 'kmeans'] as const) {
    const separate = ClustersResult.parse(await computeClusters(ctx, { dataset: 'ds_x', k: 3, method, seed: 5 }))
    const sliced = ClustersResult.parse(
      await computeClusters(ctx, {
        dataset: 'ds_all',
        k: 3,
        method,
        seed: 5,
        where: { field: 'metadata.model', eq: 'x' }
      })
    )
    assert.equal(sliced.where, 'metadata.model = "x"')
    assert.deepEqual(sliced.rows, xRows)
    assert.deepEqual(sliced.assignments, separate.assignments)
    assert.deepEqual(sliced.affinities, separate.affinities)
    assert.deepEqual(sliced.latentsUsed, separate.latentsUsed)
    assert.equal(sliced.documents, separate.documents)
    assert.equal(sliced.emptyDocuments, separate.emptyDocuments)
    const strip = (c: ClustersResult['clusters'][number]) => ({
      ...c,
      latents: c.latents.map(l => ({ ...l, dataset: '', href: '' }))
    })
    assert.deepEqual(
      sliced.clusters.map(strip),
      separate.clusters.map(c => strip({ ...c, central: c.central.map(r => xRows[r]) }))
    )
  }
})

/** @module Tests of GET /latents/{latent} on a real store encoded with the demo encoder: statistics, top examples, 404s. */
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { LatentList, LatentPage, latentRef } from '@latentbase/shared/contract/latents'
import { FailingReadsStore, MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { readByLatent } from '@latentbase/shared/store/latent-shards/read-by-latent'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { quantile } from '@latentbase/shared/analysis/latent-stats'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { StaticEncoderCatalog } from '@latentbase/shared/catalog/catalog'
import { loadEncoder, type LoadedEncoder } from '../../../gpu-worker/src/encode/runtime.ts'
import { DEMO_ENCODER_DIR } from '../../../gpu-worker/src/registry.ts'
import { encodeDataset } from '../../../gpu-worker/src/job/encode.ts'
import { parquetWriteBuffer } from 'hyparquet-writer'
import { analysesClient, type Call } from '@latentbase/sdk/analyses'
import { createApp } from '../app.ts'
import { readExamplesOfLatents, readLatentExamples } from '@latentbase/shared/store/top-examples/read'

const TENANT = 'local'
const PER_LATENT = 3
const docs = [
  'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse.',
  'The white whale swam past the ship and the crew cheered from the deck.',
  'Dear Sir, I am writing to ask about my tax return for the year 2001.',
  'Click here to claim your free prize! Limited offer, act now!!!',
  'The quick brown fox jumps over the lazy dog, again and again and again.',
  'Meeting moved to 3pm tomorrow; please bring the quarterly report.',
  'She sells sea shells by the sea shore, and the shells she sells are surely sea shells.',
  'for (let i = 0; i < n; i++) { sum += values[i] }',
  'Re: your order #12345 has shipped and will arrive on Monday.',
  'It was the best of times, it was the worst of times, it was the age of wisdom.',
  'Unsubscribe from this list at http://example.com/unsubscribe?id=42',
  'Whales are mammals; they breathe air through a blowhole on top of the head.'
].map((text, i) => ({ id: `d${i}`, text: `${text} ${'More text follows here. '.repeat(i % 3)}`, metadata: {} }))

let encoder: LoadedEncoder
let objects: MemoryObjectStore
let datasets: DatasetStore
let encoders: StaticEncoderCatalog
const sources: (string | null)[] = []

before(async () => {
  encoder = await loadEncoder(DEMO_ENCODER_DIR, { log: () => {} })
  objects = new MemoryObjectStore()
  datasets = new DatasetStore(objects)
  const at = '2026-01-01T00:00:00.000Z'
  const record: DatasetRecord = {
    id: 'ds_page',
    tenant: TENANT,
    name: 'page',
    status: 'running',
    encoder: 'demo',
    pooling: { method: 'max', outlierNormRatio: 100 },
    source: { inline: docs.length },
    createdAt: at,
    updatedAt: at,
    progress: { documents: { done: 0, total: docs.length }, tokens: 0 },
    attempts: 1
  }
  await objects.put(layout.inlineInput(TENANT, record.id), docs.map(d => JSON.stringify(d)).join('\n') + '\n')
  await datasets.putRecord(record)
  await encodeDataset(record, {
    objects,
    datasets,
    encoder,
    allowLocalSources: false,
    chunkDocuments: 8,
    partDocuments: 8,
    topExamplesPerLatent: PER_LATENT,
    progressIntervalMs: 0
  })
  await datasets.putRecord({ ...record, status: 'ready' })
  await datasets.putRecord({ ...record, id: 'ds_queued', status: 'queued' })
  sources.push(...encoder.labelSources)
  // A catalog that also knows where labels came from (EncoderCatalog may gain labelSources; the page uses it when offered).
  encoders = Object.assign(new StaticEncoderCatalog([{ info: encoder.info, labels: encoder.labels }]), {
    labelSources: async () => encoder.labelSources
  })
})

function app() {
  const deps = {
    objects,
    datasets,
    encoders,
    mode: 'local' as const,
    tenantOf: () => TENANT,
    queue: new EmbeddedQueue<JobMessage>(join(mkdtempSync(join(tmpdir(), 'lb-latents-')), 'queue'))
  }
  return createApp(deps)
}

async function get(path: string) {
  const res = await app().request(path)
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as any }
}

/** The most frequent latents of the dataset, from the by-latent shards (independent of the statistics file). */
async function frequentLatents(): Promise<{ latents: number[]; docsOf: Map<number, Map<number, number>> }> {
  const manifest = (await datasets.getManifest(TENANT, 'ds_page'))!
  const csc = await readByLatent(objects, layout.datasetPrefix(TENANT, 'ds_page'), manifest.latents.byLatent, {
    start: 0,
    end: encoder.info.dSae
  })
  const docsOf = new Map<number, Map<number, number>>()
  for (let j = 0; j < csc.nLatents; j++) {
    const m = new Map<number, number>()
    for (let k = csc.indptr[j]; k < csc.indptr[j + 1]; k++) if (csc.values[k] > 0) m.set(csc.docs[k], csc.values[k])
    if (m.size) docsOf.set(j, m)
  }
  const latents = [...docsOf.keys()].sort((a, b) => docsOf.get(b)!.size - docsOf.get(a)!.size || a - b)
  return { latents, docsOf }
}

test('a latent page: frequency, distribution and top examples whose tokens hold the max', async () => {
  const { latents, docsOf } = await frequentLatents()
  const checked = [latents[0], latents[Math.floor(latents.length / 2)], latents[latents.length - 1]]
  const manifest = (await datasets.getManifest(TENANT, 'ds_page'))!
  const full = await readLatentStats(objects, layout.datasetPrefix(TENANT, 'ds_page') + manifest.stats.key)
  for (const latent of checked) {
    const { status, body } = await get(`/latents/${latent}?dataset=ds_page`)
    assert.equal(status, 200)
    const page = LatentPage.parse(body)
    const present = docsOf.get(latent)!
    assert.equal(page.latent, latent)
    assert.equal(page.encoder, 'demo')
    assert.equal(page.label, encoder.labels[latent])
    assert.equal(page.labelSource, encoder.labelSources[latent])
    assert.equal(page.documents, present.size)
    assert.ok(Math.abs(page.frequency - present.size / docs.length) < 1e-12)
    const values = [...present.values()]
    assert.ok(Math.abs(page.max - Math.max(...values)) < 1e-6)
    assert.equal(
      page.histogram.counts.reduce((s, c) => s + c, 0) + page.histogram.underflow + page.histogram.overflow,
      present.size
    )
    assert.equal(page.histogram.edges.length, page.histogram.counts.length + 1)
    assert.ok(page.p90 !== null && page.p90 <= page.max + 1e-6 && page.p90 > 0)
    assert.equal(page.p90, quantile(full, latent, 0.9), 'one row read gives the quantile of the whole file')
    assert.ok(Math.abs(page.mean! - values.reduce((x, y) => x + y, 0) / values.length) < 1e-5)

    assert.equal(page.topExamples.length, Math.min(PER_LATENT, present.size))
    // Ranked by the pooled value: the top example is the document with the largest one.
    const best = [...present.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])
    assert.deepEqual(
      page.topExamples.map(e => e.row),
      best.slice(0, PER_LATENT).map(([doc]) => doc)
    )
    assert.deepEqual(
      page.topExamples.map(e => e.rank),
      page.topExamples.map((_, i) => i)
    )
    for (const ex of page.topExamples) {
      assert.equal(ex.id, `d${ex.row}`)
      assert.equal(ex.tokens.length, ex.activations.length)
      const at = ex.position - ex.windowStart
      assert.ok(at >= 0 && at < ex.tokens.length, 'the window holds the max token')
      assert.ok(
        Math.abs(ex.activations[at] - Math.max(...ex.activations)) < 1e-9,
        'the max activation sits at the max position'
      )
      assert.ok(Math.abs(ex.activations[at] - ex.value) < 1e-3 * Math.max(1, ex.value))
      assert.ok(
        Math.abs(ex.value - present.get(ex.row)!) < 1e-3 * Math.max(1, ex.value),
        'token-level max equals the pooled max'
      )
      assert.equal(ex.text, undefined)
    }
  }
})

test('examples and text parameters', async () => {
  const { latents } = await frequentLatents()
  const page = LatentPage.parse((await get(`/latents/${latents[0]}?dataset=ds_page&examples=1&text=true`)).body)
  assert.equal(page.topExamples.length, 1)
  const text = await readDocuments(
    objects,
    layout.datasetPrefix(TENANT, 'ds_page'),
    (await datasets.getManifest(TENANT, 'ds_page'))!.documents.files,
    [page.topExamples[0].row],
    ['text']
  )
  assert.equal(page.topExamples[0].text, text.text[0])
  const none = LatentPage.parse((await get(`/latents/${latents[0]}?dataset=ds_page&examples=0`)).body)
  assert.deepEqual(none.topExamples, [])
})

test('a latent that never fires has an empty page, not an error', async () => {
  const { docsOf } = await frequentLatents()
  let silent = 0
  while (docsOf.has(silent)) silent++
  const page = LatentPage.parse((await get(`/latents/${silent}?dataset=ds_page`)).body)
  assert.equal(page.documents, 0)
  assert.equal(page.frequency, 0)
  assert.equal(page.p90, null)
  assert.equal(page.mean, null)
  assert.deepEqual(page.topExamples, [])
})

test("reading latents' examples: only their rows, also when they straddle row groups", async () => {
  // The file layout of gpu-worker's top-examples.ts, with row groups of 4 rows: latent 3's 3 examples span groups 1-2.
  const rows = [
    [1, 0],
    [1, 1],
    [2, 0],
    [3, 0],
    [3, 1],
    [3, 2],
    [5, 0],
    [5, 1],
    [7, 0]
  ]
  const bytes = new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        { name: 'latent', data: Int32Array.from(rows, r => r[0]), type: 'INT32' },
        { name: 'rank', data: Int32Array.from(rows, r => r[1]), type: 'INT32' },
        { name: 'doc', data: Int32Array.from(rows, (_, i) => 100 + i), type: 'INT32' },
        { name: 'value', data: Float32Array.from(rows, r => 10 - r[1]), type: 'FLOAT' },
        { name: 'position', data: Int32Array.from(rows, (_, i) => i + 2), type: 'INT32' },
        { name: 'window_start', data: Int32Array.from(rows, (_, i) => i), type: 'INT32' },
        { name: 'tokens', data: rows.map(r => JSON.stringify([`l${r[0]}`, 'b', 'max'])), type: 'JSON' },
        { name: 'activations', data: rows.map(r => JSON.stringify([0, 1, 10 - r[1]])), type: 'JSON' }
      ],
      rowGroupSize: 4
    })
  )
  const store = new MemoryObjectStore()
  await store.put('t/examples.parquet', bytes)
  const three = await readLatentExamples(store, 't/examples.parquet', 3)
  assert.deepEqual(Array.from(three.doc), [103, 104, 105])
  assert.deepEqual(Array.from(three.rank), [0, 1, 2])
  assert.deepEqual(Array.from(three.position), [5, 6, 7])
  assert.deepEqual(Array.from(three.windowStart), [3, 4, 5])
  assert.deepEqual(three.tokens, [
    ['l3', 'b', 'max'],
    ['l3', 'b', 'max'],
    ['l3', 'b', 'max']
  ])
  assert.deepEqual(three.activations[2], [0, 1, 8])
  assert.deepEqual(
    Array.from((await readLatentExamples(store, 't/examples.parquet', 3, 2)).doc),
    [103, 104],
    'limit keeps the best ranks'
  )
  assert.deepEqual(Array.from((await readLatentExamples(store, 't/examples.parquet', 7)).doc), [108])
  assert.deepEqual(Array.from((await readLatentExamples(store, 't/examples.parquet', 1)).doc), [100, 101])
  assert.equal((await readLatentExamples(store, 't/examples.parquet', 4)).doc.length, 0, 'a latent without examples')
  assert.equal((await readLatentExamples(store, 't/examples.parquet', 9)).doc.length, 0, 'beyond the last latent')
  assert.equal((await readLatentExamples(store, 't/absent.parquet', 3)).doc.length, 0, 'no file: no examples')

  // Several latents at once (a diff's peaks, a relabel): one footer, each latent's rows as if read alone.
  const several = await readExamplesOfLatents(store, 't/examples.parquet', [7, 3, 4, 1, 3, 9])
  assert.deepEqual([...several.keys()], [1, 3, 7], 'latents with examples, ascending; 4 and 9 have none')
  for (const l of [1, 3, 7]) assert.deepEqual(several.get(l), await readLatentExamples(store, 't/examples.parquet', l))
  const capped = await readExamplesOfLatents(store, 't/examples.parquet', [3, 5], 1)
  assert.deepEqual(Array.from(capped.get(3)!.doc), [103])
  assert.deepEqual(Array.from(capped.get(5)!.doc), [106])
  assert.equal((await readExamplesOfLatents(store, 't/examples.parquet', [])).size, 0)
  assert.equal((await readExamplesOfLatents(store, 't/absent.parquet', [3])).size, 0)
})

test('404 for a latent outside the encoder, an unknown dataset; 409 for one not ready; 400 for a bad latent', async () => {
  const dSae = encoder.info.dSae
  const out = await get(`/latents/${dSae}?dataset=ds_page`)
  assert.equal(out.status, 404)
  assert.equal(out.type, 'application/problem+json')
  assert.equal(out.body.code, 'latent-not-found')
  assert.match(out.body.detail, new RegExp(`0-${dSae - 1}`))
  const unknown = await get('/latents/3?dataset=nope')
  assert.equal(unknown.status, 404)
  assert.equal(unknown.body.code, 'dataset-not-found')
  assert.equal((await get('/latents/3?dataset=ds_queued')).status, 409)
  assert.equal((await get('/latents/-1?dataset=ds_page')).status, 400)
  assert.equal((await get('/latents/abc?dataset=ds_page')).status, 400)
  assert.equal((await get('/latents/3')).status, 400)
})

test('latentRef links a named latent to its page', () => {
  const ref = latentRef(['a', null], ['auto', null], 1, { dataset: 'my ds', weight: 0.5 })
  assert.deepEqual(ref, {
    latent: 1,
    label: null,
    labelSource: null,
    labelScore: null,
    href: '/latents/1?dataset=my%20ds',
    weight: 0.5
  })
  assert.deepEqual(latentRef(['a'], null, 0, { dataset: 'x' }), {
    latent: 0,
    label: 'a',
    labelSource: null,
    labelScore: null,
    href: '/latents/0?dataset=x'
  })
  // Scores (NaN: none) ride along: one known score is enough to report the pair.
  const scores = { detection: Float32Array.of(NaN, 0.75), fuzzing: Float32Array.of(NaN, NaN) }
  assert.deepEqual(latentRef(['a', 'b'], ['llm:m', 'llm:m'], 1, { dataset: 'x' }, scores).labelScore, {
    detection: 0.75,
    fuzzing: null
  })
  assert.equal(latentRef(['a', 'b'], null, 0, { dataset: 'x' }, scores).labelScore, null)
})

test('the SDK method reads the same page', async () => {
  const { latents } = await frequentLatents()
  const a = app()
  const call: Call = async (schema, method, path) => {
    const res = await a.request(path, { method })
    if (!res.ok) throw new Error(`${res.status}`)
    return schema ? schema.parse(await res.json()) : (undefined as never)
  }
  const page = await analysesClient(call).latents.get('ds_page', latents[1], { examples: 2 })
  assert.deepEqual(page, LatentPage.parse((await get(`/latents/${latents[1]}?dataset=ds_page&examples=2`)).body))
  assert.equal(page.topExamples.length, 2)
})

test('GET /latents: every latent present, most frequent first, a page at a time, with its statistics', async () => {
  const { latents, docsOf } = await frequentLatents()
  const { status, body } = await get('/latents?dataset=ds_page&limit=500')
  assert.equal(status, 200)
  const list = LatentList.parse(body)
  assert.equal(list.total, latents.length)
  assert.equal(list.embedder, null)
  assert.deepEqual(
    list.latents.map(l => l.latent),
    latents.slice(0, 500)
  )
  for (const item of list.latents.slice(0, 20)) {
    const present = docsOf.get(item.latent)!
    const values = [...present.values()]
    assert.equal(item.documents, present.size)
    assert.ok(Math.abs(item.frequency - present.size / docs.length) < 1e-12)
    assert.ok(Math.abs(item.max - Math.max(...values)) < 1e-6)
    assert.ok(Math.abs(item.mean! - values.reduce((a, b) => a + b, 0) / values.length) < 1e-5)
    assert.equal(item.label, encoder.labels[item.latent])
    assert.equal(item.href, `/latents/${item.latent}?dataset=ds_page`)
    assert.equal(item.similarity, null)
  }
  // Unlabelled latents come with what they peak on, labelled ones without.
  for (const item of list.latents) assert.equal(item.peak === undefined, item.label !== null)
  assert.ok(
    list.latents.some(l => l.peak),
    'some unlabelled latent of the demo encoder peaks on a token here'
  )
  const page = LatentList.parse((await get('/latents?dataset=ds_page&offset=5&limit=5')).body)
  assert.deepEqual(
    page.latents.map(l => l.latent),
    latents.slice(5, 10)
  )
  assert.equal(page.total, latents.length)
})

test('GET /latents?sort=: rarest, largest max or largest mean first, ties by latent id; not with q', async () => {
  const { docsOf } = await frequentLatents()
  const stat = (l: number) => {
    const values = [...docsOf.get(l)!.values()]
    return { n: values.length, max: Math.max(...values), mean: values.reduce((a, b) => a + b, 0) / values.length }
  }
  const all = [...docsOf.keys()]
  for (const [sort, key] of [
    ['rare', (l: number) => stat(l).n],
    ['max', (l: number) => -stat(l).max],
    ['mean', (l: number) => -stat(l).mean]
  ] as const) {
    const list = LatentList.parse((await get(`/latents?dataset=ds_page&limit=500&sort=${sort}`)).body)
    assert.equal(list.sort, sort)
    assert.equal(list.total, all.length)
    const got = list.latents.map(l => l.latent)
    // Keys in the order shown never go back (float32 values on both sides: compare with a small tolerance).
    for (let i = 1; i < got.length; i++)
      assert.ok(key(got[i]) >= key(got[i - 1]) - 1e-6, `${sort}: ${got[i - 1]} before ${got[i]}`)
    // Counts and maxima are exact on both sides (ties by id); means are sums in another precision, so only ordered.
    if (sort !== 'mean') assert.deepEqual(got, [...all].sort((a, b) => key(a) - key(b) || a - b).slice(0, 500), sort)
  }
  const rare = LatentList.parse((await get('/latents?dataset=ds_page&limit=1&sort=rare')).body)
  assert.equal(rare.latents[0].documents, Math.min(...all.map(l => stat(l).n)))
  const both = await get('/latents?dataset=ds_page&q=whales&sort=rare')
  assert.equal(both.status, 400)
  assert.match(both.body.detail, /sort \(rare\) orders a list without q/)
  assert.equal((await get('/latents?dataset=ds_page&sort=random')).status, 400)
})

test('GET /latents?where=&sort=npmi: the latents most tied to a slice, by NPMI over the dataset; the slice latent itself first', async () => {
  const { latents, docsOf } = await frequentLatents()
  const on = latents.find(l => docsOf.get(l)!.size >= 3 && docsOf.get(l)!.size <= docs.length - 3)!
  const inSlice = new Set(docsOf.get(on)!.keys())
  const N = docs.length
  const npmi = (l: number) => {
    const c = [...docsOf.get(l)!.keys()].filter(d => inSlice.has(d)).length
    const joint = c / N
    return joint >= 1 ? 1 : Math.log(joint / ((inSlice.size / N) * (docsOf.get(l)!.size / N))) / -Math.log(joint)
  }
  const list = LatentList.parse(
    (await get(`/latents?dataset=ds_page&limit=500&sort=npmi&where=${encodeURIComponent(`latent ${on}`)}`)).body
  )
  assert.equal(list.sort, 'npmi')
  // The slice latent is tied to its own slice most (NPMI 1; a latent with the very same documents ties with it).
  assert.equal(list.latents[0].npmi, 1)
  assert.equal(list.latents.find(l => l.latent === on)?.npmi, 1)
  for (const [i, item] of list.latents.entries()) {
    assert.ok(Math.abs(item.npmi! - npmi(item.latent)) < 1e-4, `latent ${item.latent}`)
    if (i) assert.ok(item.npmi! <= list.latents[i - 1].npmi! + 1e-4)
  }
  // Without a slice there is nothing to be tied to.
  assert.equal((await get('/latents?dataset=ds_page&sort=npmi')).status, 400)
  assert.equal(LatentList.parse((await get('/latents?dataset=ds_page&limit=3')).body).latents[0].npmi, undefined)
})

test('GET /latents?where=: the latents of a slice with its own counts, from the sidecars or, without them, the documents', async () => {
  const { latents, docsOf } = await frequentLatents()
  // A slice on a latent of middling frequency, so that both its documents and the others count.
  const on = latents.find(l => docsOf.get(l)!.size >= 3 && docsOf.get(l)!.size <= docs.length - 3)!
  assert.ok(on !== undefined, 'the fixture has a latent present in some but not most documents')
  const inSlice = new Set(docsOf.get(on)!.keys())
  const expected = latents
    .map(l => {
      const values = [...docsOf.get(l)!].filter(([d]) => inSlice.has(d)).map(([, v]) => v)
      return { latent: l, values }
    })
    .filter(e => e.values.length > 0)
    .sort((a, b) => b.values.length - a.values.length || a.latent - b.latent)
  const where = encodeURIComponent(`latent ${on} > 0`)
  // Without readable sidecars (a store written before them, or one that fails) the documents shards answer alike.
  const noSidecars = new FailingReadsStore(objects, key => key.endsWith('.csc'))
  const fallback = createApp({
    objects: noSidecars,
    datasets: new DatasetStore(noSidecars),
    encoders,
    mode: 'local' as const,
    tenantOf: () => TENANT,
    queue: new EmbeddedQueue<JobMessage>(join(mkdtempSync(join(tmpdir(), 'lb-latents-')), 'queue'))
  })
  const warn = console.warn
  console.warn = () => {}
  try {
    for (const [how, body] of [
      ['sidecars', (await get(`/latents?dataset=ds_page&limit=500&where=${where}`)).body],
      ['documents', await (await fallback.request(`/latents?dataset=ds_page&limit=500&where=${where}`)).json()]
    ] as const) {
      const list = LatentList.parse(body)
      assert.equal(list.where, `latent ${on} > 0`, how)
      assert.equal(list.documents, inSlice.size, how)
      assert.equal(list.total, expected.length, how)
      assert.deepEqual(
        list.latents.map(l => l.latent),
        expected.slice(0, 500).map(e => e.latent),
        how
      )
      for (const [i, item] of list.latents.entries()) {
        const values = expected[i].values
        assert.equal(item.documents, values.length, how)
        assert.ok(Math.abs(item.frequency - values.length / inSlice.size) < 1e-12, how)
        assert.ok(Math.abs(item.max - Math.max(...values)) < 1e-6, how)
        assert.ok(Math.abs(item.mean! - values.reduce((a, b) => a + b, 0) / values.length) < 1e-5, how)
      }
      assert.equal(list.latents.find(l => l.latent === on)?.frequency, 1, how)
    }
    assert.ok(noSidecars.refused > 0, 'the second list was asked of a store whose sidecars fail')
  } finally {
    console.warn = warn
  }
  // A slice naming what the dataset lacks is refused with the reason; an empty slice lists nothing.
  const bad = await get(`/latents?dataset=ds_page&where=${encodeURIComponent('latent 999999 > 0')}`)
  assert.equal(bad.status, 400)
  assert.match(bad.body.detail, /where: latent 999999 does not exist/)
  const empty = LatentList.parse(
    (await get(`/latents?dataset=ds_page&where=${encodeURIComponent(`latent ${on} > 1e9`)}`)).body
  )
  assert.deepEqual([empty.documents, empty.total, empty.latents.length], [0, 0, 0])
})

test('GET /latents?q=: latents ranked by how close their labels are to the text, only those present', async () => {
  const { latents, docsOf } = await frequentLatents()
  // A labelled latent of this dataset, asked for by its own label words.
  const target = latents.find(l => encoder.labels[l] && encoder.labelSources[l] === 'offline-lift')!
  const words = encoder.labels[target]!.replace(/\s*\(e\.g\. ".*"\)\s*$/s, '')
  const list = LatentList.parse((await get(`/latents?dataset=ds_page&q=${encodeURIComponent(words)}&limit=10`)).body)
  assert.equal(list.q, words)
  assert.ok(list.embedder)
  assert.ok(
    list.latents.some(l => l.latent === target),
    `${target} (${words}) among ${list.latents.map(l => l.label)}`
  )
  for (let i = 0; i < list.latents.length; i++) {
    assert.ok(docsOf.has(list.latents[i].latent), 'only latents present in the dataset')
    if (i) assert.ok(list.latents[i].similarity! <= list.latents[i - 1].similarity!)
  }
})

test('GET /latents: 404 for an unknown dataset, 409 for one not ready, 400 for a bad limit', async () => {
  assert.equal((await get('/latents?dataset=nope')).status, 404)
  assert.equal((await get('/latents?dataset=ds_queued')).status, 409)
  const bad = await get('/latents?dataset=ds_page&limit=0')
  assert.equal(bad.status, 400)
  assert.equal(bad.type, 'application/problem+json')
  assert.equal((await get('/latents')).status, 400)
  // An encoder without labels: the list works, a label query says why it cannot.
  const unlabelled = createApp({
    objects,
    datasets,
    encoders: new StaticEncoderCatalog([{ info: encoder.info, labels: encoder.labels.map(() => null) }]),
    mode: 'local' as const,
    tenantOf: () => TENANT,
    queue: new EmbeddedQueue<JobMessage>(join(mkdtempSync(join(tmpdir(), 'lb-latents-')), 'queue'))
  })
  assert.equal((await unlabelled.request('/latents?dataset=ds_page&limit=2')).status, 200)
  const noLabels = await unlabelled.request('/latents?dataset=ds_page&q=whales')
  assert.equal(noLabels.status, 422)
  assert.match(((await noLabels.json()) as { detail: string }).detail, /has no latent labels, so q cannot rank latents/)
  const sdk = await analysesClient(async (schema, method, path) => {
    const res = await app().request(path, { method })
    return schema!.parse(await res.json()) as never
  }).latents.list({ dataset: 'ds_page', limit: 3 })
  assert.deepEqual(
    sdk.latents.map(l => l.latent),
    (await frequentLatents()).latents.slice(0, 3)
  )
})

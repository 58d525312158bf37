/** @module Tests of peaks (what a latent without a label fires on, read off a dataset's top examples) in diffs, correlations, clusters, searches by latents and the document view, of readPeaks itself, and of an encoder with no labels at all. */
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { StaticEncoderCatalog } from '@latentbase/shared/catalog/catalog'
import {
  markedCatalog,
  markedLabels,
  markedWordOf,
  writeMarkedDataset,
  writeMarkedTopExamples,
  MARKED_LATENT,
  MARKER,
  everyPairQuery
} from '@latentbase/shared/llm/corpus-fixture'
import { DiffResult } from '@latentbase/shared/contract/diff'
import { DocumentView } from '@latentbase/shared/contract/dataset'
import { SearchResult } from '@latentbase/shared/contract/search'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { createApp } from '../app.ts'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import { CorrelationsQuery } from '@latentbase/shared/contract/correlations'
import { layout } from '@latentbase/shared/store/layout'
import type { AnalysisContext } from './context.ts'
import { computeCorrelations } from './correlations-service.ts'
import { computeClusters } from './clusters-service.ts'
import { readPeaks } from './latent-peaks.ts'

const TENANT = 'local'
/** Latents 1-4 and 7 have no label; latents 1-5 have stored top examples in both datasets, 7 none. */
const UNLABELLED = new Set([1, 2, 3, 4, 7])

let app: ReturnType<typeof createApp>
/** The same datasets under an encoder without a single label (an SAE brought without labels). */
let bare: ReturnType<typeof createApp>
let ctx: AnalysisContext

before(async () => {
  const objects = new MemoryObjectStore()
  const datasets = new DatasetStore(objects)
  await writeMarkedDataset(objects, datasets, { tenant: TENANT, id: 'a', nDocs: 120, markerShare: 0.4, seed: 1 })
  await writeMarkedDataset(objects, datasets, { tenant: TENANT, id: 'b', nDocs: 120, markerShare: 0.1, seed: 2 })
  await writeMarkedDataset(objects, datasets, { tenant: TENANT, id: 'bare', nDocs: 60, markerShare: 0.1, seed: 3 })
  await writeMarkedTopExamples(objects, datasets, { tenant: TENANT, id: 'a' })
  await writeMarkedTopExamples(objects, datasets, { tenant: TENANT, id: 'b' })
  const [entry] = await markedCatalog().list()
  const labels = markedLabels().map((l, i) => (UNLABELLED.has(i) ? null : l))
  const encoders = new StaticEncoderCatalog([{ info: entry, labels }])
  app = createApp({
    objects,
    datasets,
    queue: {} as JobQueue<JobMessage>,
    encoders,
    mode: 'local',
    tenantOf: () => TENANT
  })
  ctx = { objects, datasets, encoders, embedder: new OfflineEmbedder(), tenant: TENANT, llm: null }
  bare = createApp({
    objects,
    datasets,
    queue: {} as JobQueue<JobMessage>,
    encoders: new StaticEncoderCatalog([{ info: { ...entry, labelled: 0 }, labels: labels.map(() => null) }]),
    mode: 'local',
    tenantOf: () => TENANT
  })
})

async function diff(query: string): Promise<DiffResult> {
  const res = await app.request(`/diff?${query}`)
  assert.equal(res.status, 200, query)
  return DiffResult.parse(await res.json())
}

test('a latent without a label gets its peak token from the side where it is more frequent; labelled ones none', async () => {
  const out = await diff('a=a&b=b&limit=24&direction=both')
  assert.equal(out.latents.length, 24)
  const marker = out.latents.find(l => l.latent === MARKED_LATENT)!
  assert.ok(marker.difference > 0.2, 'the marker latent fires more in a')
  assert.equal(marker.peak?.dataset, 'a')
  assert.equal(marker.peak?.token, MARKER)
  assert.equal(marker.peak?.count, 8)
  assert.equal(marker.peak?.examples, 8)
  assert.match(marker.peak?.window ?? '', new RegExp(`^\\.\\.\\..*\\b${MARKER}\\b.*\\.\\.\\.$`))
  for (const l of out.latents) {
    if (!UNLABELLED.has(l.latent)) {
      assert.ok(l.label, `latent ${l.latent} is labelled`)
      assert.equal('peak' in l, false, `latent ${l.latent}: a labelled latent gets no peak by default`)
    } else if (l.latent === 7) {
      assert.equal(l.peak, null, 'no stored examples: null')
    } else {
      assert.equal(l.peak?.dataset, l.difference >= 0 ? 'a' : 'b', `latent ${l.latent} (difference ${l.difference})`)
      assert.equal(l.peak?.token, markedWordOf(l.latent))
    }
  }
  // Some unlabelled latent is more frequent in b, so both sides' examples were read.
  assert.ok(out.latents.some(l => UNLABELLED.has(l.latent) && l.peak && l.difference < 0))
})

test('peaks=all describes labelled latents too; peaks=none reads statistics only; a dataset without examples gives null', async () => {
  const all = await diff('a=a&b=b&latents=5&limit=1&peaks=all')
  const five = all.latents.find(l => l.latent === 5)!
  assert.ok(five.label)
  assert.equal(five.peak?.token, markedWordOf(5))

  const none = await diff('a=a&b=b&limit=24&direction=both&peaks=none')
  assert.ok(none.latents.every(l => !('peak' in l)))

  const bare = await diff('a=bare&b=b&limit=24&direction=both')
  for (const l of bare.latents.filter(l => UNLABELLED.has(l.latent)))
    assert.equal(l.peak, l.difference >= 0 ? null : l.peak, `latent ${l.latent}: bare has no examples`)
  assert.ok(bare.latents.some(l => UNLABELLED.has(l.latent) && l.difference >= 0 && l.peak === null))

  const bad = await app.request('/diff?a=a&b=b&peaks=some')
  assert.equal(bad.status, 400)
  assert.match(String(((await bad.json()) as { detail?: string }).detail), /peaks/)
})

test('correlations and clusters describe their unlabelled latents by their peak in the dataset; labelled ones carry none', async () => {
  const corr = await computeCorrelations(ctx, CorrelationsQuery.parse(everyPairQuery('a')))
  const sides = corr.pairs.flatMap(p => [p.a, p.b])
  assert.ok(sides.some(x => x.latent === MARKED_LATENT))
  for (const x of sides) {
    if (!UNLABELLED.has(x.latent)) assert.equal('peak' in x, false, `latent ${x.latent} is labelled`)
    else if (x.latent === 7) assert.equal(x.peak, null)
    else assert.equal(x.peak?.token, markedWordOf(x.latent), `latent ${x.latent}`)
  }

  const clusters = await computeClusters(ctx, { dataset: 'a', k: 2, latents: [0, MARKED_LATENT, 2, 5, 7] })
  const refs = clusters.clusters.flatMap(c => c.latents)
  assert.equal(refs.find(l => l.latent === MARKED_LATENT)?.peak?.token, MARKER)
  assert.equal(refs.find(l => l.latent === 2)?.peak?.token, markedWordOf(2))
  for (const l of refs.filter(x => !UNLABELLED.has(x.latent))) assert.equal('peak' in l, false)
})

test('the document view: its unlabelled latents carry their peak, labelled ones a label source; peaks=all and none', async () => {
  const get = async (row: number, query = '') => {
    const res = await app.request(`/datasets/a/documents/${row}${query}`)
    assert.equal(res.status, 200)
    return DocumentView.parse(await res.json())
  }
  // A document where the marker fires, another unlabelled latent too, and labelled latent 5 (it has examples).
  let doc: DocumentView | undefined
  for (let row = 0; row < 120 && !doc; row++) {
    const d = await get(row)
    const present = new Set(d.latents.map(l => l.latent))
    const another = d.latents.some(l => l.latent !== MARKED_LATENT && UNLABELLED.has(l.latent))
    if (present.has(MARKED_LATENT) && present.has(5) && another) doc = d
  }
  assert.ok(doc, 'some document of a has the marker, another unlabelled latent and latent 5')
  for (const l of doc.latents) {
    if (!UNLABELLED.has(l.latent)) {
      assert.equal('peak' in l, false, `latent ${l.latent} is labelled`)
      assert.equal(l.labelSource, 'imported')
    } else if (l.latent === 7) assert.equal(l.peak, null, 'latent 7 has no stored examples')
    else assert.equal(l.peak?.token, markedWordOf(l.latent), `latent ${l.latent}`)
  }
  assert.ok(
    doc.latents.every((l, i) => i === 0 || doc.latents[i - 1].value >= l.value),
    'strongest first'
  )

  const all = await get(doc.row, '?peaks=all')
  for (const l of all.latents) assert.ok('peak' in l, `latent ${l.latent}`)
  assert.equal(all.latents.find(l => l.latent === 5)?.peak?.token, markedWordOf(5))
  const none = await get(doc.row, '?peaks=none')
  assert.ok(none.latents.every(l => !('peak' in l)))
  assert.deepEqual(
    none.latents.map(l => [l.latent, l.value, l.label]),
    doc.latents.map(l => [l.latent, l.value, l.label])
  )
  const bad = await app.request(`/datasets/a/documents/${doc.row}?peaks=some`)
  assert.equal(bad.status, 400)
})

test('a search by latents: those without a label say what they peak on, labelled ones carry none', async () => {
  const res = await app.request(`/search?dataset=a&latents=${MARKED_LATENT},5,7`)
  assert.equal(res.status, 200)
  const out = SearchResult.parse(await res.json())
  const of = (l: number) => out.latents.find(x => x.latent === l)!
  assert.equal(of(MARKED_LATENT).peak?.token, MARKER)
  assert.equal('peak' in of(5), false, 'latent 5 is labelled')
  assert.equal(of(7).peak, null, 'latent 7 has no stored examples')
})

test('readPeaks: null for a latent without examples and for a dataset written without them', async () => {
  const ds = (id: string) => ({ prefix: layout.datasetPrefix(TENANT, id), manifest: { topExamples: undefined } })
  const withExamples = { ...ds('a'), manifest: { topExamples: { key: layout.topExamples(), perLatent: 8 } } }
  const peaks = await readPeaks(ctx.objects, withExamples, [MARKED_LATENT, 7, MARKED_LATENT])
  assert.deepEqual([...peaks.keys()], [MARKED_LATENT, 7])
  assert.equal(peaks.get(MARKED_LATENT)?.token, MARKER)
  assert.equal(peaks.get(7), null)
  assert.deepEqual([...(await readPeaks(ctx.objects, ds('bare'), [MARKED_LATENT])).values()], [null])
})

test('an encoder without labels: every latent of a diff has its peak, and a search in words says how to label them offline', async () => {
  const res = await bare.request('/diff?a=a&b=b&limit=6&direction=both')
  assert.equal(res.status, 200)
  const out = DiffResult.parse(await res.json())
  for (const l of out.latents) {
    assert.equal(l.label, null)
    assert.ok('peak' in l, `latent ${l.latent}`)
    if (l.latent >= 1 && l.latent <= 5) assert.equal(l.peak?.token, markedWordOf(l.latent))
  }
  const search = await bare.request(`/search?dataset=a&q=${MARKER}`)
  assert.equal(search.status, 422)
  const problem = (await search.json()) as { code?: string; detail?: string }
  assert.match(String(problem.detail), /no latent labels.*method=bm25.*relabel.*"labeler": "offline"/)
})

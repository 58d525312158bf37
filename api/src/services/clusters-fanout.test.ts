/**
 * @module Tests of clusters past sampleMaxDocs: a job fitted on a sample and assigned in parts by one or two
 * consumers of one embedded queue gives the same answer as the in-process path, assigns every document, keeps the
 * sample's fitted clusters, and small datasets keep the exact path.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { analysisLayout } from '@latentbase/shared/contract/analysis-job'
import type { ClustersResult } from '@latentbase/shared/contract/clusters'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import { decodeFit, sampleRows } from '@latentbase/shared/analysis/clustering/assign'
import { purity } from '@latentbase/shared/analysis/clustering/synthetic'
import { syntheticCatalog, syntheticTopics, writeSyntheticDataset } from '../bench/synthetic-store.ts'
import { computeClusters } from './clusters-service.ts'
import { readResultPage } from './analysis-jobs.ts'
import { runLocalJob } from './local-job-runner.ts'
import { loadReadyDataset, readDocumentRange } from './ready-dataset.ts'
import { binarize } from '@latentbase/shared/analysis/clustering/jaccard'
import { clusterPartDocsFromEnv, rankBySize } from './clusters-fanout.ts'

const TENANT = 'local'
const N_LATENTS = 300
const N_DOCS = 1000
const encoders = syntheticCatalog('syn', N_LATENTS, syntheticTopics(N_LATENTS, 5, 12))
const embedder: Embedder = { id: 'none', dimensions: 1, embed: async texts => new Float32Array(texts.length) }

let dir: string
let objects: FsObjectStore
let datasets: DatasetStore
let topicOf: Int32Array

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'latentbase-clusters-fanout-'))
  objects = new FsObjectStore(join(dir, 'store'))
  datasets = new DatasetStore(objects)
  const written = await writeSyntheticDataset(
    objects,
    datasets,
    { tenant: TENANT, id: 'ds_big', encoderId: 'syn' },
    { nDocs: N_DOCS, nLatents: N_LATENTS, meanActive: 25, topics: 5, topicLatents: 12, topicRate: 0.8, seed: 9 }
  )
  topicOf = written.topicOf
})

after(async () => {
  await rm(dir, { recursive: true, force: true })
})

const ctx = () => ({ objects, datasets, encoders, embedder, tenant: TENANT })

async function runJob(request: Record<string, unknown>, consumers: number) {
  const { job, lines } = await runLocalJob(
    { dataDir: dir, objects, datasets, encoders, embedder, clusterPartDocs: 300 },
    { tenant: TENANT, analysis: 'clusters', dataset: 'ds_big', request, consumers }
  )
  const page = await readResultPage(objects, job, 0, 100_000)
  return { job, result: page.result as unknown as ClustersResult, lines }
}

const stable = ({ seconds: _s, ...rest }: ClustersResult) => rest

for (const method of ['spectral', 'kmeans'] as const) {
  test(`${method}: fitted on 200 of 1000 documents, assigned in 4 parts by 1 and 2 consumers: the same answer`, async () => {
    const request = { k: 5, method, seed: 3, sampleMaxDocs: 200 }
    const direct = await computeClusters(ctx(), { dataset: 'ds_big', ...request }, undefined, 300)
    const one = await runJob(request, 1)
    const two = await runJob(request, 2)
    assert.deepEqual(stable(one.result), stable(direct))
    assert.deepEqual(stable(two.result), stable(direct))

    const r = two.result
    assert.deepEqual(r.fit, { sample: 200, of: N_DOCS, parts: 4, assign: 'nearest-centroid' })
    assert.equal(r.documents, N_DOCS)
    assert.equal(r.assignments.length, N_DOCS, 'every document assigned')
    assert.ok(r.assignments.every(c => Number.isInteger(c) && c >= 0 && c < 5))
    assert.equal(
      r.clusters.reduce((s, c) => s + c.size, 0),
      N_DOCS,
      'sizes sum to the documents'
    )
    for (const c of r.clusters)
      assert.equal(c.size, r.assignments.filter(a => a === c.id).length, `size of cluster ${c.id}`)
    assert.equal(r.affinities, undefined, 'no affinities when fitted on a sample')
    // The sample's documents keep their fitted clusters (the fit stored beside the plan).
    const fit = decodeFit((await objects.get(analysisLayout.planData(TENANT, two.job.id)))!)
    assert.deepEqual(fit.rows, sampleRows(N_DOCS, 200, 3), 'the seeded sample')
    // Numbered by the whole dataset's sizes, largest first: the sample's clusters, perhaps renumbered one to one.
    r.clusters.forEach((c, i) => {
      assert.equal(c.id, i)
      if (i > 0) assert.ok(r.clusters[i - 1].size >= c.size, 'largest first')
    })
    const renumbered = new Map<number, number>()
    fit.rows.forEach((row, i) => {
      const was = renumbered.get(fit.assignments[i])
      if (was === undefined) renumbered.set(fit.assignments[i], r.assignments[row])
      else assert.equal(r.assignments[row], was, `sampled row ${row}`)
    })
    assert.equal(new Set(renumbered.values()).size, renumbered.size, 'one to one')
    // Central rows over every document: the 5 closest to the fitted centroid by cosine (binary rows), ties to the
    // lower row, counted here from the dataset's rows.
    const ds = await loadReadyDataset(datasets, TENANT, 'ds_big', 'dataset')
    const rows = binarize(await readDocumentRange(objects, ds, 0, N_DOCS), fit.latentOf)
    const m = fit.latentOf.length
    const fitted = new Map([...renumbered].map(([f, answer]) => [answer, f]))
    for (const c of r.clusters) {
      const f = fitted.get(c.id)!
      const freq = Array.from({ length: m }, (_, t) => fit.counts.inCounts[f * m + t] / fit.counts.sizes[f])
      const norm = Math.hypot(...freq)
      const scored: Array<[number, number]> = []
      for (let row = 0; row < N_DOCS; row++) {
        const n = rows.indptr[row + 1] - rows.indptr[row]
        if (r.assignments[row] !== c.id || !n) continue
        let dot = 0
        for (let p = rows.indptr[row]; p < rows.indptr[row + 1]; p++) dot += freq[rows.cols[p]]
        scored.push([dot / norm / Math.sqrt(n), row])
      }
      scored.sort((x, y) => y[0] - x[0] || x[1] - y[1])
      const expected = scored.slice(0, 5).map(x => x[1])
      assert.deepEqual(c.central, expected, `central rows of cluster ${c.id}`)
      assert.ok(
        c.central.some(row => !fit.rows.includes(row)),
        'not only sampled documents'
      )
    }
    // The extension finds the planted topics.
    assert.ok(purity(r.assignments, topicOf) > 0.9, `purity ${purity(r.assignments, topicOf)}`)
    const partials = (await objects.list(analysisLayout.parts(TENANT, two.job.id))).filter(o =>
      /partial-\d+\.bin$/.test(o.key)
    )
    assert.equal(partials.length, 4, 'one stored partial per part')
    assert.equal(two.lines.filter(l => / part \d of 4 in /.test(l)).length, 4, 'each part assigned once')
    assert.equal(two.lines.filter(l => /4 parts merged: ready/.test(l)).length, 1, 'one merge')
  })
}

test('at or under sampleMaxDocs the exact path answers: no plan, no fit, affinities as before', async () => {
  const request = { k: 5, method: 'kmeans' as const, seed: 3, sampleMaxDocs: N_DOCS }
  const direct = await computeClusters(ctx(), { dataset: 'ds_big', ...request })
  assert.equal(direct.fit, undefined)
  assert.equal(direct.affinities?.length, N_DOCS)
  const { job, result } = await runJob(request, 1)
  assert.deepEqual(stable(result), stable(direct))
  assert.equal(await objects.head(analysisLayout.plan(TENANT, job.id)), null, 'nothing fanned out')
})

test('the part size is configured by environment, with a clear error', () => {
  assert.equal(clusterPartDocsFromEnv({}), 50_000)
  assert.equal(clusterPartDocsFromEnv({ LATENTBASE_CLUSTER_PART_DOCS: '1000' }), 1000)
  assert.throws(() => clusterPartDocsFromEnv({ LATENTBASE_CLUSTER_PART_DOCS: '0' }), /whole number >= 1/)
})

test('clusters are renumbered by their sizes over the whole dataset, largest first, ties in their fitted order', () => {
  assert.deepEqual(Array.from(rankBySize([10, 40, 40, 5])), [2, 0, 1, 3])
  assert.deepEqual(Array.from(rankBySize([3, 2, 1])), [0, 1, 2])
  assert.deepEqual(Array.from(rankBySize([])), [])
})

test('a slice past sampleMaxDocs: fitted on a sample of its rows, its rows assigned in parts by a job as in process', async () => {
  const request = { k: 3, method: 'kmeans' as const, seed: 4, sampleMaxDocs: 200, where: 'metadata.topic < 3' }
  const sliceRows = Int32Array.from(topicOf.keys()).filter(row => topicOf[row] < 3)
  const S = sliceRows.length
  assert.ok(S > 400, `the slice holds ${S} documents`)
  const direct = await computeClusters(ctx(), { dataset: 'ds_big', ...request }, undefined, 300)
  const job = await runJob(request, 2)
  assert.deepEqual(stable(job.result), stable(direct))
  const r = job.result
  assert.deepEqual(r.fit, { sample: 200, of: S, parts: Math.ceil(S / 300), assign: 'nearest-centroid' })
  assert.equal(r.where, 'metadata.topic < 3')
  assert.equal(r.documents, S)
  assert.deepEqual(r.rows, Array.from(sliceRows), 'the slice rows, assignments[i] being row rows[i]')
  assert.equal(r.assignments.length, S)
  assert.equal(
    r.clusters.reduce((s, c) => s + c.size, 0),
    S
  )
  // The sample is drawn among the slice's rows (indexes into them), and its documents keep their fitted clusters.
  const fit = decodeFit((await objects.get(analysisLayout.planData(TENANT, job.job.id)))!)
  assert.deepEqual(fit.rows, sampleRows(S, 200, 4))
  const renumbered = new Map<number, number>()
  fit.rows.forEach((i, s) => {
    const was = renumbered.get(fit.assignments[s])
    if (was === undefined) renumbered.set(fit.assignments[s], r.assignments[i])
    else assert.equal(r.assignments[i], was, `sampled slice row ${i}`)
  })
  // Central rows are dataset rows of the slice.
  const inSlice = new Set(sliceRows)
  for (const c of r.clusters) {
    assert.ok(c.central.length > 0)
    for (const row of c.central) assert.ok(inSlice.has(row), `central row ${row} is in the slice`)
  }
  assert.ok(
    purity(
      r.assignments,
      Int32Array.from(sliceRows, row => topicOf[row])
    ) > 0.9
  )
})

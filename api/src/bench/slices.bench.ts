/**
 * @module `npm run bench:slices`: what a slice costs against the whole dataset, on a synthetic store (files on disk):
 * diff (independent, paired and length-controlled designs), latent page, latents list and correlations on a whole dataset, on a 50%
 * metadata slice (from the facets, and counted from its rows), and on a latent slice.
 *
 * Usage: node --import tsx api/src/bench/slices.bench.ts [--docs 10000] [--latents 16384] [--active 300]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { clearShardMetadataCache } from '@latentbase/shared/store/parquet/read'
import { DiffQuery } from '@latentbase/shared/contract/diff'
import { LatentPageQuery } from '@latentbase/shared/contract/latents'
import { CorrelationsQuery } from '@latentbase/shared/contract/correlations'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import type { AnalysisContext } from '../services/context.ts'
import { runDiff } from '../services/diff-service.ts'
import { getLatentPage } from '../services/latent-page-service.ts'
import { listLatents } from '../services/latent-list-service.ts'
import { computeCorrelations } from '../services/correlations-service.ts'
import { syntheticCatalog, syntheticTopics, writeSyntheticDataset } from './synthetic-store.ts'

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback
}
const N_DOCS = Number(arg('docs', '10000'))
const N_LATENTS = Number(arg('latents', '16384'))
const ACTIVE = Number(arg('active', '300'))
const TOPICS = 20

async function timed<T>(fn: () => Promise<T>, repeats = 5): Promise<{ value: T; cold: number; warm: number }> {
  clearShardMetadataCache()
  let t = performance.now()
  const value = await fn()
  const cold = performance.now() - t
  const warm: number[] = []
  for (let i = 0; i < repeats; i++) {
    t = performance.now()
    await fn()
    warm.push(performance.now() - t)
  }
  warm.sort((a, b) => a - b)
  return { value, cold, warm: warm[warm.length >> 1] }
}
const ms = (x: number) => `${x.toFixed(0)} ms`
function report(label: string, r: { cold: number; warm: number }, extra = ''): void {
  console.log(`  ${label.padEnd(64)} first ${ms(r.cold).padStart(8)}  median ${ms(r.warm).padStart(8)}  ${extra}`)
}

const root = await mkdtemp(join(tmpdir(), 'latentbase-slices-bench-'))
try {
  const objects = new FsObjectStore(root)
  const datasets = new DatasetStore(objects)
  const tenant = 'bench'
  const encoderId = `synthetic-${N_LATENTS}`
  const encoders = syntheticCatalog(encoderId, N_LATENTS, syntheticTopics(N_LATENTS, TOPICS, 40))
  const ctx: AnalysisContext = { objects, datasets, encoders, embedder: new OfflineEmbedder(), tenant }
  console.log(
    `slices benchmark: ${N_DOCS.toLocaleString('en')} documents x ${N_LATENTS.toLocaleString('en')} latents, ~${ACTIVE} active per document; store in ${root}`
  )
  const spec = { nDocs: N_DOCS, nLatents: N_LATENTS, meanActive: ACTIVE, topics: TOPICS, topicLatents: 40 }
  const a = await writeSyntheticDataset(objects, datasets, { tenant, id: 'a', encoderId }, { ...spec, seed: 1 })
  await writeSyntheticDataset(objects, datasets, { tenant, id: 'b', encoderId }, { ...spec, topicRate: 0.3, seed: 2 })
  const half = `metadata.topic < ${TOPICS / 2}`
  const inHalf = a.topicOf.filter(t => t < TOPICS / 2).length
  // A topic latent: fires in ~60% of one topic's documents (~3% of the dataset).
  const latent = a.topicLatents[0][0]

  const whole = await timed(() => runDiff(ctx, DiffQuery.parse({ a: 'a', b: 'b' })))
  report(
    'diff a vs b, whole datasets (stats files)',
    whole,
    `${whole.value.a.documents} vs ${whole.value.b[0].documents} documents`
  )
  const halfDiff = await timed(() => runDiff(ctx, DiffQuery.parse({ a: 'a', aWhere: half, b: 'b', bWhere: half })))
  report(
    `diff a vs b, 50% slices (${half}; from the facets)`,
    halfDiff,
    `${halfDiff.value.a.documents} (${((100 * inHalf) / N_DOCS).toFixed(0)}%) vs ${halfDiff.value.b[0].documents} documents`
  )
  // A token condition keeps the facets from answering: the same documents, counted from their rows.
  const byRows = `${half} and tokens >= 0`
  const halfRows = await timed(() => runDiff(ctx, DiffQuery.parse({ a: 'a', aWhere: byRows, b: 'b', bWhere: byRows })))
  report('the same slices counted from their rows (by-latent sidecars)', halfRows)
  const oneDs = await timed(() =>
    runDiff(ctx, DiffQuery.parse({ a: 'a', aWhere: half, b: 'a', bWhere: `not (${half})` }))
  )
  report('diff of two halves of one dataset (facets)', oneDs)
  const oneDsRows = await timed(() =>
    runDiff(ctx, DiffQuery.parse({ a: 'a', aWhere: byRows, b: 'a', bWhere: `not (${half}) and tokens >= 0` }))
  )
  report('the same halves counted from their rows (one pass)', oneDsRows)
  const latentDiff = await timed(() =>
    runDiff(ctx, DiffQuery.parse({ a: 'a', aWhere: `latent ${latent}`, b: 'a', bWhere: `not latent ${latent}` }))
  )
  report(
    `diff latent ${latent} present vs absent, one dataset`,
    latentDiff,
    `${latentDiff.value.a.documents} vs ${latentDiff.value.b[0].documents} documents`
  )

  const paired = await timed(() => runDiff(ctx, DiffQuery.parse({ a: 'a', b: 'b', pairBy: 'item' })), 2)
  report('diff a vs b, paired by metadata.item', paired, `${paired.value.pairs} pairs`)
  const stratified = await timed(() => runDiff(ctx, DiffQuery.parse({ a: 'a', b: 'b', controlLength: 'true' })), 2)
  report('diff a vs b, length-controlled (5 strata)', stratified, `${stratified.value.tested} latents tested`)
  const stratifiedHalves = await timed(
    () =>
      runDiff(ctx, DiffQuery.parse({ a: 'a', aWhere: half, b: 'a', bWhere: `not (${half})`, controlLength: 'true' })),
    2
  )
  report('diff of the two halves of one dataset, length-controlled', stratifiedHalves)

  const page = await timed(() => getLatentPage(ctx, latent, LatentPageQuery.parse({ dataset: 'a', examples: '0' })))
  report(`latent page ${latent}, whole dataset (stats row)`, page)
  const pageHalf = await timed(() =>
    getLatentPage(ctx, latent, LatentPageQuery.parse({ dataset: 'a', examples: '0', where: half }))
  )
  report(`latent page ${latent}, 50% slice (its by-latent pages)`, pageHalf)

  const list = await timed(() => listLatents(ctx, { dataset: 'a', limit: 50 }))
  report('latents list, whole dataset (3 columns of the statistics file)', list, `${list.value.total} latents`)
  const listHalf = await timed(() => listLatents(ctx, { dataset: 'a', where: half, limit: 50 }))
  report('latents list, 50% slice (one pass over the by-latent sidecars)', listHalf, `${listHalf.value.total} latents`)
  const listLatent = await timed(() => listLatents(ctx, { dataset: 'a', where: `latent ${latent}`, limit: 50 }))
  report(
    `latents list, slice latent ${latent}`,
    listLatent,
    `${listLatent.value.documents} documents, ${listLatent.value.total} latents`
  )

  const corrQuery = { dataset: 'a', maxLabelSimilarity: '1' }
  const corr = await timed(() => computeCorrelations(ctx, CorrelationsQuery.parse(corrQuery)), 1)
  report('correlations, whole dataset', corr, `${corr.value.pairs.length} pairs`)
  const corrHalf = await timed(
    () => computeCorrelations(ctx, CorrelationsQuery.parse({ ...corrQuery, where: half })),
    1
  )
  report('correlations, 50% slice', corrHalf, `${corrHalf.value.pairs.length} pairs`)
} finally {
  await rm(root, { recursive: true, force: true })
}

/**
 * @module `npm run bench` (analyses): synthetic stores with realistic statistics, then diff, correlations, search,
 * clustering and peak memory, and the same counting work in DuckDB over the same Parquet files, with the ratio.
 *
 * Usage: node --import tsx api/src/bench/analyses.bench.ts [--docs 10000,100000] [--latents 16384,65536]
 *        [--active 300] [--queries 20] [--cluster-max 10000] [--pairs 200]
 * Env: BENCH_DOCS, BENCH_LATENTS, BENCH_ACTIVE (same meaning). Default: 10,000 documents for a 16k- and a 65k-latent
 * SAE (a few minutes on 2 cores); add 100000 to --docs for the 100k figures (several more minutes and ~2-3 GB).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { clearShardMetadataCache } from '@latentbase/shared/store/parquet/read'
import { readByDocument } from '@latentbase/shared/store/latent-shards/read-by-document'
import { readByLatent } from '@latentbase/shared/store/latent-shards/read-by-latent'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import type { PooledCsc, PooledCsr } from '@latentbase/shared/analysis/sparse'
import { cooccurrence } from '@latentbase/shared/analysis/cooccurrence'
import { DiffQuery } from '@latentbase/shared/contract/diff'
import { CorrelationsQuery } from '@latentbase/shared/contract/correlations'
import { SearchQuery } from '@latentbase/shared/contract/search'
import { ClustersRequest } from '@latentbase/shared/contract/clusters'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import type { AnalysisContext } from '../services/context.ts'
import { runDiff } from '../services/diff-service.ts'
import { computeCorrelations } from '../services/correlations-service.ts'
import { computeClusters } from '../services/clusters-service.ts'
import { runSearch } from '../services/search-service.ts'
import { syntheticCatalog, syntheticTopics, writeSyntheticDataset, type SyntheticDataset } from './synthetic-store.ts'

function arg(name: string, env: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : (process.env[env] ?? fallback)
}
const list = (s: string) =>
  s
    .split(',')
    .map(x => Number(x.trim()))
    .filter(x => x > 0)
const DOCS = list(arg('docs', 'BENCH_DOCS', '10000'))
const LATENTS = list(arg('latents', 'BENCH_LATENTS', '16384,65536'))
const ACTIVE = Number(arg('active', 'BENCH_ACTIVE', '300'))
const QUERIES = Number(arg('queries', 'BENCH_QUERIES', '20'))
const CLUSTER_MAX = Number(arg('cluster-max', 'BENCH_CLUSTER_MAX', '10000'))
const PAIR_LATENTS = Number(arg('pairs', 'BENCH_PAIRS', '200'))
const TOPICS = 20
const TOPIC_LATENTS = 40

/** The RSS high-water mark, sampled every 20 ms (plus at each phase boundary); reset per phase. */
class PeakRss {
  peak = 0
  private timer = setInterval(() => this.sample(), 20)
  sample(): number {
    const r = process.memoryUsage().rss
    if (r > this.peak) this.peak = r
    return r
  }
  reset(): void {
    this.peak = 0
    this.sample()
  }
  stop(): void {
    clearInterval(this.timer)
  }
}
const rss = new PeakRss()
const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MB`

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; peak: number }> {
  rss.reset()
  const t = performance.now()
  const value = await fn()
  const ms = performance.now() - t
  rss.sample()
  return { value, ms, peak: rss.peak }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2 : NaN
}

/** Latents spread over the frequency ranks (every n-th of those present), so the self-join is neither trivial nor dominated by the densest. */
function spreadLatents(docCount: Int32Array, n: number): Int32Array {
  const present = Array.from(docCount.keys())
    .filter(l => docCount[l] > 0)
    .sort((a, b) => docCount[b] - docCount[a] || a - b)
  const step = Math.max(1, Math.floor(present.length / n))
  return Int32Array.from(present.filter((_, i) => i % step === 0).slice(0, n)).sort()
}

/** Rows from columns by a counting transpose: visiting latents in order leaves every row sorted by latent. */
function csrOfColumns(csc: PooledCsc): PooledCsr {
  const nnz = csc.docs.length
  const indptr = new Int32Array(csc.nDocs + 1)
  for (let k = 0; k < nnz; k++) indptr[csc.docs[k] + 1]++
  for (let i = 0; i < csc.nDocs; i++) indptr[i + 1] += indptr[i]
  const fill = indptr.slice(0, csc.nDocs)
  const latents = new Int32Array(nnz),
    values = new Float32Array(nnz),
    positions = new Int32Array(nnz)
  for (let j = 0; j < csc.nLatents; j++) {
    for (let k = csc.indptr[j]; k < csc.indptr[j + 1]; k++) {
      const at = fill[csc.docs[k]]++
      latents[at] = j
      values[at] = csc.values[k]
      positions[at] = csc.positions[k]
    }
  }
  return { nDocs: csc.nDocs, nLatents: csc.nLatents, indptr, latents, values, positions }
}

interface Row {
  label: string
  value: string
}
const rows: Row[] = []
function report(label: string, value: string): void {
  rows.push({ label, value })
  console.log(`  ${label.padEnd(58)} ${value}`)
}

const root = await mkdtemp(join(tmpdir(), 'latentbase-bench-'))
const objects = new FsObjectStore(root)
const datasets = new DatasetStore(objects)
const tenant = 'bench'
const embedder = new OfflineEmbedder()
const duck = await DuckDBInstance.create(':memory:', { threads: '2' })
const conn = await duck.connect()
console.log(
  `analyses benchmark: documents ${DOCS.join(', ')} x latents ${LATENTS.join(', ')}; ~${ACTIVE} active latents per document; store in ${root}`
)

try {
  for (const nLatents of LATENTS) {
    const topics = syntheticTopics(nLatents, TOPICS, TOPIC_LATENTS)
    const encoderId = `synthetic-${nLatents}`
    const encoders = syntheticCatalog(encoderId, nLatents, topics)
    const ctx: AnalysisContext = { objects, datasets, encoders, embedder, tenant }
    for (const nDocs of DOCS) {
      console.log(`\n== ${nDocs.toLocaleString('en')} documents x ${nLatents.toLocaleString('en')} latents`)
      const a = `a_${nDocs}_${nLatents}`
      const b = `b_${nDocs}_${nLatents}`
      const genA = await timed(() =>
        writeSyntheticDataset(
          objects,
          datasets,
          { tenant, id: a, encoderId },
          { nDocs, nLatents, meanActive: ACTIVE, topics: TOPICS, topicLatents: TOPIC_LATENTS, seed: 1 }
        )
      )
      const genB = await timed(() =>
        writeSyntheticDataset(
          objects,
          datasets,
          { tenant, id: b, encoderId },
          { nDocs, nLatents, meanActive: ACTIVE, topics: TOPICS, topicLatents: TOPIC_LATENTS, topicRate: 0.3, seed: 2 }
        )
      )
      const dsA: SyntheticDataset = genA.value
      report(
        'store: nnz / active per document (A)',
        `${dsA.nnz.toLocaleString('en')} / ${(dsA.nnz / nDocs).toFixed(0)}`
      )
      report(
        'store: generate + write both datasets',
        `${((genA.ms + genB.ms) / 1000).toFixed(1)} s (peak ${mb(Math.max(genA.peak, genB.peak))})`
      )
      clearShardMetadataCache()

      // Diff: counts from the statistics files only, so its time should not grow with the documents.
      const diffQuery = DiffQuery.parse({ a, b })
      const diffCold = await timed(() => runDiff(ctx, diffQuery))
      const diffWarm: number[] = []
      for (let i = 0; i < 5; i++) diffWarm.push((await timed(() => runDiff(ctx, diffQuery))).ms)
      report(
        'diff (A vs B): first / median of 5',
        `${diffCold.ms.toFixed(0)} ms / ${median(diffWarm).toFixed(0)} ms (peak ${mb(diffCold.peak)})`
      )

      const corr = await timed(() => computeCorrelations(ctx, CorrelationsQuery.parse({ dataset: a })))
      report(
        'correlations (defaults)',
        `${(corr.ms / 1000).toFixed(2)} s, ${corr.value.latentsConsidered} latents, ${corr.value.pairsCounted.toLocaleString('en')} pairs counted, ${corr.value.pairs.length} kept (peak ${mb(corr.peak)})`
      )
      // The planted topic latents have near-identical synthetic labels, which the default label filter rightly drops
      // as redundant: the planted-pair check runs with the label filter off. Synthetic values are drawn alike for
      // topic and background latents (strength carries no signal here), so it binarizes as the paper does (value > 0).
      const corrAll = await timed(() =>
        computeCorrelations(
          ctx,
          CorrelationsQuery.parse({ dataset: a, maxLabelSimilarity: '1', minActivation: '0', limit: '50' })
        )
      )
      const topicOf = new Map<number, number>()
      topics.forEach((ls, t) => {
        ls.forEach(l => {
          topicOf.set(l, t)
        })
      })
      const top = corrAll.value.pairs
      const plantedTop = top.filter(
        p => topicOf.has(p.a.latent) && topicOf.get(p.a.latent) === topicOf.get(p.b.latent)
      ).length
      report(
        'correlations, value > 0, label filter off: planted pairs in top 50',
        `${plantedTop} / ${top.length} (${(corrAll.ms / 1000).toFixed(2)} s)`
      )

      // Search: warm p50 over queries naming a planted topic (the labels and texts carry the topic word).
      const queries = Array.from({ length: QUERIES }, (_, i) => {
        const t = i % TOPICS
        const label = encoders.labels(encoderId).then(ls => ls[topics[t][0]] ?? '')
        return { t, label }
      })
      for (const method of ['sae', 'bm25', 'hybrid'] as const) {
        const times: number[] = []
        let first = 0
        let peak = 0
        let hits = 0
        for (let i = 0; i < queries.length; i++) {
          const q = (await queries[i].label).replace(/ aspect \d+$/, '')
          const r = await timed(() => runSearch(ctx, SearchQuery.parse({ dataset: a, q, method, limit: 20 })))
          if (i === 0) first = r.ms
          else times.push(r.ms)
          peak = Math.max(peak, r.peak)
          hits += r.value.results.filter(h => dsA.topicOf[h.row] === queries[i].t).length
        }
        report(
          `search ${method}: first / p50 of ${times.length}`,
          `${first.toFixed(0)} ms / ${median(times).toFixed(1)} ms, precision@20 ${(hits / (20 * queries.length)).toFixed(2)} (peak ${mb(peak)})`
        )
      }

      if (nDocs <= CLUSTER_MAX) {
        const cl = await timed(() =>
          computeClusters(ctx, ClustersRequest.parse({ dataset: a, k: TOPICS, seed: 1, affinityTop: 0 }))
        )
        const sizes = new Map<string, number>()
        for (let i = 0; i < nDocs; i++) {
          const key = `${cl.value.assignments[i]}:${dsA.topicOf[i]}`
          sizes.set(key, (sizes.get(key) ?? 0) + 1)
        }
        const best = new Map<number, number>()
        for (const [key, n] of sizes) {
          const c = Number(key.split(':')[0])
          best.set(c, Math.max(best.get(c) ?? 0, n))
        }
        const purity = [...best.values()].reduce((s, n) => s + n, 0) / nDocs
        report(
          `clustering (k=${TOPICS}, ${cl.value.method}, ${cl.value.similarity})`,
          `${(cl.ms / 1000).toFixed(2)} s, purity vs planted topics ${purity.toFixed(2)} (peak ${mb(cl.peak)})`
        )
      }

      // The same counting work in DuckDB and in our code, over the same Parquet files.
      const dir = join(root, layout.datasetPrefix(tenant, a))
      const byLatentGlob = join(dir, 'latents/by-latent/*.parquet')
      const duckCounts = await timed(async () =>
        (
          await conn.runAndReadAll(`SELECT latent, count(*) AS n FROM read_parquet('${byLatentGlob}') GROUP BY latent`)
        ).getRows()
      )
      const manifest = (await datasets.getManifest(tenant, a))!
      const prefix = layout.datasetPrefix(tenant, a)
      const ourScan = await timed(async () => {
        clearShardMetadataCache()
        const csr = await readByDocument(objects, prefix, manifest.latents.byDocument, undefined, { nDocs, nLatents })
        const counts = new Int32Array(nLatents)
        for (let k = 0; k < csr.latents.length; k++) counts[csr.latents[k]]++
        return counts
      })
      const ourStats = await timed(() => readLatentStats(objects, prefix + manifest.stats.key, ['doc_count']))
      let agree = duckCounts.value.length === ourScan.value.filter(c => c > 0).length
      for (const [l, n] of duckCounts.value)
        if (ourScan.value[Number(l)] !== Number(n) || ourStats.value.docCount[Number(l)] !== Number(n)) agree = false
      report('per-latent counts: DuckDB GROUP BY', `${duckCounts.ms.toFixed(0)} ms`)
      report(
        'per-latent counts: ours, scanning the by-document Parquet',
        `${ourScan.ms.toFixed(0)} ms -> DuckDB/ours ${(duckCounts.ms / ourScan.ms).toFixed(2)}x (peak ${mb(ourScan.peak)})`
      )
      report(
        'per-latent counts: ours, from the statistics file',
        `${ourStats.ms.toFixed(0)} ms -> DuckDB/ours ${(duckCounts.ms / ourStats.ms).toFixed(1)}x; counts ${agree ? 'identical' : 'DIFFER'}`
      )

      const chosen = spreadLatents(ourStats.value.docCount, PAIR_LATENTS)
      const inList = Array.from(chosen).join(',')
      const duckPairs = await timed(async () =>
        (
          await conn.runAndReadAll(
            `WITH s AS (SELECT doc, latent FROM read_parquet('${byLatentGlob}') WHERE latent IN (${inList}))
         SELECT x.latent AS a, y.latent AS b, count(*) AS n FROM s x JOIN s y ON x.doc = y.doc AND x.latent < y.latent GROUP BY 1, 2`
          )
        ).getRows()
      )
      let readMs = 0
      const ourPairs = await timed(async () => {
        clearShardMetadataCache()
        const t0 = performance.now()
        const csc = await readByLatent(objects, prefix, manifest.latents.byLatent, chosen, { nDocs, nLatents })
        readMs = performance.now() - t0
        return cooccurrence(csrOfColumns(csc), {
          minFrequency: 0,
          maxFrequency: 1,
          minCount: 1,
          minNpmi: -1,
          dropAdjacent: false,
          maxCandidates: 1e7
        })
      })
      const ours = new Map<string, number>()
      const t = ourPairs.value.pairs
      for (let i = 0; i < t.length; i++) ours.set(`${Math.min(t.a[i], t.b[i])}:${Math.max(t.a[i], t.b[i])}`, t.count[i])
      let pairsAgree = duckPairs.value.length === ours.size
      for (const [x, y, n] of duckPairs.value) if (ours.get(`${x}:${y}`) !== Number(n)) pairsAgree = false
      report(
        `pair counts of ${chosen.length} latents: DuckDB self-join`,
        `${duckPairs.ms.toFixed(0)} ms, ${duckPairs.value.length.toLocaleString('en')} pairs`
      )
      report(
        `pair counts of ${chosen.length} latents: ours (planned read + cooccurrence)`,
        `${ourPairs.ms.toFixed(0)} ms (read ${readMs.toFixed(0)}) -> DuckDB/ours ${(duckPairs.ms / ourPairs.ms).toFixed(2)}x; counts ${pairsAgree ? 'identical' : 'DIFFER'} (peak ${mb(ourPairs.peak)})`
      )

      // Free the next size's memory: these datasets are not read again.
      await datasets.deleteDataset(tenant, a)
      await datasets.deleteDataset(tenant, b)
      clearShardMetadataCache()
    }
  }
  console.log(`\npeak RSS of the whole run: ${mb(process.resourceUsage().maxRSS * 1024)}`)
} finally {
  rss.stop()
  conn.closeSync()
  duck.closeSync()
  await rm(root, { recursive: true, force: true })
}

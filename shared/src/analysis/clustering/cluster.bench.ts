/**
 * @module Clustering benchmark: seconds and peak memory of targeted clustering on a synthetic store with realistic
 * statistics (Zipf-like latent frequencies, ~500 active latents per document, planted topic groups).
 * Run: node --import tsx shared/src/analysis/clustering/cluster.bench.ts [docs=10000] [latents=16384] [k=10] [mode] [latents]
 * mode: spectral (sqrt-idf cosine, the default), jaccard (exact Jaccard up to 20k documents, a kNN graph above), knn
 * (the Jaccard kNN graph, forced), kmeans. latents: all, or targeted
 * (the planted latents plus 100 background ones, as phrases would choose them).
 */
import type { PooledCsr } from '../sparse.ts'
import { binarize } from './jaccard.ts'
import { clusterDocuments, describeClusters } from './cluster.ts'
import { seededRng } from '../../util/random.ts'
import { purity } from './synthetic.ts'

/**
 * Background latents with frequency ∝ 1/(rank + 10) scaled to `active` per document (capped at 0.95), plus `groups`
 * planted groups of 40 latents each present with probability 0.3 in their group's documents.
 */
export function zipfCsr(
  nDocs: number,
  nLatents: number,
  active: number,
  groups: number,
  seed = 1
): { csr: PooledCsr; truth: Int32Array } {
  const rng = seededRng(seed)
  const planted = groups * 40
  const truth = Int32Array.from({ length: nDocs }, () => rng.int(groups))
  const raw = Float64Array.from({ length: nLatents - planted }, (_, r) => 1 / (r + 10))
  const target = active - 40 * 0.3
  let scale = target / raw.reduce((s, x) => s + x, 0)
  for (let it = 0; it < 50; it++) {
    const sum = raw.reduce((s, x) => s + Math.min(0.95, x * scale), 0)
    scale *= target / sum
  }
  const everyDoc = Int32Array.from({ length: nDocs }, (_, i) => i)
  const docsOf: Int32Array[] = []
  const counts = new Int32Array(nDocs)
  const byGroup: number[][] = Array.from({ length: groups }, () => [])
  for (let i = 0; i < nDocs; i++) byGroup[truth[i]].push(i)
  for (let l = 0; l < nLatents; l++) {
    const list: number[] = []
    const walk = (candidates: ArrayLike<number>, p: number) => {
      // Geometric skips: the documents of a latent in O(its document frequency).
      const lq = Math.log(1 - p)
      for (let at = -1; ; ) {
        at += 1 + (p >= 1 ? 0 : Math.floor(Math.log(1 - rng.next()) / lq))
        if (at >= candidates.length) break
        list.push(candidates[at])
      }
    }
    if (l < planted) walk(byGroup[Math.floor(l / 40)], 0.3)
    else walk(everyDoc, Math.min(0.95, raw[l - planted] * scale))
    const docs = Int32Array.from(list)
    docsOf.push(docs)
    for (const d of docs) counts[d]++
  }
  const indptr = new Int32Array(nDocs + 1)
  for (let i = 0; i < nDocs; i++) indptr[i + 1] = indptr[i] + counts[i]
  const fill = indptr.slice(0, nDocs)
  const latents = new Int32Array(indptr[nDocs])
  for (let l = 0; l < nLatents; l++) for (const d of docsOf[l]) latents[fill[d]++] = l
  const values = new Float32Array(latents.length).fill(1)
  return {
    csr: { nDocs, nLatents, indptr, latents, values, positions: new Int32Array(latents.length).fill(-1) },
    truth
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const nDocs = Number(process.argv[2] ?? 10_000)
  const nLatents = Number(process.argv[3] ?? 16_384)
  const k = Number(process.argv[4] ?? 10)
  const mode = process.argv[5] ?? 'spectral'
  const selection = process.argv[6] ?? 'all'
  let t = performance.now()
  const { csr, truth } = zipfCsr(nDocs, nLatents, 500, k)
  const genS = (performance.now() - t) / 1000
  const rssBefore = process.memoryUsage().rss
  t = performance.now()
  const cpu = process.cpuUsage()
  // Targeted: the planted latents plus 100 background latents, as phrases would choose them (never only the right ones).
  const pick = seededRng(7)
  const targeted =
    selection === 'targeted'
      ? [
          ...Array.from({ length: k * 40 }, (_, l) => l),
          ...Array.from({ length: 100 }, () => k * 40 + pick.int(nLatents - k * 40))
        ]
      : null
  const rows = binarize(csr, targeted)
  const out = clusterDocuments(rows, {
    k,
    seed: 1,
    method: mode === 'kmeans' ? 'kmeans' : 'spectral',
    similarity: mode === 'jaccard' || mode === 'knn' ? 'jaccard' : 'cosine',
    ...(mode === 'knn' ? { exactMaxDocs: 0 } : {})
  })
  const clusterS = (performance.now() - t) / 1000
  const clusterCpuS = process.cpuUsage(cpu).user / 1e6
  t = performance.now()
  describeClusters(rows, out.assignments, k, [])
  const describeS = (performance.now() - t) / 1000
  const maxRssMb = process.resourceUsage().maxRSS / 1024
  console.log(
    JSON.stringify({
      documents: nDocs,
      latents: nLatents,
      nnz: csr.latents.length,
      meanActive: +(csr.latents.length / nDocs).toFixed(1),
      k,
      mode,
      selection,
      similarity: out.similarity,
      generateSeconds: +genS.toFixed(2),
      clusterSeconds: +clusterS.toFixed(2),
      clusterCpuSeconds: +clusterCpuS.toFixed(2),
      matvecs: out.matvecs,
      describeSeconds: +describeS.toFixed(2),
      stages: Object.fromEntries(Object.entries(out.seconds).map(([a, b]) => [a, +b.toFixed(2)])),
      eigenvalues: out.eigenvalues && Array.from(out.eigenvalues, v => +v.toFixed(4)),
      components: out.components,
      purity: +purity(out.assignments, truth).toFixed(3),
      rssBeforeMb: Math.round(rssBefore / 2 ** 20),
      peakRssMb: Math.round(maxRssMb)
    })
  )
}

/** @module Targeted clustering of documents over binarized latents: cosine or Jaccard + spectral (or spherical k-means), per-document affinities, cluster descriptions. */
import { diffLatents } from '../diff.ts'
import {
  components,
  jaccardDense,
  jaccardKnn,
  packedRow,
  postingsOf,
  type BinaryRows,
  type SparseGraph
} from './jaccard.ts'
import { cosineOperator, latentWeights, type CosineOperator } from './cosine.ts'
import { lanczosTop, type MatVec } from './lanczos.ts'
import { kmeansBinaryCosine, kmeansDense } from './kmeans.ts'
import { countClusterLatents, type ClusterCounts } from './assign.ts'

export type ClusterMethod = 'spectral' | 'kmeans'
/**
 * Spectral clustering's similarity. cosine: of the rows weighted by sqrt(idf), applied as products and never formed
 * (any number of documents); jaccard: the paper's, exact up to exactMaxDocs documents, a kNN graph above.
 */
export type SpectralSimilarity = 'cosine' | 'jaccard'

export interface ClusterOptions {
  k: number
  method?: ClusterMethod
  /** Spectral only (default cosine). */
  similarity?: SpectralSimilarity
  seed?: number
  /** Up to this many documents the dense exact Jaccard matrix is built; above it, a kNN Jaccard graph. */
  exactMaxDocs?: number
  /** kNN graph: neighbours per document before symmetrizing. */
  neighbours?: number
  /** kNN graph: posting entries walked per latent and document. */
  postingCap?: number
  /** k-means++ starts. */
  restarts?: number
  /** Rows reported as a cluster's most central. */
  centralPerCluster?: number
  progress?: (fraction: number, phase: string) => void
}

export const EXACT_MAX_DOCS = 20_000

/** No two documents are similar at all (they share no kept latent with weight): there is nothing to cluster by. */
export class NothingSharedError extends RangeError {}

export interface Clustering {
  k: number
  method: ClusterMethod
  /** cosine: spherical k-means, or spectral on sqrt(idf)-weighted cosine; jaccard(-knn): spectral on Jaccard. */
  similarity: 'jaccard' | 'jaccard-knn' | 'cosine'
  /** assignments[i] = cluster of row i; clusters are numbered by size, largest first (ties: lowest first row). */
  assignments: Int32Array
  sizes: Int32Array
  /**
   * n x k, each row sums to 1. Spectral: mean similarity (Jaccard, or kNN-graph weight) of the document to the members
   * of each cluster, normalized over clusters. Kmeans: cosine to each centroid (clipped at 0), normalized.
   */
  affinities: Float32Array
  /** The un-normalized similarity of each document to its own cluster (what `central` ranks by). */
  centrality: Float32Array
  /** Per cluster, its most central rows, most central first. */
  central: Int32Array[]
  /** Spectral: leading eigenvalues of D^-1/2 W D^-1/2. */
  eigenvalues?: Float64Array
  /** Spectral: similarity-matrix products Lanczos used. */
  matvecs?: number
  /** Spectral: connected components of the similarity graph (documents that share nothing with anyone left out). */
  components?: number
  seconds: Record<string, number>
}

/** Cluster the documents of `rows` into k groups; deterministic for a given seed. */
export function clusterDocuments(rows: BinaryRows, options: ClusterOptions): Clustering {
  const n = rows.nDocs
  const k = options.k
  if (!(Number.isInteger(k) && k >= 1)) throw new RangeError(`k must be a positive integer, got ${k}`)
  if (k > n) throw new RangeError(`k=${k} is more than the ${n} documents`)
  const method = options.method ?? 'spectral'
  const seed = options.seed ?? 0
  const restarts = options.restarts ?? 8
  const progress = options.progress ?? (() => {})
  const seconds: Record<string, number> = {}
  let t0 = performance.now()
  const lap = (name: string) => {
    const t = performance.now()
    seconds[name] = (t - t0) / 1000
    t0 = t
  }

  if (method === 'kmeans') {
    progress(0, 'kmeans')
    const km = kmeansBinaryCosine(rows, k, { seed, restarts })
    lap('kmeans')
    const { map, sizes } = canonicalLabels(km.assignments, k)
    const assignments = km.assignments.map(c => map[c])
    const affinities = new Float32Array(n * k)
    const centrality = new Float32Array(n)
    for (let i = 0; i < n; i++) {
      let sum = 0
      for (let c = 0; c < k; c++) {
        const v = Math.max(0, km.cosines[i * k + c])
        affinities[i * k + map[c]] = v
        sum += v
      }
      centrality[i] = affinities[i * k + assignments[i]]
      normalizeRow(affinities, i, k, sum, assignments[i])
    }
    progress(1, 'done')
    return {
      k,
      method,
      similarity: 'cosine',
      assignments,
      sizes,
      affinities,
      centrality,
      central: centralRows(assignments, centrality, k, options.centralPerCluster ?? 5),
      seconds
    }
  }

  progress(0, 'similarity')
  const postings = postingsOf(rows)
  const cosine = (options.similarity ?? 'cosine') === 'cosine'
  const exact = !cosine && n <= (options.exactMaxDocs ?? EXACT_MAX_DOCS)
  const columnWeights = cosine ? latentWeights(rows, postings, 'sqrt-idf') : undefined
  const operator: CosineOperator | null = columnWeights ? cosineOperator(rows, columnWeights) : null
  const degree = operator?.degree ?? new Float64Array(n)
  let dense: Float32Array | null = null
  let graph: SparseGraph | null = null
  let matvec: MatVec
  const dinv = new Float64Array(n)
  const z = new Float64Array(n)
  if (operator) {
    const op = operator
    matvec = (x, y) => {
      for (let j = 0; j < n; j++) z[j] = dinv[j] * x[j]
      op.apply(z, y)
      for (let i = 0; i < n; i++) y[i] *= dinv[i]
    }
  } else if (exact) {
    const W = jaccardDense(rows, postings, done => progress((0.5 * done) / n, 'similarity'))
    dense = W
    for (let i = 0; i < n; i++) {
      const at = packedRow(n, i) - i - 1
      let s = 0
      for (let j = i + 1; j < n; j++) {
        const w = W[at + j]
        s += w
        degree[j] += w
      }
      degree[i] += s
    }
    // One pass over the packed triangle serves both halves: half the memory traffic of a full matrix.
    matvec = (x, y) => {
      for (let j = 0; j < n; j++) {
        z[j] = dinv[j] * x[j]
        y[j] = 0
      }
      for (let i = 0; i < n; i++) {
        const at = packedRow(n, i) - i - 1
        const zi = z[i]
        let s0 = 0,
          s1 = 0
        let j = i + 1
        for (; j + 1 < n; j += 2) {
          const w0 = W[at + j],
            w1 = W[at + j + 1]
          s0 += w0 * z[j]
          s1 += w1 * z[j + 1]
          y[j] += w0 * zi
          y[j + 1] += w1 * zi
        }
        if (j < n) {
          const w0 = W[at + j]
          s0 += w0 * z[j]
          y[j] += w0 * zi
        }
        y[i] += s0 + s1
      }
      for (let i = 0; i < n; i++) y[i] *= dinv[i]
    }
  } else {
    const g = jaccardKnn(rows, postings, {
      neighbours: options.neighbours,
      postingCap: options.postingCap,
      onRow: done => progress((0.5 * done) / n, 'similarity')
    })
    graph = g
    for (let i = 0; i < n; i++) {
      let s = 0
      for (let p = g.indptr[i]; p < g.indptr[i + 1]; p++) s += g.weights[p]
      degree[i] = s
    }
    matvec = (x, y) => {
      for (let j = 0; j < n; j++) z[j] = dinv[j] * x[j]
      for (let i = 0; i < n; i++) {
        let s = 0
        for (let p = g.indptr[i]; p < g.indptr[i + 1]; p++) s += g.weights[p] * z[g.cols[p]]
        y[i] = dinv[i] * s
      }
    }
  }
  // Isolated documents (no kept latent shared with anyone) get a zero row in the embedding: they join the nearest
  // centroid rather than a forced outlier bucket.
  for (let i = 0; i < n; i++) dinv[i] = degree[i] > 0 ? 1 / Math.sqrt(degree[i]) : 0
  if (!degree.some(d => d > 0))
    throw new NothingSharedError(
      cosine
        ? 'no two documents share a latent that tells documents apart (each kept latent is in one document only, or in every document, where its weight is 0)'
        : 'no two documents share a kept latent'
    )
  lap('similarity')

  progress(0.5, 'embedding')
  const maxSteps = Math.min(n, Math.max(4 * k + 40, 80))
  // Each connected component C of the graph gives eigenvalue 1 with eigenvector D^1/2 1_C: a repeated leading
  // eigenvalue that one Lanczos run cannot resolve. These are known exactly, so they are locked up front and Lanczos
  // looks for the rest orthogonally to them (the remaining leading eigenvalues are generically simple). With k or more
  // components the k largest components are the embedding, and the smaller ones' documents join a nearest centroid.
  const comp = components(n, graph ?? postings, columnWeights)
  const nKnown = Math.min(comp.count, k)
  const known = new Float64Array(nKnown * n)
  const norms = new Float64Array(nKnown)
  for (let i = 0; i < n; i++) {
    const c = comp.label[i]
    if (c >= 0 && c < nKnown) {
      known[c * n + i] = Math.sqrt(degree[i])
      norms[c] += degree[i]
    }
  }
  for (let c = 0; c < nKnown; c++) {
    const f = 1 / Math.sqrt(norms[c])
    for (let i = 0; i < n; i++) known[c * n + i] *= f
  }
  // Residual 1e-5: eigenvector errors of residual / gap are far below what moves a k-means assignment.
  const eig =
    nKnown === k
      ? { values: new Float64Array(k).fill(1), vectors: known, matvecs: 0 }
      : lanczosTop(n, matvec, k, {
          // One restart at most: leading eigenvalues still unconverged after that sit in a flat noise bulk, where more
          // steps cost seconds and change nothing k-means could use.
          seed,
          tol: 1e-5,
          verify: false,
          maxRestarts: 1,
          known: { values: new Float64Array(nKnown).fill(1), vectors: known },
          onStep: mv => progress(0.5 + 0.3 * Math.min(1, mv / maxSteps), 'embedding')
        })
  // Ng-Jordan-Weiss: rows of the k leading eigenvectors, scaled to unit length.
  const U = new Float64Array(n * k)
  for (let i = 0; i < n; i++) {
    let s = 0
    for (let t = 0; t < k; t++) {
      const v = eig.vectors[t * n + i]
      U[i * k + t] = v
      s += v * v
    }
    if (s > 0) {
      const f = 1 / Math.sqrt(s)
      for (let t = 0; t < k; t++) U[i * k + t] *= f
    }
  }
  lap('embedding')

  progress(0.8, 'kmeans')
  const km = kmeansDense(U, n, k, k, { seed, restarts })
  const { map, sizes } = canonicalLabels(km.assignments, k)
  const assignments = km.assignments.map(c => map[c])
  lap('kmeans')

  progress(0.9, 'affinities')
  // Mean similarity to each cluster's members: in the units of the similarity itself (a mean Jaccard), independent of
  // the embedding's scale (no softmax temperature to pick), and a document with two properties scores high on both.
  const affinities = new Float32Array(n * k)
  const centrality = new Float32Array(n)
  // Per document, the summed similarity to each cluster's members (n x k); the dense triangle feeds both ends of a pair.
  const sums = operator ? operator.clusterSums(assignments, k) : new Float64Array(n * k)
  if (dense) {
    for (let i = 0; i < n; i++) {
      const at = packedRow(n, i) - i - 1
      const ci = assignments[i]
      for (let j = i + 1; j < n; j++) {
        const w = dense[at + j]
        sums[i * k + assignments[j]] += w
        sums[j * k + ci] += w
      }
    }
  } else if (graph) {
    for (let i = 0; i < n; i++)
      for (let p = graph.indptr[i]; p < graph.indptr[i + 1]; p++)
        sums[i * k + assignments[graph.cols[p]]] += graph.weights[p]
  }
  for (let i = 0; i < n; i++) {
    let total = 0
    for (let c = 0; c < k; c++) {
      const others = sizes[c] - (assignments[i] === c ? 1 : 0)
      const v = others > 0 ? sums[i * k + c] / others : 0
      affinities[i * k + c] = v
      total += v
    }
    centrality[i] = affinities[i * k + assignments[i]]
    normalizeRow(affinities, i, k, total, assignments[i])
  }
  lap('affinities')
  progress(1, 'done')
  return {
    k,
    method,
    similarity: cosine ? 'cosine' : exact ? 'jaccard' : 'jaccard-knn',
    assignments,
    sizes,
    affinities,
    centrality,
    central: centralRows(assignments, centrality, k, options.centralPerCluster ?? 5),
    eigenvalues: eig.values,
    matvecs: eig.matvecs,
    components: comp.count,
    seconds
  }
}

function normalizeRow(a: Float32Array, i: number, k: number, total: number, own: number): void {
  if (total > 0) {
    for (let c = 0; c < k; c++) a[i * k + c] /= total
    return
  }
  for (let c = 0; c < k; c++) a[i * k + c] = c === own ? 1 : 0
}

/** Renumber clusters by size (largest first), ties by their lowest row, so labels do not depend on seeding order. */
function canonicalLabels(assignments: Int32Array, k: number): { map: Int32Array; sizes: Int32Array } {
  const size = new Int32Array(k)
  const first = new Int32Array(k).fill(2 ** 31 - 1)
  for (let i = 0; i < assignments.length; i++) {
    const c = assignments[i]
    size[c]++
    if (i < first[c]) first[c] = i
  }
  const order = Array.from({ length: k }, (_, c) => c).sort((a, b) => size[b] - size[a] || first[a] - first[b])
  const map = new Int32Array(k)
  const sizes = new Int32Array(k)
  order.forEach((c, rank) => {
    map[c] = rank
    sizes[rank] = size[c]
  })
  return { map, sizes }
}

function centralRows(assignments: Int32Array, centrality: Float32Array, k: number, top: number): Int32Array[] {
  const members: number[][] = Array.from({ length: k }, () => [])
  for (let i = 0; i < assignments.length; i++) members[assignments[i]].push(i)
  return members.map(rows => Int32Array.from(rows.sort((a, b) => centrality[b] - centrality[a] || a - b).slice(0, top)))
}

export interface ClusterLatent {
  latent: number
  label: string | null
  /** Share of the cluster's documents where the latent is present. */
  frequencyIn: number
  /** Share of the other documents where it is present. */
  frequencyOut: number
  /** frequencyIn - frequencyOut. */
  difference: number
}

/**
 * Each cluster's top latents by in-cluster minus out-of-cluster presence (the diff of the cluster against the rest),
 * over the kept latents, so a targeted clustering is described along its own axis. `labels` is indexed by latent id.
 */
export function describeClusters(
  rows: BinaryRows,
  assignments: Int32Array,
  k: number,
  labels: ArrayLike<string | null | undefined>,
  top = 5
): ClusterLatent[][] {
  return describeFromCounts(countClusterLatents(rows, assignments, k), rows.nDocs, rows.latentOf, labels, top)
}

/** describeClusters from additive counts (e.g. summed over the parts of a dataset clustered in parts). */
export function describeFromCounts(
  counts: ClusterCounts,
  n: number,
  latentOf: ArrayLike<number>,
  labels: ArrayLike<string | null | undefined>,
  top = 5
): ClusterLatent[][] {
  const { k, m, inCounts, total, sizes } = counts
  const out: ClusterLatent[][] = []
  const diffs = new Float64Array(m)
  for (let c = 0; c < k; c++) {
    const nIn = sizes[c],
      nOut = n - sizes[c]
    for (let t = 0; t < m; t++) {
      const a = inCounts[c * m + t]
      diffs[t] = (nIn ? a / nIn : 0) - (nOut ? (total[t] - a) / nOut : 0)
    }
    // Only the latents that can make the top: the diff ranks by difference first, so everything at or above the
    // (4 x top)-th difference keeps the ranking (ties included) while sparing the tests of thousands of latents.
    const cut = Float64Array.from(diffs).sort().reverse()[Math.min(m, 4 * top) - 1]
    const keep: number[] = []
    for (let t = 0; t < m; t++) if (diffs[t] >= cut) keep.push(t)
    const a = Int32Array.from(keep, t => inCounts[c * m + t])
    const b = Int32Array.from(keep, t => total[t] - inCounts[c * m + t])
    const diff = diffLatents({
      a: { id: `cluster-${c}`, name: `cluster ${c}`, documents: nIn, counts: a },
      b: [{ id: 'rest', name: 'rest', documents: nOut, counts: b }],
      labels: keep.map(t => labels[latentOf[t]] ?? null),
      options: { limit: top, minFrequency: 0, maxFrequency: 1, metric: 'absolute', direction: 'a' }
    })
    out.push(
      diff.latents.map(d => ({
        latent: latentOf[keep[d.latent]],
        label: d.label,
        frequencyIn: d.frequencyA,
        frequencyOut: d.frequencyB,
        difference: d.difference
      }))
    )
  }
  return out
}

/** @module Binarized document vectors over a latent subset, their inverted index, and Jaccard similarity (exact dense, or a kNN graph). */
import type { PooledCsr } from '../sparse.ts'
import { lowerBound } from '../../util/sorted.ts'

/** Binarized documents x kept latents. `cols` index into `latentOf` (compact columns), sorted within a row. */
export interface BinaryRows {
  nDocs: number
  nCols: number
  indptr: Int32Array
  cols: Int32Array
  /** Column -> latent id. */
  latentOf: Int32Array
}

/** The inverted index: column c's documents (sorted) span docs[indptr[c] .. indptr[c + 1]). */
export interface Postings {
  indptr: Int32Array
  docs: Int32Array
}

/** A symmetric sparse similarity graph (CSR, both directions stored, no self loops). */
export interface SparseGraph {
  n: number
  indptr: Int32Array
  cols: Int32Array
  weights: Float32Array
}

/**
 * Presence (pooled value > 0) of the kept latents. `latents` null keeps every latent present somewhere; an explicit
 * list keeps those latents (as columns, in increasing latent order) even when they never fire.
 */
export function binarize(m: PooledCsr, latents?: ArrayLike<number> | null): BinaryRows {
  const colOf = new Int32Array(m.nLatents).fill(-1)
  let latentOf: Int32Array
  if (latents) {
    const sorted = Int32Array.from(latents).sort()
    let u = 0
    for (let i = 0; i < sorted.length; i++) {
      const l = sorted[i]
      if (l < 0 || l >= m.nLatents) throw new RangeError(`latent ${l} does not exist (latents are 0-${m.nLatents - 1})`)
      if (i === 0 || l !== sorted[i - 1]) sorted[u++] = l
    }
    latentOf = sorted.slice(0, u)
  } else {
    const present = new Uint8Array(m.nLatents)
    for (let k = 0; k < m.latents.length; k++) if (m.values[k] > 0) present[m.latents[k]] = 1
    let u = 0
    for (let l = 0; l < m.nLatents; l++) u += present[l]
    latentOf = new Int32Array(u)
    for (let l = 0, i = 0; l < m.nLatents; l++) if (present[l]) latentOf[i++] = l
  }
  for (let c = 0; c < latentOf.length; c++) colOf[latentOf[c]] = c
  const indptr = new Int32Array(m.nDocs + 1)
  for (let i = 0; i < m.nDocs; i++) {
    let n = 0
    for (let k = m.indptr[i]; k < m.indptr[i + 1]; k++) if (m.values[k] > 0 && colOf[m.latents[k]] >= 0) n++
    indptr[i + 1] = indptr[i] + n
  }
  const cols = new Int32Array(indptr[m.nDocs])
  // CSR rows are sorted by latent and colOf is increasing in latent, so the columns come out sorted.
  for (let i = 0, at = 0; i < m.nDocs; i++) {
    for (let k = m.indptr[i]; k < m.indptr[i + 1]; k++) {
      const c = m.values[k] > 0 ? colOf[m.latents[k]] : -1
      if (c >= 0) cols[at++] = c
    }
  }
  return { nDocs: m.nDocs, nCols: latentOf.length, indptr, cols, latentOf }
}

export function postingsOf(rows: BinaryRows): Postings {
  const indptr = new Int32Array(rows.nCols + 1)
  for (let k = 0; k < rows.cols.length; k++) indptr[rows.cols[k] + 1]++
  for (let c = 0; c < rows.nCols; c++) indptr[c + 1] += indptr[c]
  const fill = indptr.slice(0, rows.nCols)
  const docs = new Int32Array(rows.cols.length)
  for (let i = 0; i < rows.nDocs; i++)
    for (let k = rows.indptr[i]; k < rows.indptr[i + 1]; k++) docs[fill[rows.cols[k]]++] = i
  return { indptr, docs }
}

/**
 * Offset of row i's first entry (the pair (i, i + 1)) in a packed strict upper triangle of order n: pair (i, j), i < j,
 * sits at packedRow(n, i) + j - i - 1.
 */
export function packedRow(n: number, i: number): number {
  return (i * (2 * n - i - 1)) / 2
}

/** Entry (i, j) of a packed strict upper triangle (symmetric, zero diagonal). */
export function packedAt(values: Float32Array, n: number, i: number, j: number): number {
  if (i === j) return 0
  const [a, b] = i < j ? [i, j] : [j, i]
  return values[packedRow(n, a) + b - a - 1]
}

/**
 * Exact Jaccard |A∩B| / |A∪B| between all pairs of documents, as a packed strict upper triangle (see packedRow; the
 * diagonal is 0, the affinity convention of spectral clustering; pairs of empty documents are 0). Intersections are counted by walking, for each document, the
 * posting lists of its latents (only documents after it: the matrix is symmetric), so the cost is
 * sum over latents of min(df, n - df)^2 / 2: latents present in more than half the documents are walked through their
 * complement (a_i a_j = 1 - ā_i - ā_j + ā_i ā_j), which keeps the near-ubiquitous latents of a real SAE cheap.
 * Memory is 2 n^2 bytes (half a float matrix): 200 MB at 10k documents, 800 MB at 20k; above that use jaccardKnn.
 */
export function jaccardDense(
  rows: BinaryRows,
  postings: Postings = postingsOf(rows),
  onRow?: (done: number) => void
): Float32Array {
  const n = rows.nDocs
  const out = new Float32Array((n * (n - 1)) / 2)
  const df = (c: number) => postings.indptr[c + 1] - postings.indptr[c]
  const dense = new Uint8Array(rows.nCols)
  const denseCols: number[] = []
  for (let c = 0; c < rows.nCols; c++)
    if (df(c) * 2 > n) {
      dense[c] = 1
      denseCols.push(c)
    }
  // Complement posting lists of the dense columns: the documents that lack them.
  const compIndptr = new Int32Array(denseCols.length + 1)
  for (let t = 0; t < denseCols.length; t++) compIndptr[t + 1] = compIndptr[t] + n - df(denseCols[t])
  const compDocs = new Int32Array(compIndptr[denseCols.length])
  for (let t = 0; t < denseCols.length; t++) {
    const c = denseCols[t]
    let at = compIndptr[t]
    let p = postings.indptr[c]
    const end = postings.indptr[c + 1]
    for (let d = 0; d < n; d++) {
      if (p < end && postings.docs[p] === d) p++
      else compDocs[at++] = d
    }
  }
  // absent[i] = dense columns document i lacks.
  const absent = new Int32Array(n).fill(denseCols.length)
  const size = new Int32Array(n)
  for (let i = 0; i < n; i++) {
    size[i] = rows.indptr[i + 1] - rows.indptr[i]
    for (let k = rows.indptr[i]; k < rows.indptr[i + 1]; k++) if (dense[rows.cols[k]]) absent[i]--
  }
  const nDense = denseCols.length
  const acc = new Int32Array(n)
  const has = new Uint8Array(rows.nCols)
  for (let i = 0; i < n; i++) {
    const r0 = rows.indptr[i],
      r1 = rows.indptr[i + 1]
    for (let k = r0; k < r1; k++) {
      const c = rows.cols[k]
      has[c] = 1
      if (dense[c]) continue
      const end = postings.indptr[c + 1]
      for (let p = lowerBound(postings.docs, i + 1, postings.indptr[c], end); p < end; p++) acc[postings.docs[p]]++
    }
    for (let t = 0; t < nDense; t++) {
      if (has[denseCols[t]]) continue
      const end = compIndptr[t + 1]
      for (let p = lowerBound(compDocs, i + 1, compIndptr[t], end); p < end; p++) acc[compDocs[p]]++
    }
    for (let k = r0; k < r1; k++) has[rows.cols[k]] = 0
    const base = nDense - absent[i]
    const si = size[i]
    const at = packedRow(n, i) - i - 1
    for (let j = i + 1; j < n; j++) {
      const inter = acc[j] + base - absent[j]
      acc[j] = 0
      const union = si + size[j] - inter
      out[at + j] = union > 0 ? inter / union : 0
    }
    if (onRow && (i & 255) === 255) onRow(i + 1)
  }
  return out
}

export interface KnnOptions {
  /** Neighbours kept per document before symmetrizing. */
  neighbours?: number
  /**
   * Latents in more documents than this do not propose candidates (they would propose nearly everyone, and say little
   * about similarity); they still count in the exact Jaccard of the candidates. Default max(1000, n / 20): latents in
   * more than 5% of the documents, so that the threshold scales with the dataset (a topic latent in 3% of 50k
   * documents is still evidence).
   */
  postingCap?: number
  /** Candidates re-scored by exact Jaccard per document (default 4 x neighbours). */
  candidates?: number
  onRow?: (done: number) => void
}

/**
 * A k-nearest-neighbour Jaccard graph, for datasets too large for the dense matrix. Candidates are the documents that
 * share the most of this document's rarer latents (posting lists of at most `postingCap` documents, walked in full
 * through the inverted index: the prefix-filtering idea of similarity joins, where rare tokens carry the evidence);
 * only when those give too few candidates do the frequent latents' lists contribute, a bounded window each. The best
 * `candidates` are re-scored by exact Jaccard over all kept latents and the top `neighbours` kept. The graph is
 * symmetrized by the union of neighbour lists (weight = the Jaccard, the same both ways). Cost per document: the sum
 * of its rare latents' document frequencies, plus candidates x row length.
 */
export function jaccardKnn(
  rows: BinaryRows,
  postings: Postings = postingsOf(rows),
  options: KnnOptions = {}
): SparseGraph {
  const n = rows.nDocs
  const kk = Math.max(1, Math.min(options.neighbours ?? 20, n - 1))
  const cap = Math.max(1, options.postingCap ?? Math.max(1000, Math.ceil(n / 20)))
  const C = Math.max(kk, options.candidates ?? 4 * kk)
  const acc = new Int32Array(n)
  const touched = new Int32Array(n)
  const hist = new Int32Array(rows.nCols + 2)
  const mark = new Int32Array(rows.nCols).fill(-1)
  const cand = new Int32Array(C)
  const candW = new Float32Array(C)
  const nbr = new Int32Array(n * kk).fill(-1)
  const nbrW = new Float32Array(n * kk)
  for (let i = 0; i < n; i++) {
    const r0 = rows.indptr[i],
      r1 = rows.indptr[i + 1]
    let nt = 0
    let maxAcc = 0
    for (let k = r0; k < r1; k++) {
      const c = rows.cols[k]
      mark[c] = i
      const p0 = postings.indptr[c],
        p1 = postings.indptr[c + 1]
      if (p1 - p0 > cap) continue
      for (let p = p0; p < p1; p++) {
        const j = postings.docs[p]
        if (j === i) continue
        if (acc[j] === 0) touched[nt++] = j
        const a = ++acc[j]
        if (a > maxAcc) maxAcc = a
      }
    }
    // Too few candidates through rare latents: take some from the frequent latents' lists, a window from the document's
    // own place in each, until there are enough.
    for (let k = r0; k < r1 && nt < C; k++) {
      const c = rows.cols[k]
      const p0 = postings.indptr[c],
        p1 = postings.indptr[c + 1]
      const len = p1 - p0
      if (len <= cap) continue
      const start = lowerBound(postings.docs, i, p0, p1) - p0
      for (let s = 0; s < cap && nt < C; s++) {
        const j = postings.docs[p0 + ((start + s) % len)]
        if (j === i) continue
        if (acc[j] === 0) touched[nt++] = j
        const a = ++acc[j]
        if (a > maxAcc) maxAcc = a
      }
    }
    // Threshold on shared-latent counts so that about C candidates pass, without sorting all touched documents.
    for (let t = 0; t < nt; t++) hist[acc[touched[t]]]++
    let thr = maxAcc
    for (let above = 0; thr > 0; thr--) {
      above += hist[thr]
      if (above >= C) break
    }
    if (thr < 1) thr = 1
    let nc = 0
    for (let t = 0; t < nt && nc < C; t++) if (acc[touched[t]] > thr) cand[nc++] = touched[t]
    for (let t = 0; t < nt && nc < C; t++) if (acc[touched[t]] === thr) cand[nc++] = touched[t]
    for (let t = 0; t < nt; t++) {
      hist[acc[touched[t]]] = 0
      acc[touched[t]] = 0
    }
    const si = r1 - r0
    for (let q = 0; q < nc; q++) {
      const j = cand[q]
      let inter = 0
      for (let k = rows.indptr[j]; k < rows.indptr[j + 1]; k++) if (mark[rows.cols[k]] === i) inter++
      const union = si + rows.indptr[j + 1] - rows.indptr[j] - inter
      candW[q] = union > 0 ? inter / union : 0
    }
    // Keep the top kk by (weight desc, index asc): insertion into a small sorted list.
    const base = i * kk
    let kept = 0
    for (let q = 0; q < nc; q++) {
      const w = candW[q],
        j = cand[q]
      if (w <= 0) continue
      let pos = kept
      while (pos > 0 && (nbrW[base + pos - 1] < w || (nbrW[base + pos - 1] === w && nbr[base + pos - 1] > j))) pos--
      if (pos >= kk) continue
      for (let s = Math.min(kept, kk - 1); s > pos; s--) {
        nbr[base + s] = nbr[base + s - 1]
        nbrW[base + s] = nbrW[base + s - 1]
      }
      nbr[base + pos] = j
      nbrW[base + pos] = w
      if (kept < kk) kept++
    }
    if (options.onRow && (i & 1023) === 1023) options.onRow(i + 1)
  }
  return symmetrize(n, kk, nbr, nbrW)
}

/** Union of directed neighbour lists, rows sorted by column, duplicates merged (their weights are equal). */
function symmetrize(n: number, kk: number, nbr: Int32Array, nbrW: Float32Array): SparseGraph {
  const deg = new Int32Array(n + 1)
  for (let i = 0; i < n; i++)
    for (let s = 0; s < kk; s++) {
      const j = nbr[i * kk + s]
      if (j >= 0) {
        deg[i + 1]++
        deg[j + 1]++
      }
    }
  for (let i = 0; i < n; i++) deg[i + 1] += deg[i]
  const fill = deg.slice(0, n)
  const cols = new Int32Array(deg[n])
  const weights = new Float32Array(deg[n])
  for (let i = 0; i < n; i++) {
    for (let s = 0; s < kk; s++) {
      const j = nbr[i * kk + s]
      if (j < 0) continue
      const w = nbrW[i * kk + s]
      cols[fill[i]] = j
      weights[fill[i]++] = w
      cols[fill[j]] = i
      weights[fill[j]++] = w
    }
  }
  const indptr = new Int32Array(n + 1)
  let at = 0
  const order: number[] = []
  for (let i = 0; i < n; i++) {
    order.length = 0
    for (let p = deg[i]; p < deg[i + 1]; p++) order.push(p)
    order.sort((x, y) => cols[x] - cols[y])
    const rowCols = order.map(p => cols[p])
    const rowW = order.map(p => weights[p])
    const start = at
    for (let t = 0; t < rowCols.length; t++) {
      if (at > start && cols[at - 1] === rowCols[t]) continue
      cols[at] = rowCols[t]
      weights[at] = rowW[t]
      at++
    }
    indptr[i + 1] = at
  }
  return { n, indptr, cols: cols.slice(0, at), weights: weights.slice(0, at) }
}

/** Union-find root with path halving. */
function root(parent: Int32Array, x: number): number {
  while (parent[x] !== x) {
    parent[x] = parent[parent[x]]
    x = parent[x]
  }
  return x
}

/**
 * Connected components of the documents that share a latent with some other document: `label[i]` is the component
 * of document i, numbered by size (largest first, ties: lowest first row), or -1 for a document that shares nothing
 * (empty, or alone in all its latents). Through the postings these are exactly the components of the graph W > 0;
 * with `columnWeights`, columns of weight 0 link nothing (they add nothing to a weighted similarity).
 */
export function components(
  n: number,
  links: Postings | SparseGraph,
  columnWeights?: ArrayLike<number>
): { count: number; label: Int32Array; sizes: Int32Array } {
  const parent = Int32Array.from({ length: n }, (_, i) => i)
  const linked = new Uint8Array(n)
  const join = (a: number, b: number) => {
    linked[a] = linked[b] = 1
    const ra = root(parent, a),
      rb = root(parent, b)
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb)
  }
  if ('docs' in links) {
    for (let c = 0; c + 1 < links.indptr.length; c++) {
      if (columnWeights && !(columnWeights[c] > 0)) continue
      for (let p = links.indptr[c] + 1; p < links.indptr[c + 1]; p++) join(links.docs[links.indptr[c]], links.docs[p])
    }
  } else {
    for (let i = 0; i < n; i++)
      for (let p = links.indptr[i]; p < links.indptr[i + 1]; p++) if (links.weights[p] > 0) join(i, links.cols[p])
  }
  // Roots are the lowest row of their component (unions keep the smaller root), so first rows come for free.
  const raw = new Int32Array(n).fill(-1)
  const rawSizes: number[] = []
  const firstRow: number[] = []
  for (let i = 0; i < n; i++) {
    if (!linked[i]) continue
    const r = root(parent, i)
    if (r === i) {
      raw[i] = rawSizes.length
      rawSizes.push(0)
      firstRow.push(i)
    }
    raw[i] = raw[r]
    rawSizes[raw[i]]++
  }
  const order = rawSizes.map((_, c) => c).sort((a, b) => rawSizes[b] - rawSizes[a] || firstRow[a] - firstRow[b])
  const rank = new Int32Array(order.length)
  order.forEach((c, r) => {
    rank[c] = r
  })
  const label = raw.map(c => (c < 0 ? -1 : rank[c]))
  return { count: order.length, label, sizes: Int32Array.from(order, c => rawSizes[c]) }
}

/**
 * @module Documents like a given one: cosine similarity of binarized, sqrt-idf-weighted latent sets (the similarity
 * spectral clustering uses), scored from the query's latents' columns only, with the shared latents that make it.
 */
import type { PooledCsc } from './sparse.ts'

/** sqrt(ln(n / df)) per latent: a latent in nearly every document says little about which ones are alike (0 if absent). */
export function sqrtIdfWeights(docCount: Int32Array, nDocs: number): Float64Array {
  const w = new Float64Array(docCount.length)
  for (let l = 0; l < docCount.length; l++) w[l] = docCount[l] > 0 ? Math.sqrt(Math.log(nDocs / docCount[l])) : 0
  return w
}

export interface SimilarRanking {
  /** Dataset rows, most similar first (the query row left out; only rows with a shared weighted latent). */
  rows: Int32Array
  /** Their cosine similarity to the query, in [0, 1]. */
  scores: Float64Array
}

/**
 * Add each document's dot product with the query over `latents` (some of the query's latents, whose columns `csc`
 * holds) to `dot`: the dot product of two weighted binary rows is the sum of w^2 over the latents they share. Returns
 * the query's squared norm over those latents. Called once per block of latents, so the columns need not all be held.
 */
export function addSharedWeights(
  csc: PooledCsc,
  latents: ArrayLike<number>,
  weights: Float64Array,
  dot: Float64Array
): number {
  let queryNorm = 0
  for (let i = 0; i < latents.length; i++) {
    const l = latents[i]
    const w2 = weights[l] * weights[l]
    if (w2 === 0) continue
    queryNorm += w2
    for (let p = csc.indptr[l]; p < csc.indptr[l + 1]; p++) if (csc.values[p] > 0) dot[csc.docs[p]] += w2
  }
  return queryNorm
}

/**
 * Rank documents by cosine to the query document, whose present latents are `queryLatents`: only the query's latents'
 * columns (`csc`) are read; `squaredNorms[d]` is document d's sum of w^2 over all its latents. `candidate` (optional)
 * restricts the rows.
 */
export function rankSimilar(
  csc: PooledCsc,
  queryLatents: ArrayLike<number>,
  weights: Float64Array,
  squaredNorms: Float64Array,
  queryRow: number,
  limit: number,
  candidate?: (row: number) => boolean
): SimilarRanking {
  const dot = new Float64Array(squaredNorms.length)
  const queryNorm = addSharedWeights(csc, queryLatents, weights, dot)
  return topSimilar(dot, queryNorm, squaredNorms, queryRow, limit, candidate)
}

/** The `limit` documents of highest cosine, given every document's dot product with the query and the query's norm. */
export function topSimilar(
  dot: Float64Array,
  queryNorm: number,
  squaredNorms: Float64Array,
  queryRow: number,
  limit: number,
  candidate?: (row: number) => boolean
): SimilarRanking {
  // The `limit` best by (score desc, row asc), kept in a heap whose root is the worst kept: O(n log limit), not a sort
  // of every document that shares a latent (most of them, when the query has a frequent one).
  const heapRows = new Int32Array(limit)
  const heapScores = new Float64Array(limit)
  let size = 0
  const worse = (i: number, j: number) =>
    heapScores[i] < heapScores[j] || (heapScores[i] === heapScores[j] && heapRows[i] > heapRows[j])
  const swap = (i: number, j: number) => {
    const r = heapRows[i]
    heapRows[i] = heapRows[j]
    heapRows[j] = r
    const v = heapScores[i]
    heapScores[i] = heapScores[j]
    heapScores[j] = v
  }
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < size && worse(l, m)) m = l
      if (r < size && worse(r, m)) m = r
      if (m === i) return
      swap(i, m)
      i = m
    }
  }
  if (queryNorm > 0 && limit > 0) {
    for (let d = 0; d < dot.length; d++) {
      if (!(dot[d] > 0) || d === queryRow || !(squaredNorms[d] > 0) || (candidate && !candidate(d))) continue
      const score = dot[d] / Math.sqrt(queryNorm * squaredNorms[d])
      if (size < limit) {
        heapRows[size] = d
        heapScores[size] = score
        for (let i = size++; i > 0; ) {
          const parent = (i - 1) >> 1
          if (!worse(i, parent)) break
          swap(i, parent)
          i = parent
        }
      } else if (score > heapScores[0]) {
        // Rows come in ascending order, so an equal score never displaces a kept (lower) row.
        heapRows[0] = d
        heapScores[0] = score
        siftDown(0)
      }
    }
  }
  // Ties (near-duplicates) go to the lower row, so the answer does not depend on the order of the work.
  const order = Array.from({ length: size }, (_, i) => i).sort(
    (a, b) => heapScores[b] - heapScores[a] || heapRows[a] - heapRows[b]
  )
  return { rows: Int32Array.from(order, i => heapRows[i]), scores: Float64Array.from(order, i => heapScores[i]) }
}

/**
 * The latents a result shares with the query, largest part of the similarity first: `share` is the latent's w^2 over
 * the sum of w^2 of every latent they share (all of them, not only the `limit` returned).
 */
export function sharedLatents(
  csc: PooledCsc,
  queryLatents: ArrayLike<number>,
  weights: Float64Array,
  row: number,
  limit: number
): Array<{ latent: number; share: number }> {
  const found: Array<{ latent: number; weight: number }> = []
  collectShared(csc, queryLatents, weights, row, found)
  return sharesOf(found, limit)
}

/** Push the latents of `latents` (columns in `csc`) that `row` has, with their w^2, onto `out`: one block's part. */
export function collectShared(
  csc: PooledCsc,
  latents: ArrayLike<number>,
  weights: Float64Array,
  row: number,
  out: Array<{ latent: number; weight: number }>
): void {
  for (let i = 0; i < latents.length; i++) {
    const l = latents[i]
    const w2 = weights[l] * weights[l]
    if (w2 === 0) continue
    // A column's documents are ascending: binary search for the row.
    let a = csc.indptr[l]
    let b = csc.indptr[l + 1]
    while (a < b) {
      const mid = (a + b) >> 1
      if (csc.docs[mid] < row) a = mid + 1
      else b = mid
    }
    if (a < csc.indptr[l + 1] && csc.docs[a] === row && csc.values[a] > 0) out.push({ latent: l, weight: w2 })
  }
}

/** Shares of the similarity from the collected latents (every block's), the `limit` largest first. */
export function sharesOf(
  found: Array<{ latent: number; weight: number }>,
  limit: number
): Array<{ latent: number; share: number }> {
  const out = [...found].sort((x, y) => y.weight - x.weight || x.latent - y.latent)
  let total = 0
  for (const o of out) total += o.weight
  return out.slice(0, limit).map(o => ({ latent: o.latent, share: o.weight / total }))
}

/** @module Cosine similarity of (idf-weighted) binarized documents as an implicit operator: W = X X^T without its diagonal, applied in O(nnz) and never formed. */
import type { BinaryRows, Postings } from './jaccard.ts'

/**
 * How a latent's presence is weighted before rows are scaled to unit length. `sqrt-idf`: sqrt(ln(n / df)), so a latent
 * present in nearly every document says little about which documents are alike, without letting the rarest latents
 * (a handful of near-duplicates) dominate as full idf does; `none`: plain binary cosine.
 */
export type LatentWeighting = 'sqrt-idf' | 'none'

/** Per column, its weight (0 for a latent present in every document under sqrt-idf). */
export function latentWeights(rows: BinaryRows, postings: Postings, weighting: LatentWeighting): Float64Array {
  const weights = new Float64Array(rows.nCols).fill(1)
  if (weighting === 'none') return weights
  const n = rows.nDocs
  for (let c = 0; c < rows.nCols; c++) {
    const df = postings.indptr[c + 1] - postings.indptr[c]
    weights[c] = df > 0 ? Math.sqrt(Math.log(n / df)) : 0
  }
  return weights
}

/**
 * The document-document cosine matrix of weighted binarized rows, with a zero diagonal (the affinity convention of
 * spectral clustering), as products: `apply` computes y = W x as Xn (Xn^T x) - x over non-empty rows, two passes over
 * the rows' entries and one column vector, so memory and time per product grow with the entries, not with n^2.
 */
export interface CosineOperator {
  n: number
  /** Row i's degree: its summed cosine to every other row (0 for a row that shares nothing weighted). */
  degree: Float64Array
  apply(x: Float64Array, y: Float64Array): void
  /** n x k: row i's summed cosine to the rows of each cluster (itself left out). */
  clusterSums(assignments: Int32Array, k: number): Float64Array
}

/** Degrees below this are rounding left from removing the diagonal (a row whose only overlap is itself). */
const ZERO_DEGREE = 1e-9

export function cosineOperator(rows: BinaryRows, weights: Float64Array): CosineOperator {
  const n = rows.nDocs
  const { indptr, cols } = rows
  // inv[i] = 1 / |row i| under the weights, so that row i's unit vector is inv[i] * weights over its columns.
  const inv = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    let sq = 0
    for (let p = indptr[i]; p < indptr[i + 1]; p++) sq += weights[cols[p]] ** 2
    inv[i] = sq > 0 ? 1 / Math.sqrt(sq) : 0
  }
  const column = new Float64Array(rows.nCols)
  const apply = (x: Float64Array, y: Float64Array) => {
    column.fill(0)
    for (let i = 0; i < n; i++) {
      const v = inv[i] * x[i]
      if (v === 0) continue
      for (let p = indptr[i]; p < indptr[i + 1]; p++) column[cols[p]] += v * weights[cols[p]]
    }
    for (let i = 0; i < n; i++) {
      if (inv[i] === 0) {
        y[i] = 0
        continue
      }
      let s = 0
      for (let p = indptr[i]; p < indptr[i + 1]; p++) s += column[cols[p]] * weights[cols[p]]
      y[i] = inv[i] * s - x[i]
    }
  }
  const degree = new Float64Array(n)
  apply(new Float64Array(n).fill(1), degree)
  for (let i = 0; i < n; i++) if (degree[i] < ZERO_DEGREE) degree[i] = 0
  const clusterSums = (assignments: Int32Array, k: number) => {
    // Per column and cluster, the summed unit-vector entries of its rows; a row's cosine to a cluster is its own unit
    // vector against that sum.
    const table = new Float64Array(rows.nCols * k)
    for (let i = 0; i < n; i++) {
      const c = assignments[i]
      for (let p = indptr[i]; p < indptr[i + 1]; p++) table[cols[p] * k + c] += inv[i] * weights[cols[p]]
    }
    const sums = new Float64Array(n * k)
    for (let i = 0; i < n; i++) {
      if (inv[i] === 0) continue
      const at = i * k
      for (let p = indptr[i]; p < indptr[i + 1]; p++) {
        const w = inv[i] * weights[cols[p]]
        const t = cols[p] * k
        for (let c = 0; c < k; c++) sums[at + c] += w * table[t + c]
      }
      sums[at + assignments[i]] = Math.max(0, sums[at + assignments[i]] - 1)
    }
    return sums
  }
  return { n, degree, apply, clusterSums }
}

/** @module Sparse pooled-latent matrices (CSR by document, CSC by latent) as typed arrays. */

/** Documents x latents, rows sorted by latent. Row i spans [indptr[i], indptr[i+1]). */
export interface PooledCsr {
  nDocs: number
  nLatents: number
  indptr: Int32Array
  latents: Int32Array
  values: Float32Array
  /** Token position of the max (or -1 when unknown). */
  positions: Int32Array
}

/** Latents x documents, columns sorted by document. Column j spans [indptr[j], indptr[j+1]). */
export interface PooledCsc {
  nDocs: number
  nLatents: number
  indptr: Int32Array
  docs: Int32Array
  values: Float32Array
  positions: Int32Array
}

/** Documents in which each latent is present (pooled value > 0). */
export function presenceCounts(m: PooledCsr): Int32Array {
  const counts = new Int32Array(m.nLatents)
  for (let k = 0; k < m.latents.length; k++) if (m.values[k] > 0) counts[m.latents[k]]++
  return counts
}

/** Build a CSR from unsorted COO triples (doc, latent, value, position). */
export function csrFromCoo(
  nDocs: number,
  nLatents: number,
  docs: ArrayLike<number>,
  latents: ArrayLike<number>,
  values: ArrayLike<number>,
  positions?: ArrayLike<number>
): PooledCsr {
  const n = docs.length
  const indptr = new Int32Array(nDocs + 1)
  for (let k = 0; k < n; k++) indptr[docs[k] + 1]++
  for (let i = 0; i < nDocs; i++) indptr[i + 1] += indptr[i]
  const order = new Int32Array(n)
  const fill = indptr.slice(0, nDocs)
  for (let k = 0; k < n; k++) order[fill[docs[k]]++] = k
  const outLatents = new Int32Array(n)
  const outValues = new Float32Array(n)
  const outPositions = new Int32Array(n)
  for (let i = 0; i < nDocs; i++) {
    const seg = Array.from(order.subarray(indptr[i], indptr[i + 1])).sort((x, y) => latents[x] - latents[y])
    for (let j = 0; j < seg.length; j++) {
      const k = seg[j]
      outLatents[indptr[i] + j] = latents[k]
      outValues[indptr[i] + j] = values[k]
      outPositions[indptr[i] + j] = positions ? positions[k] : -1
    }
  }
  return { nDocs, nLatents, indptr, latents: outLatents, values: outValues, positions: outPositions }
}

/** Transpose a CSR into a CSC (columns sorted by document, since rows are visited in order). */
export function cscFromCsr(m: PooledCsr): PooledCsc {
  const nnz = m.latents.length
  const indptr = new Int32Array(m.nLatents + 1)
  for (let k = 0; k < nnz; k++) indptr[m.latents[k] + 1]++
  for (let j = 0; j < m.nLatents; j++) indptr[j + 1] += indptr[j]
  const fill = indptr.slice(0, m.nLatents)
  const docs = new Int32Array(nnz)
  const values = new Float32Array(nnz)
  const positions = new Int32Array(nnz)
  for (let i = 0; i < m.nDocs; i++) {
    for (let k = m.indptr[i]; k < m.indptr[i + 1]; k++) {
      const at = fill[m.latents[k]]++
      docs[at] = i
      values[at] = m.values[k]
      positions[at] = m.positions[k]
    }
  }
  return { nDocs: m.nDocs, nLatents: m.nLatents, indptr, docs, values, positions }
}

/**
 * A CSR from rows already in (doc, latent) order, as the encoder emits them, with global doc ids
 * starting at docOffset (a part of a dataset). Copies, so the sources may be reused.
 */
export function csrFromSortedRows(
  nDocs: number,
  nLatents: number,
  docOffset: number,
  docs: Int32Array,
  latents: Int32Array,
  values: Float32Array,
  positions: Int32Array
): PooledCsr {
  const indptr = new Int32Array(nDocs + 1)
  for (let k = 0; k < docs.length; k++) {
    const d = docs[k] - docOffset
    if (d < 0 || d >= nDocs) throw new Error(`row ${k}: doc ${docs[k]} outside [${docOffset}, ${docOffset + nDocs})`)
    if (k > 0 && (docs[k] < docs[k - 1] || (docs[k] === docs[k - 1] && latents[k] <= latents[k - 1]))) {
      throw new Error(`row ${k}: rows are not in (doc, latent) order`)
    }
    indptr[d + 1]++
  }
  for (let i = 0; i < nDocs; i++) indptr[i + 1] += indptr[i]
  return { nDocs, nLatents, indptr, latents: latents.slice(), values: values.slice(), positions: positions.slice() }
}

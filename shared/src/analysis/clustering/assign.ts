/**
 * @module Clustering past one process: a seeded uniform sample of documents to fit on, additive per-cluster latent
 * counts, the nearest-centroid rule that extends a fitted clustering to every other document part by part, and the
 * byte form of one part's partial (its assignments and counts) that the merge sums.
 */
import type { BinaryRows } from './jaccard.ts'
import { seededRng } from '../../util/random.ts'

/**
 * `s` of the rows 0..n-1, uniformly at random, ascending (Knuth's selection sampling, algorithm S): O(n) time, O(s)
 * memory, and the same rows for the same seed on every runtime.
 */
export function sampleRows(n: number, s: number, seed: number): Int32Array {
  if (!(Number.isInteger(n) && Number.isInteger(s) && s >= 0 && n >= 0)) throw new RangeError(`bad sample ${s} of ${n}`)
  const want = Math.min(s, n)
  const out = new Int32Array(want)
  // A stream of its own: the fit's k-means draws from seededRng(seed) too, and must not see the same numbers.
  const rng = seededRng(seed ^ 0x2c1b3c6d)
  let chosen = 0
  for (let i = 0; i < n && chosen < want; i++) if ((n - i) * rng.next() < want - chosen) out[chosen++] = i
  return out
}

/** Additive per-cluster statistics over the kept latents (columns of BinaryRows): sums of parts are the whole. */
export interface ClusterCounts {
  k: number
  /** Columns (kept latents). */
  m: number
  /** Documents per cluster. */
  sizes: Int32Array
  /** inCounts[c * m + t]: documents of cluster c where column t is present. */
  inCounts: Int32Array
  /** total[t]: documents where column t is present. */
  total: Int32Array
}

export function emptyCounts(k: number, m: number): ClusterCounts {
  return { k, m, sizes: new Int32Array(k), inCounts: new Int32Array(k * m), total: new Int32Array(m) }
}

/** Count rows' columns by their cluster into `into` (a new one when left out). */
export function countClusterLatents(
  rows: BinaryRows,
  assignments: ArrayLike<number>,
  k: number,
  into: ClusterCounts = emptyCounts(k, rows.nCols)
): ClusterCounts {
  const m = rows.nCols
  if (into.k !== k || into.m !== m) throw new RangeError(`counts of ${into.k} x ${into.m}, rows of ${k} x ${m}`)
  for (let i = 0; i < rows.nDocs; i++) {
    const c = assignments[i]
    into.sizes[c]++
    for (let p = rows.indptr[i]; p < rows.indptr[i + 1]; p++) {
      into.inCounts[c * m + rows.cols[p]]++
      into.total[rows.cols[p]]++
    }
  }
  return into
}

/** into += add (the merge of two parts' counts). */
export function addCounts(into: ClusterCounts, add: ClusterCounts): ClusterCounts {
  if (into.k !== add.k || into.m !== add.m) throw new RangeError('counts of different shapes')
  for (let c = 0; c < into.k; c++) into.sizes[c] += add.sizes[c]
  for (let i = 0; i < into.inCounts.length; i++) into.inCounts[i] += add.inCounts[i]
  for (let t = 0; t < into.m; t++) into.total[t] += add.total[t]
  return into
}

/**
 * The centroids of a fitted clustering, latent-major (table[t * k + c]): cluster c's presence frequency of column t
 * (its members' share with t present), scaled to unit length per cluster. The cosine of a binarized document to
 * centroid c is then the sum of table[t * k + c] over its columns, divided by the document's own norm, which is the
 * same for every cluster and so left out of the argmax.
 */
export function centroidTable(counts: ClusterCounts): Float64Array {
  const { k, m } = counts
  const table = new Float64Array(m * k)
  for (let c = 0; c < k; c++) {
    const size = counts.sizes[c]
    if (!size) continue
    let norm = 0
    for (let t = 0; t < m; t++) norm += (counts.inCounts[c * m + t] / size) ** 2
    if (!(norm > 0)) continue
    const f = 1 / (size * Math.sqrt(norm))
    for (let t = 0; t < m; t++) table[t * k + c] = counts.inCounts[c * m + t] * f
  }
  return table
}

/**
 * Each row's nearest centroid by cosine (ties: the lower cluster, i.e. the larger one, as clusters are numbered by
 * size; a row with none of the columns goes to cluster 0). `fixed` gives rows whose cluster is already known (the
 * fitted sample's members): they keep it. O(nnz x k) time, O(k) memory beyond the output.
 */
export function assignNearest(
  rows: BinaryRows,
  table: Float64Array,
  k: number,
  fixed?: { rows: ArrayLike<number>; clusters: ArrayLike<number>; offset: number }
): Int32Array {
  const out = new Int32Array(rows.nDocs)
  const score = new Float64Array(k)
  let f = 0
  const nFixed = fixed ? fixed.rows.length : 0
  for (let i = 0; i < rows.nDocs; i++) {
    if (fixed) {
      const row = fixed.offset + i
      while (f < nFixed && fixed.rows[f] < row) f++
      if (f < nFixed && fixed.rows[f] === row) {
        out[i] = fixed.clusters[f]
        continue
      }
    }
    score.fill(0)
    for (let p = rows.indptr[i]; p < rows.indptr[i + 1]; p++) {
      const at = rows.cols[p] * k
      for (let c = 0; c < k; c++) score[c] += table[at + c]
    }
    let best = 0
    for (let c = 1; c < k; c++) if (score[c] > score[best]) best = c
    out[i] = best
  }
  return out
}

/**
 * Each row's cosine to the centroid of its cluster (0 for a row with none of the columns): the sum of the centroid
 * table over its columns, divided by the binary row's norm sqrt(columns).
 */
export function centroidCosines(
  rows: BinaryRows,
  table: Float64Array,
  k: number,
  assignments: Int32Array
): Float32Array {
  const out = new Float32Array(rows.nDocs)
  for (let i = 0; i < rows.nDocs; i++) {
    const n = rows.indptr[i + 1] - rows.indptr[i]
    if (!n) continue
    let sum = 0
    for (let p = rows.indptr[i]; p < rows.indptr[i + 1]; p++) sum += table[rows.cols[p] * k + assignments[i]]
    out[i] = sum / Math.sqrt(n)
  }
  return out
}

/** Each cluster's `top` most central dataset rows (cosine to its centroid), best first; empty slots hold row -1. */
export interface CentralRows {
  top: number
  /** rows[c * top + j]: cluster c's j-th most central row, or -1. */
  rows: Int32Array
  cosines: Float32Array
}

const better = (cosA: number, rowA: number, cosB: number, rowB: number) => cosA > cosB || (cosA === cosB && rowA < rowB)

/** Insert (row, cosine) into cluster c's list when it beats the last entry (ties: the lower row). */
function offer(into: CentralRows, c: number, row: number, cosine: number): void {
  const { top, rows, cosines } = into
  const base = c * top
  let j = top - 1
  if (rows[base + j] >= 0 && !better(cosine, row, cosines[base + j], rows[base + j])) return
  while (j > 0 && (rows[base + j - 1] < 0 || better(cosine, row, cosines[base + j - 1], rows[base + j - 1]))) {
    rows[base + j] = rows[base + j - 1]
    cosines[base + j] = cosines[base + j - 1]
    j--
  }
  rows[base + j] = row
  cosines[base + j] = cosine
}

export function emptyCentral(k: number, top: number): CentralRows {
  return { top, rows: new Int32Array(k * top).fill(-1), cosines: new Float32Array(k * top) }
}

/** The most central rows of each cluster among rows start .. start + n - 1 (rows with no column are left out). */
export function centralRows(
  assignments: Int32Array,
  cosines: Float32Array,
  rows: BinaryRows,
  start: number,
  k: number,
  top: number
): CentralRows {
  const out = emptyCentral(k, top)
  for (let i = 0; i < assignments.length; i++)
    if (rows.indptr[i + 1] > rows.indptr[i]) offer(out, assignments[i], start + i, cosines[i])
  return out
}

/** into += add: each cluster keeps the best `top` of both lists. */
export function mergeCentral(into: CentralRows, add: CentralRows): CentralRows {
  if (into.top !== add.top || into.rows.length !== add.rows.length)
    throw new RangeError('central rows of different shapes')
  const k = into.rows.length / into.top
  for (let c = 0; c < k; c++)
    for (let j = 0; j < add.top; j++) {
      const row = add.rows[c * add.top + j]
      if (row >= 0) offer(into, c, row, add.cosines[c * add.top + j])
    }
  return into
}

/** One assignment part's result: the clusters of rows [start, start + assignments.length) and their counts. */
export interface AssignPartial {
  start: number
  assignments: Int32Array
  counts: ClusterCounts
  /** Rows of the part with none of the columns. */
  empty: number
  /** Each cluster's most central rows of the part (absent in partials of older workers). */
  central?: CentralRows
}

const MAGIC = 0x4c424341 // "LBCA": without central rows
const MAGIC_CENTRAL = 0x4c424332 // "LBC2"

/**
 * Bytes of a partial: a header of Int32 (magic, start, rows, k, m, empty, top), then assignments, sizes, inCounts,
 * total, and the central rows and their cosines (float32 bits).
 */
export function encodeAssignPartial(p: AssignPartial): Uint8Array {
  const { k, m } = p.counts
  if (!p.central)
    return packInt32(
      [MAGIC, p.start, p.assignments.length, k, m, p.empty],
      [p.assignments, p.counts.sizes, p.counts.inCounts, p.counts.total]
    )
  return packInt32(
    [MAGIC_CENTRAL, p.start, p.assignments.length, k, m, p.empty, p.central.top],
    [
      p.assignments,
      p.counts.sizes,
      p.counts.inCounts,
      p.counts.total,
      p.central.rows,
      new Int32Array(p.central.cosines.buffer, p.central.cosines.byteOffset, p.central.cosines.length)
    ]
  )
}

export function decodeAssignPartial(bytes: Uint8Array): AssignPartial {
  const magic = bytes.byteLength >= 4 ? new DataView(bytes.buffer, bytes.byteOffset).getInt32(0, true) : 0
  if (magic !== MAGIC_CENTRAL) {
    const { header, take } = unpackInt32(bytes, 6, MAGIC, 'a clustering partial')
    const [, start, n, k, m, empty] = header
    const [assignments, sizes, inCounts, total] = take([n, k, k * m, m])
    return { start, assignments, counts: { k, m, sizes, inCounts, total }, empty }
  }
  const { header, take } = unpackInt32(bytes, 7, MAGIC_CENTRAL, 'a clustering partial')
  const [, start, n, k, m, empty, top] = header
  const [assignments, sizes, inCounts, total, rows, cosineBits] = take([n, k, k * m, m, k * top, k * top])
  const cosines = new Float32Array(cosineBits.buffer, cosineBits.byteOffset, cosineBits.length)
  return { start, assignments, counts: { k, m, sizes, inCounts, total }, empty, central: { top, rows, cosines } }
}

/** An Int32 header followed by Int32 arrays, as bytes. */
function packInt32(header: number[], parts: Int32Array[]): Uint8Array {
  const out = new Int32Array(header.length + parts.reduce((s, p) => s + p.length, 0))
  out.set(header)
  let at = header.length
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return new Uint8Array(out.buffer)
}

/** The header of packInt32's bytes (checked against `magic`), and the arrays of the lengths it implies. */
function unpackInt32(bytes: Uint8Array, headerLength: number, magic: number, what: string) {
  if (bytes.byteLength % 4 !== 0 || bytes.byteLength < headerLength * 4) throw new Error(`not ${what} (bad length)`)
  const all = new Int32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))
  if (all[0] !== magic) throw new Error(`not ${what} (bad magic)`)
  const take = (lengths: number[]): Int32Array[] => {
    if (all.length !== headerLength + lengths.reduce((s, x) => s + x, 0)) throw new Error(`${what} of the wrong size`)
    let at = headerLength
    return lengths.map(len => all.subarray(at, (at += len)))
  }
  return { header: all.subarray(0, headerLength), take }
}

/** What a clustering fitted on a sample hands to the parts that extend it: the sample, its clusters and counts. */
export interface FittedSample {
  /** Sampled rows (ascending) and their fitted clusters. */
  rows: Int32Array
  assignments: Int32Array
  /** Column -> latent id: the columns every part binarizes with. */
  latentOf: Int32Array
  /** The sample's per-cluster counts: the centroids. */
  counts: ClusterCounts
}

const FIT_MAGIC = 0x4c424346 // "LBCF"

/** Bytes of a fitted sample: Int32 header (magic, s, k, m), then rows, assignments, latentOf, sizes, inCounts, total. */
export function encodeFit(f: FittedSample): Uint8Array {
  const { k, m } = f.counts
  return packInt32(
    [FIT_MAGIC, f.rows.length, k, m],
    [f.rows, f.assignments, f.latentOf, f.counts.sizes, f.counts.inCounts, f.counts.total]
  )
}

export function decodeFit(bytes: Uint8Array): FittedSample {
  const { header, take } = unpackInt32(bytes, 4, FIT_MAGIC, 'a fitted sample')
  const [, s, k, m] = header
  const [rows, assignments, latentOf, sizes, inCounts, total] = take([s, s, m, k, k * m, m])
  return { rows, assignments, latentOf, counts: { k, m, sizes, inCounts, total } }
}

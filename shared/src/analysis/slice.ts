/** @module Evaluating a slice over columnar document data and latent columns (pure, typed arrays), and restricting sparse matrices to the rows of a slice. */
import { metadataPath, type NumberRange, type Slice, type SliceScalar } from '../contract/slice.ts'
import type { PooledCsr } from './sparse.ts'
import { emptyStats, histogramSlot, HISTOGRAM_SLOTS, type LatentStats } from './latent-stats.ts'

/**
 * What a slice is evaluated over. Document columns are aligned with `documents.row` (ascending dataset rows) and only
 * need to hold the columns the slice uses (see sliceNeeds); `latents` holds, for each latent the slice names, its
 * present documents (ascending) and pooled values, as the by-latent shards store them.
 */
export interface SliceData {
  /** Dataset rows are 0..nDocs-1; `not` complements within them. */
  nDocs: number
  documents?: {
    row: Int32Array
    /** The metadata column as stored (JSON text per document) or already parsed. */
    metadata?: ArrayLike<string | Record<string, unknown> | null>
    tokenCount?: ArrayLike<number>
  }
  latents?: Map<number, { docs: ArrayLike<number>; values: ArrayLike<number> }>
}

function inRange(v: number, r: NumberRange): boolean {
  return (
    (r.gt === undefined || v > r.gt) &&
    (r.gte === undefined || v >= r.gte) &&
    (r.lt === undefined || v < r.lt) &&
    (r.lte === undefined || v <= r.lte)
  )
}

/** A metadata value as a number for range conditions: numbers, and strings holding one (CSV sources store text). */
function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v)
    return Number.isFinite(n) ? n : undefined
  }
  return undefined
}

/** Equality of a metadata value with a slice scalar: strict, except that a number matches a string spelling that number. */
export function metadataEquals(v: unknown, x: SliceScalar): boolean {
  if (v === x) return true
  if (v === undefined) return false
  if (typeof x === 'number' && typeof v === 'string') return asNumber(v) === x
  if (typeof v === 'number' && typeof x === 'string') return asNumber(x) === v
  return false
}

/** The value at a metadata key: the whole key first ("user.id" as one key), then as a path into nested objects. */
export function metadataValue(meta: Record<string, unknown> | null | undefined, key: string): unknown {
  if (!meta) return undefined
  if (Object.hasOwn(meta, key)) return meta[key]
  if (!key.includes('.')) return undefined
  let at: unknown = meta
  for (const part of key.split('.')) {
    if (typeof at !== 'object' || at === null || Array.isArray(at) || !Object.hasOwn(at, part)) return undefined
    at = (at as Record<string, unknown>)[part]
  }
  return at
}

/** Evaluate a slice to a mask over dataset rows (1 = in the slice). */
export function sliceMask(slice: Slice, data: SliceData): Uint8Array {
  const n = data.nDocs
  let parsed: Array<Record<string, unknown> | null> | undefined
  const metadataOf = (): Array<Record<string, unknown> | null> => {
    if (parsed) return parsed
    const col = data.documents?.metadata
    if (!col) throw new Error('the slice has metadata conditions but no metadata column was read')
    parsed = new Array(col.length)
    for (let i = 0; i < col.length; i++) {
      const m = col[i]
      const obj = typeof m === 'string' ? (m === '' ? null : JSON.parse(m)) : m
      parsed[i] = obj && typeof obj === 'object' && !Array.isArray(obj) ? obj : null
    }
    return parsed
  }
  const rows = () => {
    const r = data.documents?.row
    if (!r) throw new Error('the slice has document conditions but no documents were read')
    return r
  }
  const evaluate = (s: Slice): Uint8Array => {
    if ('and' in s) {
      const out = evaluate(s.and[0])
      for (let j = 1; j < s.and.length; j++) {
        const m = evaluate(s.and[j])
        for (let i = 0; i < n; i++) out[i] &= m[i]
      }
      return out
    }
    if ('or' in s) {
      const out = evaluate(s.or[0])
      for (let j = 1; j < s.or.length; j++) {
        const m = evaluate(s.or[j])
        for (let i = 0; i < n; i++) out[i] |= m[i]
      }
      return out
    }
    if ('not' in s) {
      const out = evaluate(s.not)
      for (let i = 0; i < n; i++) out[i] ^= 1
      return out
    }
    const out = new Uint8Array(n)
    if ('tokens' in s) {
      const row = rows()
      const tokens = data.documents?.tokenCount
      if (!tokens) throw new Error('the slice has token-count conditions but no token_count column was read')
      for (let i = 0; i < row.length; i++) if (row[i] < n && inRange(tokens[i], s.tokens)) out[row[i]] = 1
      return out
    }
    if ('latent' in s) {
      const col = data.latents?.get(s.latent)
      if (!col) throw new Error(`the slice names latent ${s.latent} but its column was not read`)
      const { latent: _, ...range } = s
      // No range: present (pooled value > 0). A document without the latent has value 0, so a range holding 0
      // (say, latent 5 < 0.3) takes in every document where the latent is absent.
      const test = Object.keys(range).length ? (v: number) => inRange(v, range) : (v: number) => v > 0
      if (test(0)) out.fill(1)
      for (let k = 0; k < col.docs.length; k++) {
        const d = col.docs[k]
        if (d < n) out[d] = test(col.values[k]) ? 1 : 0
      }
      return out
    }
    const key = metadataPath(s.field)
    if (key === null) throw new Error(`not a metadata field: ${s.field}`)
    const row = rows()
    const meta = metadataOf()
    let test: (v: unknown) => boolean
    if ('eq' in s) {
      const x = s.eq
      test = v => metadataEquals(v, x)
    } else if ('ne' in s) {
      const x = s.ne
      test = v => !metadataEquals(v, x)
    } else if ('in' in s) {
      const xs = s.in
      test = v => xs.some(x => metadataEquals(v, x))
    } else if ('exists' in s) {
      const want = s.exists
      test = v => (v !== undefined && v !== null) === want
    } else {
      const { field: _, ...range } = s as { field: string } & NumberRange
      test = v => {
        const x = asNumber(v)
        return x !== undefined && inRange(x, range)
      }
    }
    for (let i = 0; i < row.length; i++) if (row[i] < n && test(metadataValue(meta[i], key))) out[row[i]] = 1
    return out
  }
  return evaluate(slice)
}

/** Evaluate a slice to its dataset rows, ascending. */
export function evaluateSlice(slice: Slice, data: SliceData): Int32Array {
  return maskToRows(sliceMask(slice, data))
}

export function maskToRows(mask: Uint8Array): Int32Array {
  let count = 0
  for (let i = 0; i < mask.length; i++) count += mask[i]
  const out = new Int32Array(count)
  for (let i = 0, j = 0; i < mask.length; i++) if (mask[i]) out[j++] = i
  return out
}

/**
 * Presence counts (pooled value > 0) per latent over the given dataset rows (ascending) of a CSR that starts at
 * dataset row `docStart`: the slice's version of the stats file's doc_count.
 */
export function presenceCountsOfRows(m: PooledCsr & { docStart?: number }, rows: ArrayLike<number>): Int32Array {
  const counts = new Int32Array(m.nLatents)
  const start = m.docStart ?? 0
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] - start
    if (r < 0 || r >= m.nDocs)
      throw new RangeError(`row ${rows[i]} is outside the matrix's rows [${start}, ${start + m.nDocs})`)
    for (let k = m.indptr[r]; k < m.indptr[r + 1]; k++) if (m.values[k] > 0) counts[m.latents[k]]++
  }
  return counts
}

/**
 * Per latent over the given dataset rows (each once): documents where it is present (value > 0), the sum and the
 * largest of those values, i.e. the statistics file's doc_count, sum and max for a slice.
 */
export function valueStatsOfRows(
  m: PooledCsr & { docStart?: number },
  rows: ArrayLike<number>
): { docCount: Int32Array; sum: Float64Array; max: Float32Array } {
  const docCount = new Int32Array(m.nLatents)
  const sum = new Float64Array(m.nLatents)
  const max = new Float32Array(m.nLatents)
  const start = m.docStart ?? 0
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] - start
    if (r < 0 || r >= m.nDocs)
      throw new RangeError(`row ${rows[i]} is outside the matrix's rows [${start}, ${start + m.nDocs})`)
    for (let k = m.indptr[r]; k < m.indptr[r + 1]; k++) {
      const v = m.values[k]
      if (!(v > 0)) continue
      const l = m.latents[k]
      docCount[l]++
      sum[l] += v
      if (v > max[l]) max[l] = v
    }
  }
  return { docCount, sum, max }
}

/** The CSR of the given dataset rows only, in the order given: row i of the result is dataset row rows[i]. */
export function selectRows(m: PooledCsr & { docStart?: number }, rows: ArrayLike<number>): PooledCsr {
  const start = m.docStart ?? 0
  const indptr = new Int32Array(rows.length + 1)
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] - start
    if (r < 0 || r >= m.nDocs)
      throw new RangeError(`row ${rows[i]} is outside the matrix's rows [${start}, ${start + m.nDocs})`)
    indptr[i + 1] = indptr[i] + m.indptr[r + 1] - m.indptr[r]
  }
  const nnz = indptr[rows.length]
  const latents = new Int32Array(nnz)
  const values = new Float32Array(nnz)
  const positions = new Int32Array(nnz)
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] - start
    const a = m.indptr[r]
    const b = m.indptr[r + 1]
    latents.set(m.latents.subarray(a, b), indptr[i])
    values.set(m.values.subarray(a, b), indptr[i])
    positions.set(m.positions.subarray(a, b), indptr[i])
  }
  return { nDocs: rows.length, nLatents: m.nLatents, indptr, latents, values, positions }
}

/** Values of a column at the given positions (e.g. the documents of a slice, as indexes into a full column). */
export function pick<T extends Int32Array | Float32Array | Float64Array>(col: T, at: ArrayLike<number>): T {
  const out = new (col.constructor as { new (n: number): T })(at.length)
  for (let i = 0; i < at.length; i++) out[i] = col[at[i]]
  return out
}

/**
 * One latent's statistics (count, sum, max, histogram: a one-latent LatentStats, so `quantile` applies) over the
 * documents of a slice, from its by-latent column (`docs` ascending, pooled `values`) and the slice's rows (ascending).
 */
export function latentStatsOfRows(
  docs: ArrayLike<number>,
  values: ArrayLike<number>,
  rows: ArrayLike<number>
): LatentStats {
  const s = emptyStats(1, 1)
  let j = 0
  for (let k = 0; k < docs.length; k++) {
    const d = docs[k]
    while (j < rows.length && rows[j] < d) j++
    if (j >= rows.length) break
    if (rows[j] !== d) continue
    const v = values[k]
    if (!(v > 0)) continue
    s.docCount[0]++
    s.sum[0] += v
    if (v > s.max[0]) s.max[0] = v
    s.histogram[histogramSlot(v)]++
  }
  if (s.histogram.length !== HISTOGRAM_SLOTS) throw new Error('one latent has HISTOGRAM_SLOTS slots')
  return s
}

/**
 * The `k` entries of one latent's column (documents ascending, values) whose documents are in `rows` (ascending) and
 * whose values are largest (present only: value > 0), value descending, ties to the lower document.
 */
export function strongestInRows(
  docs: ArrayLike<number>,
  values: ArrayLike<number>,
  rows: ArrayLike<number>,
  k: number
): Int32Array {
  const found: number[] = []
  let j = 0
  for (let e = 0; e < docs.length; e++) {
    const d = docs[e]
    while (j < rows.length && rows[j] < d) j++
    if (j >= rows.length) break
    if (rows[j] === d && values[e] > 0) found.push(e)
  }
  found.sort((x, y) => values[y] - values[x] || docs[x] - docs[y])
  return Int32Array.from(found.slice(0, k))
}

/** Whether each of `docs` is one of the slice's rows (ascending); `docs` in any order. */
export function inRows(rows: Int32Array, docs: ArrayLike<number>): boolean[] {
  return Array.from(docs, d => {
    let lo = 0,
      hi = rows.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (rows[mid] < d) lo = mid + 1
      else hi = mid
    }
    return lo < rows.length && rows[lo] === d
  })
}

/**
 * Add a CSR's rows (the slice's documents only) to per-latent presence counts and top values: the slice's version of
 * the stats file's doc_count and top_values (K values per latent, descending, 0 where fewer documents have it).
 */
export function accumulatePresenceAndTop(m: PooledCsr, docCount: Int32Array, topValues: Float32Array, K: number): void {
  for (let k = 0; k < m.latents.length; k++) {
    const v = m.values[k]
    if (!(v > 0)) continue
    const l = m.latents[k]
    docCount[l]++
    const base = l * K
    if (!(v > topValues[base + K - 1])) continue
    let i = K - 1
    while (i > 0 && topValues[base + i - 1] < v) {
      topValues[base + i] = topValues[base + i - 1]
      i--
    }
    topValues[base + i] = v
  }
}

/**
 * Chunks of a slice's rows to read together: [i, j) index ranges of `rows` holding at most `maxRows` rows and spanning
 * fewer than `maxRows` dataset rows, so a sparse slice never reads (and holds) a huge range for a few documents.
 */
export function rowChunks(rows: Int32Array, maxRows: number): Array<[number, number]> {
  const out: Array<[number, number]> = []
  for (let i = 0; i < rows.length; ) {
    let j = i + 1
    while (j < rows.length && j - i < maxRows && rows[j] - rows[i] < maxRows) j++
    out.push([i, j])
    i = j
  }
  return out
}

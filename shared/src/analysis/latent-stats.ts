/**
 * @module Per-latent statistics as pure functions over typed arrays: document counts, sums, maxima, a fixed log
 * histogram and top-k documents that merge exactly across chunks encoded in parallel, and quantiles read from the
 * histogram. Their Parquet file is store/stats/.
 */
import type { PooledCsr } from './sparse.ts'

/** Regular histogram bins: 8 per decade from 1e-4 to 1e4. Fixed, so histograms of any two chunks add up. */
export const HISTOGRAM_BINS = 64
export const HISTOGRAM_MIN = 1e-4
export const HISTOGRAM_MAX = 1e4
/** The 65 bin edges; bin b (1-based slot b + 1) is [EDGES[b], EDGES[b + 1]). */
export const HISTOGRAM_EDGES: Float64Array = Float64Array.from(
  { length: HISTOGRAM_BINS + 1 },
  // Decades written as literals: 10 ** -4 is 9.999999999999999e-5, and the end edges should be exactly 1e-4 and 1e4.
  (_, i) => (i % 8 === 0 ? Number(`1e${i / 8 - 4}`) : 10 ** (-4 + i / 8))
)
/** Slots per latent: underflow (0 < v < 1e-4), the 64 bins, overflow (v >= 1e4). */
export const HISTOGRAM_SLOTS = HISTOGRAM_BINS + 2
export const DEFAULT_TOP_K = 16

const LOG_MIN = Math.log(HISTOGRAM_MIN)
const BINS_PER_LOG = HISTOGRAM_BINS / (Math.log(HISTOGRAM_MAX) - LOG_MIN)

export interface LatentStats {
  nLatents: number
  /** Documents where the latent is present (pooled value > 0). */
  docCount: Int32Array
  sum: Float64Array
  /** Largest pooled value (0 when never present). */
  max: Float32Array
  /** nLatents x HISTOGRAM_SLOTS counts of the present values. */
  histogram: Int32Array
  /** nLatents x topK: best documents by value, descending, ties by lower doc; empty slots hold doc -1, value 0. */
  topDocs: Int32Array
  topValues: Float32Array
  topK: number
}

export function emptyStats(nLatents: number, topK = DEFAULT_TOP_K): LatentStats {
  return {
    nLatents,
    docCount: new Int32Array(nLatents),
    sum: new Float64Array(nLatents),
    max: new Float32Array(nLatents),
    histogram: new Int32Array(nLatents * HISTOGRAM_SLOTS),
    topDocs: new Int32Array(nLatents * topK).fill(-1),
    topValues: new Float32Array(nLatents * topK),
    topK
  }
}

/** Histogram slot of a present value (v > 0). */
export function histogramSlot(v: number): number {
  if (v < HISTOGRAM_MIN) return 0
  if (v >= HISTOGRAM_MAX) return HISTOGRAM_BINS + 1
  let b = Math.floor((Math.log(v) - LOG_MIN) * BINS_PER_LOG)
  // log() rounding can land one bin off right at an edge: settle it against the edges themselves.
  if (b > HISTOGRAM_BINS - 1) b = HISTOGRAM_BINS - 1
  if (b < 0) b = 0
  if (b < HISTOGRAM_BINS - 1 && v >= HISTOGRAM_EDGES[b + 1]) b++
  else if (b > 0 && v < HISTOGRAM_EDGES[b]) b--
  return b + 1
}

/** Insert (doc, value) into latent l's sorted top list if it ranks; order is value desc, then doc asc. */
function offerTop(docs: Int32Array, values: Float32Array, K: number, l: number, doc: number, v: number): void {
  const base = l * K
  let i = K - 1
  const lastDoc = docs[base + i]
  if (lastDoc >= 0 && !(v > values[base + i] || (v === values[base + i] && doc < lastDoc))) return
  // Shift worse entries down one slot until the new one's place is found.
  while (i > 0) {
    const pd = docs[base + i - 1]
    const pv = values[base + i - 1]
    if (pd >= 0 && (pv > v || (pv === v && pd < doc))) break
    docs[base + i] = pd
    values[base + i] = pv
    i--
  }
  docs[base + i] = doc
  values[base + i] = v
}

/** Statistics of one chunk; `docOffset` turns chunk rows into dataset rows for the top-k documents. */
export function statsFromCsr(csr: PooledCsr, docOffset = 0, topK = DEFAULT_TOP_K): LatentStats {
  const s = emptyStats(csr.nLatents, topK)
  const { indptr, latents, values } = csr
  for (let i = 0; i < csr.nDocs; i++) {
    const doc = docOffset + i
    for (let k = indptr[i]; k < indptr[i + 1]; k++) {
      const v = values[k]
      if (!(v > 0)) continue // absent (0), negative or NaN: not "present"
      const l = latents[k]
      s.docCount[l]++
      s.sum[l] += v
      if (v > s.max[l]) s.max[l] = v
      s.histogram[l * HISTOGRAM_SLOTS + histogramSlot(v)]++
      offerTop(s.topDocs, s.topValues, topK, l, doc, v)
    }
  }
  return s
}

/**
 * Statistics of the union of two disjoint sets of documents. Counts, maxima and top-k merge exactly (top-k ties go
 * to the lower doc, so any merge order gives the same lists); sums are float additions, exact up to rounding.
 */
export function mergeStats(a: LatentStats, b: LatentStats): LatentStats {
  if (a.nLatents !== b.nLatents) throw new Error(`cannot merge statistics of ${a.nLatents} and ${b.nLatents} latents`)
  if (a.topK !== b.topK) throw new Error(`cannot merge top-${a.topK} with top-${b.topK} lists`)
  const K = a.topK
  const out = emptyStats(a.nLatents, K)
  for (let l = 0; l < a.nLatents; l++) {
    out.docCount[l] = a.docCount[l] + b.docCount[l]
    out.sum[l] = a.sum[l] + b.sum[l]
    out.max[l] = Math.max(a.max[l], b.max[l])
  }
  for (let i = 0; i < out.histogram.length; i++) out.histogram[i] = a.histogram[i] + b.histogram[i]
  for (let l = 0; l < a.nLatents; l++) {
    const base = l * K
    let i = 0
    let j = 0
    for (let o = 0; o < K; o++) {
      const da = i < K ? a.topDocs[base + i] : -1
      const db = j < K ? b.topDocs[base + j] : -1
      if (da < 0 && db < 0) break
      const va = a.topValues[base + i]
      const vb = b.topValues[base + j]
      const takeA = db < 0 || (da >= 0 && (va > vb || (va === vb && da < db)))
      if (takeA) {
        out.topDocs[base + o] = da
        out.topValues[base + o] = va
        i++
      } else {
        out.topDocs[base + o] = db
        out.topValues[base + o] = vb
        j++
      }
    }
  }
  return out
}

/**
 * The q-quantile of a latent's present values, read from its histogram: the bin holding rank q * count, with
 * log-linear interpolation inside it (so the answer is within one bin of the exact quantile). NaN when never present.
 */
export function quantile(stats: LatentStats, latent: number, q: number): number {
  const base = latent * HISTOGRAM_SLOTS
  let total = 0
  for (let s = 0; s < HISTOGRAM_SLOTS; s++) total += stats.histogram[base + s]
  if (total === 0) return NaN
  const target = Math.min(Math.max(q, 0), 1) * total
  let cum = 0
  for (let s = 0; s < HISTOGRAM_SLOTS; s++) {
    const c = stats.histogram[base + s]
    if (c === 0 || cum + c < target) {
      cum += c
      continue
    }
    const frac = (target - cum) / c
    let v: number
    if (s === 0) v = HISTOGRAM_MIN * frac
    else if (s === HISTOGRAM_SLOTS - 1)
      v = HISTOGRAM_MAX + (Math.max(stats.max[latent], HISTOGRAM_MAX) - HISTOGRAM_MAX) * frac
    else {
      const lo = HISTOGRAM_EDGES[s - 1]
      const hi = HISTOGRAM_EDGES[s]
      v = lo * (hi / lo) ** frac
    }
    return stats.max[latent] > 0 ? Math.min(v, stats.max[latent]) : v
  }
  return stats.max[latent]
}

export function p90(stats: LatentStats, latent: number): number {
  return quantile(stats, latent, 0.9)
}

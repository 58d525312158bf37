/**
 * @module Per-latent document counts of slices of a dataset (a sliced diff) and per-latent statistics of a slice or of
 * every document (correlations' counts, top values, presence under thresholds), from the by-latent sidecars in bounded
 * chunks, without decoding or holding the by-document shards over the rows' span.
 */
import type { ShardFile } from '../../contract/manifest.ts'
import type { ObjectStore } from '../object-store.ts'
import { cscKey, scanCscLatents } from './csc.ts'
import { warnSidecarOnce } from './read-by-latent.ts'
import { mapLimit } from '../../util/map-limit.ts'

/** Bytes of sidecar entries per read: with the read ahead, a pass holds about twice this. */
const CHUNK_BYTES = 8 << 20
/**
 * Files scanned at once: one S3 or R2 stream gives ~50-100 MB/s, so a pass over GBs of sidecars wants several reads in
 * flight. On this project's local disk 4 against 1 measured within +-15% (first call faster, repeated ones slower) and
 * +70 MB peak; each scan holds two chunks, so a pass holds at most 2 x FILES_AT_ONCE x CHUNK_BYTES.
 */
const FILES_AT_ONCE = 4
/** Slices counted in one pass (one bit each in the row mask). */
const SLICES_PER_PASS = 8

export interface SliceCountsOptions {
  chunkBytes?: number
  /**
   * Told when a sidecar cannot be read (the answer is then null: the caller reads the by-document shards). Default:
   * one console.warn per key and process, as readByLatent does.
   */
  onSidecarError?: (key: string, error: Error) => void
}

/**
 * For each slice (ascending dataset rows), the number of its documents in which each latent is present, counted over
 * every by-latent sidecar once per 8 slices. Null when a file has no sidecar or one cannot be read: the caller then
 * counts from the by-document shards, which hold the same entries.
 */
export async function slicePresenceCounts(
  store: ObjectStore,
  datasetPrefix: string,
  byLatent: ShardFile[],
  slices: Int32Array[],
  shape: { nDocs: number; nLatents: number },
  options: SliceCountsOptions = {}
): Promise<Int32Array[] | null> {
  if (!byLatent.every(f => f.cscBytes !== undefined)) return null
  const out: Int32Array[] = []
  for (let s0 = 0; s0 < slices.length; s0 += SLICES_PER_PASS) {
    const group = slices.slice(s0, s0 + SLICES_PER_PASS)
    const counts = await countPass(store, datasetPrefix, byLatent, group, shape, options)
    if (!counts) return null
    out.push(...counts)
  }
  return out
}

async function countPass(
  store: ObjectStore,
  datasetPrefix: string,
  files: ShardFile[],
  slices: Int32Array[],
  { nDocs, nLatents }: { nDocs: number; nLatents: number },
  options: SliceCountsOptions
): Promise<Int32Array[] | null> {
  const mask = new Uint8Array(nDocs)
  slices.forEach((rows, s) => {
    for (let i = 0; i < rows.length; i++) mask[rows[i]] |= 1 << s
  })
  const counts = slices.map(() => new Int32Array(nLatents))
  const [first, second] = counts
  const perBit = new Int32Array(SLICES_PER_PASS)
  // Branch-free on the mask (a slice's documents are spread over the rows, so a branch on it is mispredicted half the
  // time): 3-4x faster than testing each bit, measured on 27M entries; one and two slices (a diff's a and b) keep their
  // counters in registers. `| 0`: a document past nDocs, which a consistent store never has, counts for no slice.
  const visit = (latent: number, docs: Int32Array, values: Float32Array, at: number, n: number) => {
    if (latent >= nLatents) return
    // docs[at + k] is the k-th document, values[at + n + k] its value.
    const end = at + n
    if (counts.length === 1) {
      let c = 0
      for (let k = at; k < end; k++) if (values[k + n] > 0) c += mask[docs[k]] | 0
      first[latent] += c
    } else if (counts.length === 2) {
      let c0 = 0
      let c1 = 0
      for (let k = at; k < end; k++) {
        const m = values[k + n] > 0 ? mask[docs[k]] | 0 : 0
        c0 += m & 1
        c1 += m >> 1
      }
      first[latent] += c0
      second[latent] += c1
    } else {
      for (let k = at; k < end; k++) {
        let m = values[k + n] > 0 ? mask[docs[k]] | 0 : 0
        for (let s = 0; m !== 0; s++, m >>= 1) perBit[s] += m & 1
      }
      for (let s = 0; s < counts.length; s++) {
        counts[s][latent] += perBit[s]
        perBit[s] = 0
      }
    }
  }
  return (await scanFilesWithRows(store, datasetPrefix, files, slices, options, visit)) ? counts : null
}

/**
 * Scans the sidecars of the files holding a row of some slice (every file when `slices` is null), FILES_AT_ONCE at a
 * time, each overlapping its next read with the visit. False when a sidecar cannot be read (the first failure is said
 * through onSidecarError, by default once in the log; the scans not yet begun are skipped).
 */
async function scanFilesWithRows(
  store: ObjectStore,
  datasetPrefix: string,
  files: ShardFile[],
  slices: Int32Array[] | null,
  options: SliceCountsOptions,
  visit: Parameters<typeof scanCscLatents>[4]
): Promise<boolean> {
  const holdsRows = (f: ShardFile) =>
    !slices ||
    f.docStart === undefined ||
    f.docCount === undefined ||
    slices.some(rows => anyIn(rows, f.docStart!, f.docStart! + f.docCount!))
  let failed = false
  await mapLimit(files.filter(holdsRows), FILES_AT_ONCE, async file => {
    if (failed) return
    try {
      await scanCscLatents(store, datasetPrefix, file, options.chunkBytes ?? CHUNK_BYTES, visit)
    } catch (error) {
      if (!failed) (options.onSidecarError ?? warnSidecarOnce)(datasetPrefix + cscKey(file.key), error as Error)
      failed = true
    }
  })
  return !failed
}

/** Whether ascending `rows` has a row in [lo, hi). */
function anyIn(rows: Int32Array, lo: number, hi: number): boolean {
  let a = 0
  let b = rows.length
  while (a < b) {
    const mid = (a + b) >> 1
    if (rows[mid] < lo) a = mid + 1
    else b = mid
  }
  return a < rows.length && rows[a] < hi
}

/** Per-latent document counts, and optionally each latent's strongest values, of a slice or of every document. */
export interface SidecarLatentStats {
  docCount: Int32Array
  /** topValues[latent * topK + i]: the latent's i-th largest value (descending, 0 past its count); with `topK`. */
  topValues?: Float32Array
  /** With `values`: each latent's sum and largest value over the documents counted (0 where none). */
  sum?: Float64Array
  max?: Float32Array
}

/**
 * Per-latent document counts over `rows` (ascending dataset rows; null: every document) of the entries with value > 0,
 * or value >= minValue[latent] when given, and with `topK` each latent's topK largest values: the statistics file's
 * `doc_count` and `top_values` for a slice, or presence under thresholds; with `values`, its `sum` and `max` too. One
 * pass over the by-latent sidecars in
 * bounded chunks; null when a file has no sidecar or one cannot be read (the caller reads the by-document shards).
 */
export async function sidecarLatentStats(
  store: ObjectStore,
  datasetPrefix: string,
  byLatent: ShardFile[],
  rows: Int32Array | null,
  { nDocs, nLatents }: { nDocs: number; nLatents: number },
  options: SliceCountsOptions & { topK?: number; minValue?: Float32Array; values?: boolean } = {}
): Promise<SidecarLatentStats | null> {
  if (!byLatent.every(f => f.cscBytes !== undefined)) return null
  const mask = rows ? new Uint8Array(nDocs) : null
  if (mask && rows) for (let i = 0; i < rows.length; i++) mask[rows[i]] = 1
  const docCount = new Int32Array(nLatents)
  const K = options.topK ?? 0
  const topValues = K ? new Float32Array(nLatents * K) : undefined
  const minValue = options.minValue
  const sum = options.values ? new Float64Array(nLatents) : undefined
  const max = options.values ? new Float32Array(nLatents) : undefined
  const visit = (latent: number, docs: Int32Array, values: Float32Array, at: number, n: number) => {
    if (latent >= nLatents) return
    const floor = minValue ? minValue[latent] : 0
    const base = latent * K
    let count = 0
    for (let k = at; k < at + n; k++) {
      const v = values[k + n]
      if (!(v > 0 && v >= floor) || (mask && mask[docs[k]] !== 1)) continue
      count++
      if (sum && max) {
        sum[latent] += v
        if (v > max[latent]) max[latent] = v
      }
      if (!topValues || !(v > topValues[base + K - 1])) continue
      let i = K - 1
      while (i > 0 && topValues[base + i - 1] < v) {
        topValues[base + i] = topValues[base + i - 1]
        i--
      }
      topValues[base + i] = v
    }
    docCount[latent] += count
  }
  if (!(await scanFilesWithRows(store, datasetPrefix, byLatent, rows ? [rows] : null, options, visit))) return null
  return { docCount, ...(topValues ? { topValues } : {}), ...(sum && max ? { sum, max } : {}) }
}

/**
 * Per document, the sum of `latentWeight` over the latents present in it (value > 0): e.g. a document's squared norm
 * under per-latent weights. One pass over every by-latent sidecar; null when a file has none or one cannot be read (the
 * caller reads the by-document shards, which hold the same entries).
 */
export async function sidecarDocumentSums(
  store: ObjectStore,
  datasetPrefix: string,
  byLatent: ShardFile[],
  latentWeight: Float64Array,
  nDocs: number,
  options: SliceCountsOptions = {}
): Promise<Float64Array | null> {
  if (!byLatent.every(f => f.cscBytes !== undefined)) return null
  const sums = new Float64Array(nDocs)
  const visit = (latent: number, docs: Int32Array, values: Float32Array, at: number, n: number) => {
    const w = latent < latentWeight.length ? latentWeight[latent] : 0
    if (w === 0) return
    for (let k = at; k < at + n; k++) if (values[k + n] > 0 && docs[k] < nDocs) sums[docs[k]] += w
  }
  return (await scanFilesWithRows(store, datasetPrefix, byLatent, null, options, visit)) ? sums : null
}

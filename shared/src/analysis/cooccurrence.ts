/**
 * @module Latent co-occurrence over binary presence per document: frequency filters, pair counts from the sparse rows
 * without a dense documents x latents (or latents x latents) matrix, NPMI, and the adjacency of the latents' max positions.
 */
import type { PooledCsr } from './sparse.ts'

/**
 * NPMI of a pair seen together in `count` of `n` documents, `countA` and `countB` alone:
 * ln(P(a,b) / P(a)P(b)) / -ln P(a,b); 1 when P(a,b) = 1; NaN when they never co-occur (such pairs are not listed).
 */
export function npmi(count: number, countA: number, countB: number, n: number): number {
  if (!(count > 0) || !(n > 0)) return NaN
  if (count >= n) return 1
  const pab = count / n
  const lnPab = Math.log(pab)
  return (lnPab - Math.log(countA / n) - Math.log(countB / n)) / -lnPab
}

export interface CooccurrenceOptions {
  /** Drop latents present in fewer than this share of documents (default 0). */
  minFrequency?: number
  /** Drop latents present in more than this share of documents (default 0.5). */
  maxFrequency?: number
  /** Documents where both are present (default 5); also drops latents seen in fewer documents, at no loss. */
  minCount?: number
  /** Default 0.5. */
  minNpmi?: number
  /** Drop pairs whose max positions are within `adjacentTokens` in at least `adjacentShare` of their shared documents (default true). */
  dropAdjacent?: boolean
  /**
   * How many tokens apart two max positions may be and still count as adjacent (default 1: the same or the next
   * token, the paper's rule). The API's default is wider (see contract/correlations.ts).
   */
  adjacentTokens?: number
  /** Default 0.5. */
  adjacentShare?: number
  /**
   * Leave out positional latents (default true): those whose max sits on the same token position (within one) in at
   * least POSITIONAL_SHARE of their documents. They encode where a token is, not what the text says, and pair with
   * each other in exactly the documents long enough to reach those positions.
   */
  dropPositional?: boolean
  /**
   * Pairs kept as candidates (default 200,000): when more pass the thresholds, exactly the best this many are kept
   * (by the table's order), so memory stays bounded, the top pairs stay exact and `truncated` says pairs were left out.
   */
  maxCandidates?: number
  /**
   * Per-latent activation a pooled value must reach to count as present (indexed by latent; absent or 0: any value
   * > 0, the paper's rule). `docCount` must then count presence under the same thresholds (see `presence`).
   */
  minValue?: Float32Array
  /** Called now and then with the share of the pair-counting work done. */
  progress?: (fraction: number) => void
}

/** Pairs sorted by NPMI (descending; ties by count descending, then a, then b), as parallel arrays. */
export interface PairTable {
  length: number
  a: Int32Array
  b: Int32Array
  count: Int32Array
  /** Shared documents where the two max positions are within `adjacentTokens` (default one token). */
  adjacent: Int32Array
  npmi: Float64Array
}

export interface CooccurrenceResult {
  documents: number
  /** Documents where each latent is present (value > 0). */
  docCount: Int32Array
  /** Latents kept by the frequency filters, ascending. */
  considered: Int32Array
  pairs: PairTable
  /** Pairs of considered latents present together in at least one document. */
  pairsCounted: number
  droppedAdjacent: number
  /** Considered latents left out as positional. */
  droppedPositional: number
  truncated: boolean
  /** Pair increments done: sum over documents of m_d (m_d - 1) / 2 for the m_d considered latents present. */
  work: number
}

/**
 * Documents where each latent is present: a value > 0 (zeros, negatives and NaN are absent) and, with `minValue`,
 * at least that latent's threshold. Adds into `into` when given (documents read in slices).
 */
export function presence(
  csr: PooledCsr,
  minValue?: Float32Array,
  into: Int32Array = new Int32Array(csr.nLatents)
): Int32Array {
  const { latents, values } = csr
  if (!minValue)
    for (let k = 0; k < latents.length; k++) {
      if (values[k] > 0) into[latents[k]]++
    }
  else
    for (let k = 0; k < latents.length; k++) {
      const l = latents[k]
      if (values[k] > 0 && values[k] >= minValue[l]) into[l]++
    }
  return into
}

/** Latents whose document count lies in [max(minCount, ceil(minFrequency n)), floor(maxFrequency n)]. */
export function consideredLatents(
  docCount: Int32Array,
  n: number,
  o: Pick<CooccurrenceOptions, 'minFrequency' | 'maxFrequency' | 'minCount'> = {}
): Int32Array {
  const lo = Math.max(1, o.minCount ?? 5, Math.ceil((o.minFrequency ?? 0) * n - 1e-9))
  const hi = Math.floor((o.maxFrequency ?? 0.5) * n + 1e-9)
  let m = 0
  for (let l = 0; l < docCount.length; l++) if (docCount[l] >= lo && docCount[l] <= hi) m++
  const out = new Int32Array(m)
  m = 0
  for (let l = 0; l < docCount.length; l++) if (docCount[l] >= lo && docCount[l] <= hi) out[m++] = l
  return out
}

/** Share of a latent's documents whose max sits at one position (within one token) that makes it positional. */
export const POSITIONAL_SHARE = 0.9
/** ...and the documents it must be seen in first (the default minCount): 5 documents at one position of ~200 by chance have odds ~1e-6. */
export const POSITIONAL_MIN_DOCS = 5

/**
 * Growable parallel arrays of candidate pairs, keeping exactly the best `cap` by the table's order (NPMI descending, then
 * count descending, then a, then b). The kept set depends only on which pairs were offered, not on their order, so
 * buffers filled apart (blocks of rows on several workers) merge into the same pairs as one buffer (see `mergePairs`).
 * The buffer holds at most 2 cap pairs: when full, it keeps its best `cap` and from then on accepts only pairs that
 * beat the worst one kept.
 */
export class Candidates {
  length = 0
  truncated = false
  private floorSet = false
  private fN = 0
  private fC = 0
  private fA = 0
  private fB = 0
  a: Int32Array
  b: Int32Array
  count: Int32Array
  adjacent: Int32Array
  npmi: Float64Array
  constructor(readonly cap: number) {
    if (!(cap >= 1)) throw new RangeError(`the candidate buffer needs room for at least one pair (got ${cap})`)
    const n = Math.min(2 * cap, 4096)
    this.a = new Int32Array(n)
    this.b = new Int32Array(n)
    this.count = new Int32Array(n)
    this.adjacent = new Int32Array(n)
    this.npmi = new Float64Array(n)
  }

  /** Whether (v, count, a, b) comes after the worst pair kept (so it can never be among the best `cap`). */
  private belowFloor(a: number, b: number, count: number, v: number): boolean {
    if (v !== this.fN) return v < this.fN
    if (count !== this.fC) return count < this.fC
    if (a !== this.fA) return a > this.fA
    return b > this.fB
  }

  push(a: number, b: number, count: number, adjacent: number, v: number): void {
    if (this.floorSet && this.belowFloor(a, b, count, v)) {
      this.truncated = true
      return
    }
    if (this.length >= 2 * this.cap) {
      this.trim()
      if (this.belowFloor(a, b, count, v)) return
    }
    if (this.length === this.a.length) this.grow(Math.min(2 * this.cap, Math.max(16, this.a.length * 2)))
    const k = this.length++
    this.a[k] = a
    this.b[k] = b
    this.count[k] = count
    this.adjacent[k] = adjacent
    this.npmi[k] = v
  }

  private grow(n: number): void {
    const g = <T extends Int32Array | Float64Array>(x: T, C: new (n: number) => T) => {
      const y = new C(n)
      y.set(x)
      return y
    }
    this.a = g(this.a, Int32Array)
    this.b = g(this.b, Int32Array)
    this.count = g(this.count, Int32Array)
    this.adjacent = g(this.adjacent, Int32Array)
    this.npmi = g(this.npmi, Float64Array)
  }

  /** Keep the best `cap` (when more are held) and accept only pairs better than the worst of them from now on. */
  private trim(): void {
    const order = this.order()
    if (order.length <= this.cap) return
    const last = order[this.cap - 1]
    this.floorSet = true
    this.fN = this.npmi[last]
    this.fC = this.count[last]
    this.fA = this.a[last]
    this.fB = this.b[last]
    this.permute(order.subarray(0, this.cap))
    this.truncated = true
  }

  order(): Uint32Array {
    const order = new Uint32Array(this.length)
    for (let i = 0; i < order.length; i++) order[i] = i
    const { npmi, count, a, b } = this
    return order.sort((x, y) => npmi[y] - npmi[x] || count[y] - count[x] || a[x] - a[y] || b[x] - b[y])
  }

  permute(order: Uint32Array): void {
    const pick = <T extends Int32Array | Float64Array>(x: T): T => {
      const y = x.slice(0, order.length) as T
      for (let i = 0; i < order.length; i++) y[i] = x[order[i]]
      return y
    }
    this.a = pick(this.a)
    this.b = pick(this.b)
    this.count = pick(this.count)
    this.adjacent = pick(this.adjacent)
    this.npmi = pick(this.npmi)
    this.length = order.length
  }

  /** The best `cap` pairs offered, sorted. */
  table(): PairTable {
    this.trim()
    this.permute(this.order())
    return { length: this.length, a: this.a, b: this.b, count: this.count, adjacent: this.adjacent, npmi: this.npmi }
  }
}

/** What scoring a row of counts needs, and the tallies it keeps (one per counter or block). */
export interface RowScoring {
  considered: Int32Array
  docCount: Int32Array
  positional: Uint8Array
  n: number
  minCount: number
  minNpmi: number
  dropAdjacent: boolean
  adjacentShare: number
  out: Candidates
  pairsCounted: number
  droppedAdjacent: number
}

export function rowScoring(
  considered: Int32Array,
  docCount: Int32Array,
  positional: Uint8Array,
  n: number,
  options: CooccurrenceOptions
): RowScoring {
  return {
    considered,
    docCount,
    positional,
    n,
    minCount: options.minCount ?? 5,
    minNpmi: options.minNpmi ?? 0.5,
    dropAdjacent: options.dropAdjacent ?? true,
    adjacentShare: options.adjacentShare ?? 0.5,
    out: new Candidates(options.maxCandidates ?? 200_000),
    pairsCounted: 0,
    droppedAdjacent: 0
  }
}

/**
 * Score row `a` of the counts (slot b's count at acc[off + 2b], the shared documents with adjacent max positions
 * next to it at acc[off + 2b + 1], for b > a): count, NPMI and adjacency filters, candidates into `s.out`. Zeroes
 * the cells it reads. Count and adjacent count sit side by side so an increment of both touches one cache line.
 * `touched` (its first `nTouched` slots) lists the cells that may be non-zero, for a row whose documents pair `a` with
 * few others: scoring then reads those instead of scanning the m - a - 1 cells after `a`.
 */
export function scoreRow(
  s: RowScoring,
  a: number,
  acc: Int32Array,
  off: number,
  touched?: Int32Array,
  nTouched = 0
): void {
  const m = s.considered.length
  const ca = s.docCount[s.considered[a]]
  if (touched) for (let t = 0; t < nTouched; t++) scoreCell(s, a, ca, touched[t], acc, off)
  else for (let b = a + 1; b < m; b++) if (acc[off + 2 * b] !== 0) scoreCell(s, a, ca, b, acc, off)
}

/** One non-zero cell (a, b) of a row: zeroed, tallied, and a candidate when it passes the filters. */
function scoreCell(s: RowScoring, a: number, ca: number, b: number, acc: Int32Array, off: number): void {
  const at = off + 2 * b
  const c = acc[at]
  const close = acc[at + 1]
  acc[at] = 0
  acc[at + 1] = 0
  if (s.positional[b]) return
  s.pairsCounted++
  if (c < s.minCount) return
  const v = npmi(c, ca, s.docCount[s.considered[b]], s.n)
  if (!(v >= s.minNpmi)) return
  if (s.dropAdjacent && close >= s.adjacentShare * c) {
    s.droppedAdjacent++
    return
  }
  s.out.push(s.considered[a], s.considered[b], c, close, v)
}

/**
 * Co-occurring pairs of latents with NPMI >= minNpmi and count >= minCount, sorted by NPMI.
 *
 * Counting is a row-by-row sparse product X^T X over the considered latents (Gustavson's method): for each latent a,
 * walk the documents holding it and, in each, the considered latents after a, adding into one dense accumulator row of
 * m counts. Memory is the filtered rows (16 bytes per kept entry) plus O(m), never the m(m-1)/2 triangle (505 MB of
 * Int32 at m = 16k), and the accumulator stays in cache where a triangle or a hash of pair keys takes a cache miss
 * per increment (measured: 15.5 s and 680 MB for the triangle against 4.3 s and 230 MB here, 10k x 16k, 474 active).
 *
 * The documents may come in slices (`add`, in row order), so a caller streaming the store never holds the whole
 * CSR: the per-latent document counts, known up front from the latent statistics, size everything.
 */
/** A row is scored from its list of touched cells when it holds fewer than 1/TRACK_BELOW increments per cell. */
const TRACK_BELOW = 4

export class CooccurrenceCounter {
  readonly considered: Int32Array
  private readonly slot: Int32Array
  private readonly fSlot: Int32Array
  private readonly fPos: Int32Array
  private readonly rowEnd: Int32Array
  private readonly perSlot: Int32Array
  private at = 0
  private rows = 0
  private work = 0

  /** `docCount`: documents where each latent is present (value > 0), over all `nDocs` documents to be added. */
  constructor(
    readonly docCount: Int32Array,
    readonly nDocs: number,
    private readonly options: CooccurrenceOptions = {}
  ) {
    this.considered = consideredLatents(docCount, nDocs, options)
    const m = this.considered.length
    this.slot = new Int32Array(docCount.length).fill(-1)
    this.perSlot = new Int32Array(m + 1)
    let kept = 0
    for (let i = 0; i < m; i++) {
      this.slot[this.considered[i]] = i
      kept += docCount[this.considered[i]]
      this.perSlot[i + 1] = kept
    }
    this.fSlot = new Int32Array(kept)
    this.fPos = new Int32Array(kept)
    this.rowEnd = new Int32Array(nDocs)
  }

  /** The next documents, in row order: keeps the considered latents present in them (value > 0). */
  add(csr: PooledCsr): void {
    const { indptr, latents, values, positions } = csr
    const { slot, fSlot, fPos } = this
    const minValue = this.options.minValue
    if (this.rows + csr.nDocs > this.nDocs)
      throw new Error(`more than the ${this.nDocs} documents announced were added`)
    let at = this.at
    for (let d = 0; d < csr.nDocs; d++) {
      const start = at
      for (let k = indptr[d]; k < indptr[d + 1]; k++) {
        const l = latents[k]
        const s = values[k] > 0 && (!minValue || values[k] >= minValue[l]) ? slot[l] : -1
        if (s < 0) continue
        if (at === fSlot.length)
          throw new Error(`the documents hold more of latent ${l} (or others) than its document count says`)
        fSlot[at] = s
        fPos[at] = positions[k]
        at++
      }
      this.rowEnd[this.rows++] = at
      const md = at - start
      this.work += (md * (md - 1)) / 2
    }
    this.at = at
  }

  /** Count every pair, score it and return the pairs that pass, sorted. */
  finish(): CooccurrenceResult {
    const { considered, docCount, fSlot, fPos, rowEnd, perSlot, options } = this
    const n = this.nDocs
    const m = considered.length
    if (this.rows !== n || this.at !== fSlot.length) {
      throw new Error(
        `added ${this.rows} of ${n} documents and ${this.at} of ${fSlot.length} latent entries: the document counts disagree with the rows`
      )
    }
    const near = Math.max(0, Math.floor(options.adjacentTokens ?? 1))
    const work = this.work
    // For each slot, the filtered entries holding it (in document order) and where their row ends.
    const fill = perSlot.slice(0, m)
    const entry = new Int32Array(fSlot.length)
    const entryEnd = new Int32Array(fSlot.length)
    for (let d = 0, k = 0; d < n; d++) {
      for (; k < rowEnd[d]; k++) {
        const e = fill[fSlot[k]]++
        entry[e] = k
        entryEnd[e] = rowEnd[d]
      }
    }
    for (let s = 0; s < m; s++) {
      if (fill[s] !== perSlot[s + 1])
        throw new Error(
          `latent ${considered[s]} is present in ${fill[s] - perSlot[s]} documents, but its document count says ${docCount[considered[s]]}`
        )
    }

    const positional = (options.dropPositional ?? true) ? positionalSlots(fPos, entry, perSlot, m) : new Uint8Array(m)
    let droppedPositional = 0
    for (let a = 0; a < m; a++) droppedPositional += positional[a]

    const acc = new Int32Array(2 * m)
    const touched = new Int32Array(m)
    const scoring = rowScoring(considered, docCount, positional, n, options)
    let done = 0
    let nextReport = work / 50
    for (let a = 0; a < m; a++) {
      if (positional[a]) continue
      let rowWork = 0
      for (let e = perSlot[a]; e < perSlot[a + 1]; e++) rowWork += entryEnd[e] - entry[e] - 1
      // A full scan of the row's upper part (m^2/2 reads in all) is cheaper than tracking touched slots per increment,
      // unless the row holds far fewer increments than cells (a slice, a rare latent): then the touched ones are listed.
      const track = rowWork * TRACK_BELOW < m - a - 1
      let nTouched = 0
      for (let e = perSlot[a]; e < perSlot[a + 1]; e++) {
        const k0 = entry[e]
        const end = entryEnd[e]
        const pa = fPos[k0]
        if (track) {
          for (let k = k0 + 1; k < end; k++) {
            const b = fSlot[k]
            if (acc[2 * b]++ === 0) touched[nTouched++] = b
            if (pa >= 0 && (fPos[k] - pa + near) >>> 0 <= 2 * near) acc[2 * b + 1]++
          }
        } else if (pa < 0) {
          for (let k = k0 + 1; k < end; k++) acc[2 * fSlot[k]]++
        } else {
          for (let k = k0 + 1; k < end; k++) {
            const b = fSlot[k]
            acc[2 * b]++
            // |dp| <= near as one unsigned compare: the branch is rarely taken, so it predicts well.
            if ((fPos[k] - pa + near) >>> 0 <= 2 * near) acc[2 * b + 1]++
          }
        }
      }
      done += rowWork
      if (track) scoreRow(scoring, a, acc, 0, touched, nTouched)
      else scoreRow(scoring, a, acc, 0)
      if (options.progress && done >= nextReport) {
        options.progress(work > 0 ? done / work : 1)
        nextReport += work / 50
      }
    }
    options.progress?.(1)
    return {
      documents: n,
      docCount,
      considered,
      pairs: scoring.out.table(),
      pairsCounted: scoring.pairsCounted,
      droppedAdjacent: scoring.droppedAdjacent,
      droppedPositional,
      truncated: scoring.out.truncated,
      work
    }
  }
}

/**
 * Slots (considered latents) whose max position is, in at least POSITIONAL_SHARE of their documents, within one token
 * of their most common max position. One histogram of positions, reset per slot over the positions it touched.
 */
export function positionalSlots(fPos: Int32Array, entry: Int32Array, perSlot: Int32Array, m: number): Uint8Array {
  const out = new Uint8Array(m)
  let maxPos = -1
  for (let k = 0; k < fPos.length; k++) if (fPos[k] > maxPos) maxPos = fPos[k]
  if (maxPos < 0) return out
  const hist = new Int32Array(maxPos + 2)
  for (let s = 0; s < m; s++) {
    const n = perSlot[s + 1] - perSlot[s]
    if (n < POSITIONAL_MIN_DOCS) continue
    let best = 0
    for (let e = perSlot[s]; e < perSlot[s + 1]; e++) {
      const p = fPos[entry[e]]
      if (p < 0) continue
      const h = ++hist[p]
      // The best window of two neighbouring positions: [p-1, p] or [p, p+1].
      const w = h + Math.max(p > 0 ? hist[p - 1] : 0, hist[p + 1])
      if (w > best) best = w
    }
    for (let e = perSlot[s]; e < perSlot[s + 1]; e++) {
      const p = fPos[entry[e]]
      if (p >= 0) hist[p] = 0
    }
    if (best >= POSITIONAL_SHARE * n) out[s] = 1
  }
  return out
}

/** Co-occurring pairs of a whole CSR (see CooccurrenceCounter). */
export function cooccurrence(csr: PooledCsr, options: CooccurrenceOptions = {}): CooccurrenceResult {
  const counter = new CooccurrenceCounter(presence(csr, options.minValue), csr.nDocs, options)
  counter.add(csr)
  return counter.finish()
}

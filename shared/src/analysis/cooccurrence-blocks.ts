/**
 * @module Co-occurrence counted by blocks of rows of the pair triangle, so several workers share one dataset's pairs with
 * bounded memory each: a block plan, a counter for one block that streams every document, a mergeable partial (and its
 * bytes), and the merge. Same pairs, counts, NPMI and order as CooccurrenceCounter, for any number of blocks.
 */
import {
  Candidates,
  consideredLatents,
  POSITIONAL_MIN_DOCS,
  POSITIONAL_SHARE,
  rowScoring,
  scoreRow,
  type CooccurrenceOptions,
  type CooccurrenceResult
} from './cooccurrence.ts'
import type { PooledCsr } from './sparse.ts'

/** Bytes per cell of a block's accumulator: a count and an adjacent count (Int32 each). */
export const BLOCK_CELL_BYTES = 8

/** Cells of the upper triangle in rows [a0, a1) of m slots: row a holds the m - a - 1 slots after a. */
export function triangleCells(m: number, a0 = 0, a1 = m): number {
  const rows = a1 - a0
  // sum_{a=a0}^{a1-1} (m - 1 - a)
  return rows * (m - 1) - (rows * (a0 + a1 - 1)) / 2
}

/**
 * Split the rows of the m-slot triangle into blocks of about equal area (equal counting memory, and about equal work
 * for pairs spread evenly), so each block's accumulator needs at most about `budgetBytes` (one row more at worst), and
 * at least `minBlocks` blocks. Returns the boundaries [0, a1, ..., m] (blocks = length - 1; an empty triangle: one).
 */
export function planBlocks(m: number, budgetBytes: number, minBlocks = 1): Int32Array {
  if (!(budgetBytes > 0)) throw new RangeError(`the block budget must be positive (got ${budgetBytes})`)
  const total = triangleCells(m)
  const byBudget = Math.ceil((total * BLOCK_CELL_BYTES) / budgetBytes)
  const blocks = Math.max(1, Math.min(Math.max(1, m - 1), Math.max(byBudget, Math.floor(minBlocks))))
  const out = [0]
  let area = 0
  for (let a = 0; a < m && out.length < blocks; a++) {
    area += m - 1 - a
    if (area >= (total * out.length) / blocks && a + 1 < m) out.push(a + 1)
  }
  out.push(m)
  return Int32Array.from(out)
}

/**
 * What a block contributes to the answer: its candidate pairs (sorted) and its tallies, additive over blocks (but
 * droppedPositional, the same in every block, since each sees every document; and `work`, this block's increments).
 */
export interface BlockPartial
  extends Pick<
    CooccurrenceResult,
    'pairs' | 'pairsCounted' | 'droppedAdjacent' | 'droppedPositional' | 'truncated' | 'work'
  > {
  /** The block's rows [start, end) in slots (indexes into the considered latents). */
  start: number
  end: number
}

/**
 * Per-slot histograms of max positions, additive over documents (and so over slices): the positional test reads the
 * best window of two neighbouring positions from them, the same rule as the counter's entry-list test.
 */
export class PositionHistograms {
  stride = 0
  hist = new Int32Array(0)
  constructor(readonly m: number) {}

  /** Make room for positions up to `pos` (and an empty cell after the last, so a window never leaves its row). */
  reach(pos: number): void {
    if (pos + 2 <= this.stride) return
    const stride = Math.max(pos + 2, this.stride * 2, 64)
    const next = new Int32Array(this.m * stride)
    for (let s = 0; s < this.m; s++) next.set(this.hist.subarray(s * this.stride, (s + 1) * this.stride), s * stride)
    this.hist = next
    this.stride = stride
  }

  add(slot: number, pos: number): void {
    if (pos < 0) return
    this.reach(pos)
    this.hist[slot * this.stride + pos]++
  }

  /** Slots whose max sits within one token of one position in at least POSITIONAL_SHARE of their `docs` documents. */
  positional(docs: Int32Array): Uint8Array {
    const out = new Uint8Array(this.m)
    const { hist, stride } = this
    for (let s = 0; s < this.m; s++) {
      const n = docs[s]
      if (n < POSITIONAL_MIN_DOCS || stride === 0) continue
      let best = 0
      const row = s * stride
      for (let p = 0; p + 1 < stride; p++) {
        const w = hist[row + p] + hist[row + p + 1]
        if (w > best) best = w
      }
      if (best >= POSITIONAL_SHARE * n) out[s] = 1
    }
    return out
  }
}

/** Kept entries gathered before a walk (default 8M: 64 MB of slots and positions, plus the block's transpose). */
export const BLOCK_BATCH_ENTRIES = 8_000_000

/**
 * Counts the pairs (a, b), a in rows [start, end) of the considered slots and b > a, over every document, streamed in
 * slices. The kept entries of ~BLOCK_BATCH_ENTRIES are gathered, then transposed by slot for the block's rows
 * (Gustavson's method, as CooccurrenceCounter does over the whole dataset), so the increments for one row a land in
 * one row of the block's dense accumulator while it is in cache: the larger the batch, the more increments per row
 * visit. Memory: the accumulator (8 bytes per cell of the block) plus one batch, not the dataset.
 */
export class BlockCounter {
  readonly considered: Int32Array
  private readonly slot: Int32Array
  /** Where row a's cells begin, minus a + 1, in cells: cell (a, b) holds its count at acc[2 (rowOff[a - start] + b)]. */
  private readonly rowOff: Int32Array
  /** Count and adjacent count of each cell, side by side. */
  private readonly acc: Int32Array
  private readonly seen: Int32Array
  private readonly positions: PositionHistograms
  private readonly near: number
  private readonly batchEntries: number
  private fSlot: Int32Array
  private fPos: Int32Array
  private rowEnd = new Int32Array(1024)
  private at = 0
  private batchDocs = 0
  private rows = 0
  private work = 0

  constructor(
    readonly docCount: Int32Array,
    readonly nDocs: number,
    readonly start: number,
    readonly end: number,
    private readonly options: CooccurrenceOptions & { batchEntries?: number } = {}
  ) {
    this.considered = consideredLatents(docCount, nDocs, options)
    const m = this.considered.length
    if (!(start >= 0 && start <= end && end <= m))
      throw new RangeError(`block [${start}, ${end}) is outside the ${m} considered latents`)
    this.slot = new Int32Array(docCount.length).fill(-1)
    for (let i = 0; i < m; i++) this.slot[this.considered[i]] = i
    this.rowOff = new Int32Array(Math.max(0, end - start))
    const cells = triangleCells(m, start, end)
    // Int32 indexes keep the inner loop in integer arithmetic; a block past 2^30 cells (8 GB) is no plan's.
    if (cells > 2 ** 30 - 1) throw new RangeError(`block [${start}, ${end}) has ${cells} cells: split it further`)
    for (let a = start, at = 0; a < end; a++) {
      this.rowOff[a - start] = at - a - 1
      at += m - 1 - a
    }
    this.acc = new Int32Array(2 * cells)
    this.seen = new Int32Array(m)
    this.positions = new PositionHistograms(m)
    this.near = Math.max(0, Math.floor(options.adjacentTokens ?? 1))
    this.batchEntries = Math.max(1, options.batchEntries ?? BLOCK_BATCH_ENTRIES)
    this.fSlot = new Int32Array(Math.min(this.batchEntries, 1 << 20))
    this.fPos = new Int32Array(this.fSlot.length)
  }

  /** The next documents, in row order (every document of the dataset passes through every block). */
  add(csr: PooledCsr): void {
    const { indptr, latents, values, positions } = csr
    const { slot, seen } = this
    const minValue = this.options.minValue
    if (this.rows + csr.nDocs > this.nDocs)
      throw new Error(`more than the ${this.nDocs} documents announced were added`)
    if (this.at > 0 && this.at + latents.length > this.batchEntries) this.walk()
    this.reserve(this.at + latents.length, this.batchDocs + csr.nDocs)
    const { fSlot, fPos, rowEnd } = this
    let maxPos = -1
    for (let k = 0; k < positions.length; k++) if (positions[k] > maxPos) maxPos = positions[k]
    this.positions.reach(maxPos)
    const { hist, stride } = this.positions
    let at = this.at
    let docs = this.batchDocs
    for (let d = 0; d < csr.nDocs; d++) {
      for (let k = indptr[d]; k < indptr[d + 1]; k++) {
        const l = latents[k]
        const s = values[k] > 0 && (!minValue || values[k] >= minValue[l]) ? slot[l] : -1
        if (s < 0) continue
        const p = positions[k]
        fSlot[at] = s
        fPos[at] = p
        seen[s]++
        if (p >= 0) hist[s * stride + p]++
        at++
      }
      rowEnd[docs++] = at
    }
    this.at = at
    this.batchDocs = docs
    this.rows += csr.nDocs
  }

  private reserve(entries: number, docs: number): void {
    if (entries > this.fSlot.length) {
      const n = Math.max(entries, Math.min(this.batchEntries, this.fSlot.length * 2))
      const grow = (x: Int32Array) => {
        const y = new Int32Array(n)
        y.set(x.subarray(0, this.at))
        return y
      }
      this.fSlot = grow(this.fSlot)
      this.fPos = grow(this.fPos)
    }
    if (docs > this.rowEnd.length) {
      const y = new Int32Array(Math.max(docs, this.rowEnd.length * 2))
      y.set(this.rowEnd.subarray(0, this.batchDocs))
      this.rowEnd = y
    }
  }

  /** Count the gathered batch into the accumulator: transpose its block-row entries by slot, then walk row by row. */
  private walk(): void {
    const { fSlot, fPos, rowEnd, start, end, near, acc, rowOff } = this
    const rows = end - start
    const nDocs = this.batchDocs
    const perRow = new Int32Array(rows + 1)
    for (let k = 0; k < this.at; k++) {
      const s = fSlot[k]
      if (s >= start && s < end) perRow[s - start + 1]++
    }
    for (let r = 0; r < rows; r++) perRow[r + 1] += perRow[r]
    const fill = perRow.slice(0, rows)
    const entry = new Int32Array(perRow[rows])
    const entryEnd = new Int32Array(perRow[rows])
    for (let d = 0, k = 0; d < nDocs; d++) {
      for (; k < rowEnd[d]; k++) {
        const s = fSlot[k]
        if (s < start || s >= end) continue
        const e = fill[s - start]++
        entry[e] = k
        entryEnd[e] = rowEnd[d]
      }
    }
    let work = 0
    for (let r = 0; r < rows; r++) {
      const off = rowOff[r]
      for (let e = perRow[r]; e < perRow[r + 1]; e++) {
        const k0 = entry[e]
        const stop = entryEnd[e]
        const pa = fPos[k0]
        work += stop - k0 - 1
        if (pa < 0) {
          for (let k = k0 + 1; k < stop; k++) acc[2 * (off + fSlot[k])]++
        } else {
          for (let k = k0 + 1; k < stop; k++) {
            const cell = 2 * (off + fSlot[k])
            acc[cell]++
            if ((fPos[k] - pa + near) >>> 0 <= 2 * near) acc[cell + 1]++
          }
        }
      }
    }
    this.work += work
    this.at = 0
    this.batchDocs = 0
  }

  /** Score the block's pairs as CooccurrenceCounter.finish does and return them with the block's tallies. */
  finish(): BlockPartial {
    if (this.at > 0 || this.batchDocs > 0) this.walk()
    const { considered, docCount, seen, options, start, end } = this
    const m = considered.length
    if (this.rows !== this.nDocs) throw new Error(`added ${this.rows} of ${this.nDocs} documents`)
    for (let s = 0; s < m; s++) {
      if (seen[s] !== docCount[considered[s]])
        throw new Error(
          `latent ${considered[s]} is present in ${seen[s]} documents, but its document count says ${docCount[considered[s]]}`
        )
    }
    const positional = (options.dropPositional ?? true) ? this.positions.positional(seen) : new Uint8Array(m)
    let droppedPositional = 0
    for (let a = 0; a < m; a++) droppedPositional += positional[a]
    const scoring = rowScoring(considered, docCount, positional, this.nDocs, options)
    for (let a = start; a < end; a++) {
      if (!positional[a]) scoreRow(scoring, a, this.acc, 2 * this.rowOff[a - start])
    }
    return {
      start,
      end,
      pairs: scoring.out.table(),
      pairsCounted: scoring.pairsCounted,
      droppedAdjacent: scoring.droppedAdjacent,
      droppedPositional,
      truncated: scoring.out.truncated,
      work: this.work
    }
  }
}

/**
 * The blocks' partials as one result, the same as CooccurrenceCounter's over the whole dataset: every pair belongs to
 * exactly one block, and each block kept its best `maxCandidates`, so the best `maxCandidates` of their union are the
 * best of all pairs.
 */
export function mergePartials(
  partials: BlockPartial[],
  docCount: Int32Array,
  nDocs: number,
  options: CooccurrenceOptions = {}
): CooccurrenceResult {
  const considered = consideredLatents(docCount, nDocs, options)
  const sorted = [...partials].sort((x, y) => x.start - y.start)
  let expect = 0
  for (const p of sorted) {
    if (p.start !== expect) throw new Error(`the blocks leave rows [${expect}, ${p.start}) of the triangle out`)
    expect = p.end
  }
  if (expect !== considered.length && !(considered.length === 0 && expect === 0))
    throw new Error(`the blocks cover rows [0, ${expect}) of ${considered.length}`)
  const out = new Candidates(options.maxCandidates ?? 200_000)
  let pairsCounted = 0,
    droppedAdjacent = 0,
    work = 0,
    truncated = false
  for (const p of sorted) {
    const t = p.pairs
    for (let i = 0; i < t.length; i++) out.push(t.a[i], t.b[i], t.count[i], t.adjacent[i], t.npmi[i])
    pairsCounted += p.pairsCounted
    droppedAdjacent += p.droppedAdjacent
    work += p.work
    truncated ||= p.truncated
  }
  const pairs = out.table()
  return {
    documents: nDocs,
    docCount,
    considered,
    pairs,
    pairsCounted,
    droppedAdjacent,
    droppedPositional: sorted[0]?.droppedPositional ?? 0,
    truncated: truncated || out.truncated,
    work
  }
}

const PARTIAL_MAGIC = 0x4c42_4350 // "LBCP"
const HEADER_F64 = 10

/** A partial as bytes: a Float64 header, then the pair columns (a, b, count, adjacent as Int32; npmi as Float64). */
export function encodePartial(p: BlockPartial): Uint8Array {
  const n = p.pairs.length
  const bytes = new Uint8Array(HEADER_F64 * 8 + n * 8 + n * 16)
  const head = new Float64Array(bytes.buffer, 0, HEADER_F64)
  head.set([
    PARTIAL_MAGIC,
    1,
    p.start,
    p.end,
    n,
    p.pairsCounted,
    p.droppedAdjacent,
    p.droppedPositional,
    p.truncated ? 1 : 0,
    p.work
  ])
  let at = HEADER_F64 * 8
  new Float64Array(bytes.buffer, at, n).set(p.pairs.npmi.subarray(0, n))
  at += n * 8
  for (const col of [p.pairs.a, p.pairs.b, p.pairs.count, p.pairs.adjacent]) {
    new Int32Array(bytes.buffer, at, n).set(col.subarray(0, n))
    at += n * 4
  }
  return bytes
}

export function decodePartial(bytes: Uint8Array): BlockPartial {
  if (bytes.byteLength < HEADER_F64 * 8) throw new Error(`a block partial of ${bytes.byteLength} bytes is truncated`)
  const copy = bytes.slice() // aligned, and owned
  const head = new Float64Array(copy.buffer, 0, HEADER_F64)
  if (head[0] !== PARTIAL_MAGIC || head[1] !== 1) throw new Error('not a correlations block partial (version 1)')
  const n = head[4]
  if (copy.byteLength !== HEADER_F64 * 8 + n * 24)
    throw new Error(`a block partial of ${n} pairs should be ${HEADER_F64 * 8 + n * 24} bytes, not ${copy.byteLength}`)
  let at = HEADER_F64 * 8
  const npmi = new Float64Array(copy.buffer, at, n)
  at += n * 8
  const cols: Int32Array[] = []
  for (let c = 0; c < 4; c++) {
    cols.push(new Int32Array(copy.buffer, at, n))
    at += n * 4
  }
  return {
    start: head[2],
    end: head[3],
    pairs: { length: n, a: cols[0], b: cols[1], count: cols[2], adjacent: cols[3], npmi },
    pairsCounted: head[5],
    droppedAdjacent: head[6],
    droppedPositional: head[7],
    truncated: head[8] === 1,
    work: head[9]
  }
}

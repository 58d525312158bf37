/**
 * @module Top examples captured in the encode pass itself (one reader pass per document): each latent's running
 * top documents of a part, ranked like the statistics' top-k (pooled value descending, ties to the lower row), each
 * with the window of tokens and activations around its max that the fused graph returned; the part's lists as a
 * Parquet file, and the merge of the parts' lists into examples/top-examples.parquet at finalize.
 */
import { parquetMetadata, parquetReadObjects } from 'hyparquet'
import { parquetWriteBuffer } from 'hyparquet-writer'
import type { LatentStats } from '@latentbase/shared/analysis/latent-stats'
import type { CapturedWindows } from '../encode/runtime.ts'
import type { MinedWindows } from './top-examples.ts'
import { writeTopExamples } from '@latentbase/shared/store/top-examples/write'
import { emptyTopExampleColumns, pushTopExampleRow } from '@latentbase/shared/store/top-examples/columns'

/** One candidate: a (document, latent) with its window, cut to the document and ready to show. */
interface Example {
  row: number
  /** The document's pooled value: what the top list ranks by. */
  score: number
  /** The largest token activation (the window's centre). */
  value: number
  /** Positions in the document (a window of a long document adds its offset). */
  position: number
  windowStart: number
  /** The window's token ids (a view of the prepared window: most candidates are dropped before the part is written). */
  ids: Int32Array
  /** Activations as the graph returned them; rounded to 4 decimals only when written. */
  acts: Float32Array
}

/** One batch row as the capture needs it: its document (index in the chunk and dataset row) and its window. */
export interface CaptureRow {
  doc: number
  row: number
  ids: Int32Array
  offset: number
  /** The document has several windows: its pooled values are final only at the end of the chunk. */
  multi: boolean
}

const KV_PER_LATENT = 'latentbase.examples_per_latent'

/**
 * Running top-`perLatent` documents per latent of one part. `threshold` is fed to the fused graph as
 * example_threshold: 0 while a latent's list has room, else its last entry's value (>=, so that a tie with a
 * lower row can still enter), so that only pairs that may enter a list leave the graph.
 */
export class TopExampleCapture {
  readonly threshold: Float32Array
  private readonly docs: Int32Array
  private readonly values: Float32Array
  private readonly entries: (Example | null)[]
  /** Candidates of documents with several windows, by doc-in-chunk x nLatents + latent: the best window so far. */
  private pending = new Map<number, Example>()

  constructor(
    readonly nLatents: number,
    readonly perLatent: number,
    readonly halfWindow: number
  ) {
    this.threshold = new Float32Array(nLatents)
    this.docs = new Int32Array(nLatents * perLatent).fill(-1)
    this.values = new Float32Array(nLatents * perLatent)
    this.entries = new Array(nLatents * perLatent).fill(null)
  }

  /**
   * One batch's captured windows. `argmax` is the batch's [B x nLatents] argmax; `score(doc, latent)` the document's
   * pooled value (final for single-window documents once their batch is merged).
   */
  takeBatch(
    captured: CapturedWindows,
    argmax: Int32Array,
    rows: CaptureRow[],
    score: (doc: number, latent: number) => number
  ): void {
    const { index, activations, width } = captured
    const h = this.halfWindow
    const S = this.nLatents
    for (let n = 0; n < index.length / 2; n++) {
      const b = index[2 * n]
      const s = index[2 * n + 1]
      const r = rows[b]
      const at = n * width
      const value = activations[at + h]
      if (!(value > 0)) continue
      const c = argmax[b * S + s]
      const lo = Math.max(0, c - h)
      const hi = Math.min(r.ids.length, c + h + 1)
      // Tokens left out of pooling are 0 already; one typed copy per candidate, the rest waits for the part's winners.
      const acts = activations.slice(at + lo - c + h, at + hi - c + h)
      const example: Example = {
        row: r.row,
        score: 0,
        value,
        position: c + r.offset,
        windowStart: lo + r.offset,
        ids: r.ids.subarray(lo, hi),
        acts
      }
      if (!r.multi) {
        example.score = score(r.doc, s)
        this.offer(s, example)
        continue
      }
      // A long document: keep the window holding its largest activation (the first seen on a tie).
      const key = r.doc * S + s
      const prev = this.pending.get(key)
      if (!prev || value > prev.value) this.pending.set(key, example)
    }
  }

  /** End of a chunk: documents with several windows now have their pooled values and enter the lists. */
  endChunk(score: (doc: number, latent: number) => number): void {
    const S = this.nLatents
    for (const [key, example] of this.pending) {
      const s = key % S
      example.score = score((key - s) / S, s)
      this.offer(s, example)
    }
    this.pending.clear()
  }

  /** Insert into latent s's list if it ranks; the order of LatentStats.topDocs: value desc, then row asc. */
  private offer(s: number, e: Example): void {
    const v = e.score
    if (!(v > 0)) return
    const K = this.perLatent
    const base = s * K
    const docs = this.docs
    const values = this.values
    let i = K - 1
    const lastDoc = docs[base + i]
    if (lastDoc >= 0 && !(v > values[base + i] || (v === values[base + i] && e.row < lastDoc))) return
    while (i > 0) {
      const pd = docs[base + i - 1]
      const pv = values[base + i - 1]
      if (pd >= 0 && (pv > v || (pv === v && pd < e.row))) break
      docs[base + i] = pd
      values[base + i] = pv
      this.entries[base + i] = this.entries[base + i - 1]
      i--
    }
    docs[base + i] = e.row
    values[base + i] = v
    this.entries[base + i] = e
    if (docs[base + K - 1] >= 0) this.threshold[s] = values[base + K - 1]
  }

  /** The part's lists: (latent, rank, doc, score, value, position, window_start, tokens, activations), by (latent, rank). */
  write(tokenText: (id: number) => string): Uint8Array {
    const c: PartColumns = {
      latent: [],
      rank: [],
      doc: [],
      score: [],
      value: [],
      position: [],
      windowStart: [],
      tokens: [],
      activations: []
    }
    const K = this.perLatent
    for (let s = 0; s < this.nLatents; s++) {
      for (let r = 0; r < K; r++) {
        const e = this.entries[s * K + r]
        if (!e) break
        c.latent.push(s)
        c.rank.push(r)
        c.doc.push(e.row)
        c.score.push(e.score)
        c.value.push(e.value)
        c.position.push(e.position)
        c.windowStart.push(e.windowStart)
        // Rounded as shown (4 decimals), as the second pass wrote them.
        c.tokens.push(JSON.stringify(Array.from(e.ids, tokenText)))
        c.activations.push(JSON.stringify(Array.from(e.acts, v => Math.round(v * 1e4) / 1e4)))
      }
    }
    return new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'latent', data: Int32Array.from(c.latent), type: 'INT32' },
          { name: 'rank', data: Int32Array.from(c.rank), type: 'INT32' },
          { name: 'doc', data: Int32Array.from(c.doc), type: 'INT32' },
          { name: 'score', data: Float32Array.from(c.score), type: 'FLOAT' },
          { name: 'value', data: Float32Array.from(c.value), type: 'FLOAT' },
          { name: 'position', data: Int32Array.from(c.position), type: 'INT32' },
          { name: 'window_start', data: Int32Array.from(c.windowStart), type: 'INT32' },
          // Plain strings here: the merge copies them into the final file's JSON columns untouched.
          { name: 'tokens', data: c.tokens, type: 'STRING' },
          { name: 'activations', data: c.activations, type: 'STRING' }
        ],
        kvMetadata: [{ key: KV_PER_LATENT, value: String(K) }]
      })
    )
  }
}

type PartColumns = MinedWindows & { score: number[] }

/** Examples per latent a part file holds lists of (its capture's perLatent). */
export function partExamplesPerLatent(bytes: Uint8Array): number {
  const metadata = parquetMetadata(toArrayBuffer(bytes))
  return Number(metadata.key_value_metadata?.find(e => e.key === KV_PER_LATENT)?.value ?? 0)
}

/**
 * The rows of several top-example files, sorted by latent, then `by` (descending), then document row (ascending).
 * Part files carry a capture `score`; dataset files only `value`.
 */
export async function readExampleRows(
  files: Uint8Array[],
  by: 'value' | 'score'
): Promise<Array<Record<string, unknown>>> {
  const rows: Array<Record<string, unknown>> = []
  // A loop, not push(...read): a file holds up to (latents x examples) rows, past what one call's arguments may hold.
  for (const bytes of files) for (const row of await parquetReadObjects({ file: toArrayBuffer(bytes) })) rows.push(row)
  const num = (v: unknown) => Number(v)
  return rows.sort((a, b) => num(a.latent) - num(b.latent) || num(b[by]) - num(a[by]) || num(a.doc) - num(b.doc))
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return (
    bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer
  ) as ArrayBuffer
}

/**
 * Merge the parts' lists into each latent's top `perLatent` (value desc, ties to the lower row: exactly how the
 * parts' statistics merge), and check them against the merged statistics' top documents. Returns the bytes of
 * examples/top-examples.parquet, or null when the lists disagree with the statistics (the caller then mines).
 */
export async function mergePartExamples(
  parts: Uint8Array[],
  stats: LatentStats,
  perLatent: number
): Promise<{ bytes: Uint8Array; rows: number } | { mismatch: string }> {
  const rows = await readExampleRows(parts, 'score')
  const num = (v: unknown) => Number(v)
  const out = emptyTopExampleColumns()
  const K = stats.topK
  let i = 0
  for (let s = 0; s < stats.nLatents; s++) {
    // What the statistics say this latent's top documents are: the lists must name the same ones, in order.
    let want = 0
    while (want < Math.min(perLatent, K) && stats.topDocs[s * K + want] >= 0 && stats.topValues[s * K + want] > 0)
      want++
    let rank = 0
    for (; i < rows.length && num(rows[i].latent) === s; i++) {
      if (rank >= want) continue
      const r = rows[i]
      if (num(r.doc) !== stats.topDocs[s * K + rank]) {
        return {
          mismatch: `latent ${s} rank ${rank}: captured document ${num(r.doc)}, statistics say ${stats.topDocs[s * K + rank]}`
        }
      }
      pushTopExampleRow(out, r, rank)
      rank++
    }
    if (rank !== want)
      return { mismatch: `latent ${s}: ${rank} captured examples, statistics have ${want} top documents` }
  }
  return { bytes: writeTopExamples(out), rows: out.latent.length }
}

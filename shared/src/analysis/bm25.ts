/** @module BM25 (Okapi, k1 1.2, b 0.75) over documents' text: an inverted index in typed arrays, and query scores. */

export const BM25_K1 = 1.2
export const BM25_B = 0.75

const TOKEN = /[\p{L}\p{N}]+/gu

/** Lower-cased runs of letters and digits. No stemming and no stopwords: IDF already makes common words cheap. */
export function bm25Tokens(text: string): string[] {
  return text.toLowerCase().match(TOKEN) ?? []
}

export interface Bm25Index {
  nDocs: number
  /** term -> term id */
  terms: Map<string, number>
  /** Postings of term t: [termPtr[t], termPtr[t+1]) into docs / tfs, docs ascending. */
  termPtr: Int32Array
  docs: Int32Array
  tfs: Uint16Array
  docLength: Int32Array
  avgLength: number
  /** Rough heap size, for cache bounds. */
  bytes: number
}

/**
 * Builds an index from documents fed one at a time (in any row order), so a caller can stream the text column row
 * group by row group and never hold every text at once.
 */
export class Bm25IndexBuilder {
  private readonly terms = new Map<string, number>()
  private termIds = new Int32Array(1 << 16)
  private docIds = new Int32Array(1 << 16)
  private counts = new Uint16Array(1 << 16)
  private n = 0
  private lengths = new Int32Array(1 << 10)
  private maxDoc = -1
  private total = 0
  private readonly local = new Map<number, number>()

  add(doc: number, text: string): void {
    const toks = bm25Tokens(text)
    if (doc >= this.lengths.length) {
      const grown = new Int32Array(Math.max(this.lengths.length * 2, doc + 1))
      grown.set(this.lengths)
      this.lengths = grown
    }
    this.total += toks.length - this.lengths[doc]
    this.lengths[doc] = toks.length
    if (doc > this.maxDoc) this.maxDoc = doc
    const local = this.local
    local.clear()
    for (const tok of toks) {
      let t = this.terms.get(tok)
      if (t === undefined) {
        t = this.terms.size
        this.terms.set(tok, t)
      }
      local.set(t, (local.get(t) ?? 0) + 1)
    }
    if (this.n + local.size > this.termIds.length) {
      const size = Math.max(this.termIds.length * 2, this.n + local.size)
      const grow = <T extends Int32Array | Uint16Array>(a: T, C: new (k: number) => T) => {
        const b = new C(size)
        b.set(a)
        return b
      }
      this.termIds = grow(this.termIds, Int32Array)
      this.docIds = grow(this.docIds, Int32Array)
      this.counts = grow(this.counts, Uint16Array)
    }
    for (const [t, c] of local) {
      this.termIds[this.n] = t
      this.docIds[this.n] = doc
      this.counts[this.n] = Math.min(c, 65535)
      this.n++
    }
  }

  /** The index over rows [0, nDocs) (default: up to the highest row added). */
  build(nDocs = this.maxDoc + 1): Bm25Index {
    const { terms, termIds, docIds, counts, n } = this
    const nTerms = terms.size
    // Counting sort by term, then by document within a term (rows may have come in any order).
    const termPtr = new Int32Array(nTerms + 1)
    for (let i = 0; i < n; i++) termPtr[termIds[i] + 1]++
    for (let t = 0; t < nTerms; t++) termPtr[t + 1] += termPtr[t]
    const order = new Int32Array(n)
    const byDoc = new Int32Array(nDocs + 1)
    for (let i = 0; i < n; i++) byDoc[docIds[i] + 1]++
    for (let d = 0; d < nDocs; d++) byDoc[d + 1] += byDoc[d]
    for (let i = 0; i < n; i++) order[byDoc[docIds[i]]++] = i
    const fill = termPtr.slice(0, nTerms)
    const docs = new Int32Array(n)
    const tfs = new Uint16Array(n)
    for (const i of order) {
      const at = fill[termIds[i]]++
      docs[at] = docIds[i]
      tfs[at] = counts[i]
    }
    const docLength = new Int32Array(nDocs)
    docLength.set(this.lengths.subarray(0, Math.min(nDocs, this.lengths.length)))
    let termBytes = 0
    for (const k of terms.keys()) termBytes += 2 * k.length + 48
    return {
      nDocs,
      terms,
      termPtr,
      docs,
      tfs,
      docLength,
      avgLength: nDocs ? this.total / nDocs : 0,
      bytes: termBytes + termPtr.byteLength + docs.byteLength + tfs.byteLength + docLength.byteLength
    }
  }
}

/** Build the index; `texts[i]` is document row i. */
export function buildBm25Index(texts: ArrayLike<string>): Bm25Index {
  const b = new Bm25IndexBuilder()
  for (let d = 0; d < texts.length; d++) b.add(d, texts[d] ?? '')
  return b.build(texts.length)
}

/** BM25 score of every document for the query (0 for documents with no query term); repeated query terms count once. */
export function bm25Scores(index: Bm25Index, query: string, k1 = BM25_K1, b = BM25_B): Float32Array {
  const scores = new Float32Array(index.nDocs)
  const seen = new Set<number>()
  for (const tok of bm25Tokens(query)) {
    const t = index.terms.get(tok)
    if (t === undefined || seen.has(t)) continue
    seen.add(t)
    const lo = index.termPtr[t]
    const hi = index.termPtr[t + 1]
    const df = hi - lo
    // The "+1" form of IDF (Lucene): never negative, so very common terms add little rather than subtract.
    const idf = Math.log(1 + (index.nDocs - df + 0.5) / (df + 0.5))
    const avg = index.avgLength || 1
    for (let p = lo; p < hi; p++) {
      const d = index.docs[p]
      const tf = index.tfs[p]
      scores[d] += (idf * (tf * (k1 + 1))) / (tf + k1 * (1 - b + (b * index.docLength[d]) / avg))
    }
  }
  return scores
}

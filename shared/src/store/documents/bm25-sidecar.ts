/**
 * @module BM25 sidecars of the documents shards (`part-NNNNN.bm25` beside `part-NNNNN.parquet`): each shard's inverted
 * index, written with the shard, so a BM25 search reads only its query terms' postings instead of every text.
 */
import { BM25_B, BM25_K1, Bm25IndexBuilder, bm25Tokens } from '../../analysis/bm25.ts'
import type { ObjectStore } from '../object-store.ts'
import { BoundedCache } from '../../util/bounded-cache.ts'

/*
 * Layout (little-endian):
 *   header (32 bytes): magic u32, nDocs u32, nTerms u32, nBlocks u32, totalLength f64, headBytes u32, dictBytes u32
 *   rows i32[nDocs] (the dataset rows of the shard's documents), lengths i32[nDocs] (their BM25 token counts)
 *   block index: per dictionary block, its first term (u32 byte length, UTF-8), its offset u32 and length u32 in the
 *     dictionary                                                                   (the head ends here: headBytes)
 *   dictionary: blocks of TERMS_PER_BLOCK terms in ascending order, as varints: the block's first postings offset,
 *     then per term the bytes it shares with the term before it in the block, its own byte count and bytes (UTF-8),
 *     its document frequency and its postings' length (front coding)              (dictBytes)
 *   postings: per term, (document index in the shard as a delta from the previous one, term frequency), varints
 * A search reads the head once per process (cached), then per query term one dictionary block and one postings run.
 */
const MAGIC = 0x4c424d31 // "LBM1"
const HEADER_BYTES = 32
const TERMS_PER_BLOCK = 64

/** The sidecar's key beside a documents shard's key. */
export function bm25SidecarKey(shardKey: string): string {
  return `${shardKey.replace(/\.parquet$/, '')}.bm25`
}

/** Growable byte output. */
class Bytes {
  buf = new Uint8Array(1 << 16)
  view = new DataView(this.buf.buffer)
  n = 0
  private room(k: number): void {
    if (this.n + k <= this.buf.length) return
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.n + k))
    grown.set(this.buf.subarray(0, this.n))
    this.buf = grown
    this.view = new DataView(grown.buffer)
  }
  u32(x: number): void {
    this.room(4)
    this.view.setUint32(this.n, x, true)
    this.n += 4
  }
  bytes(b: Uint8Array): void {
    this.room(b.length)
    this.buf.set(b, this.n)
    this.n += b.length
  }
  varint(x: number): void {
    this.room(5)
    while (x >= 0x80) {
      this.buf[this.n++] = (x & 0x7f) | 0x80
      x >>>= 7
    }
    this.buf[this.n++] = x
  }
  done(): Uint8Array {
    return this.buf.subarray(0, this.n)
  }
}

const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

/** The sidecar of a shard whose documents are `rows` (ascending) with `texts`. */
export function writeBm25Sidecar(rows: ArrayLike<number>, texts: ArrayLike<string>): Uint8Array {
  const n = rows.length
  const builder = new Bm25IndexBuilder()
  for (let i = 0; i < n; i++) builder.add(i, texts[i] ?? '')
  const index = builder.build(n)
  // Terms in JavaScript string order: the reader's binary search compares the same way.
  const terms = [...index.terms.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const postings = new Bytes()
  const dict = new Bytes()
  const firsts: Uint8Array[] = []
  const blockAt: number[] = []
  let previous = new Uint8Array(0)
  for (let i = 0; i < terms.length; i++) {
    const t = index.terms.get(terms[i])!
    const lo = index.termPtr[t]
    const hi = index.termPtr[t + 1]
    const at = postings.n
    let prev = -1
    for (let p = lo; p < hi; p++) {
      postings.varint(index.docs[p] - prev - 1)
      postings.varint(index.tfs[p])
      prev = index.docs[p]
    }
    const name = utf8.encode(terms[i])
    // Front coding: a term is stored as the bytes it shares with the one before it in its block, then its own.
    let shared = 0
    if (i % TERMS_PER_BLOCK === 0) {
      firsts.push(name)
      blockAt.push(dict.n)
      dict.varint(at) // the block's first postings offset; the others follow from the lengths
    } else {
      const before = previous
      while (shared < before.length && shared < name.length && before[shared] === name[shared]) shared++
    }
    dict.varint(shared)
    dict.varint(name.length - shared)
    dict.bytes(name.subarray(shared))
    dict.varint(hi - lo)
    dict.varint(postings.n - at)
    previous = name
  }
  const head = new Bytes()
  head.u32(MAGIC)
  head.u32(n)
  head.u32(terms.length)
  head.u32(firsts.length)
  head.u32(0) // totalLength (f64), below
  head.u32(0)
  head.u32(0) // headBytes, below
  head.u32(dict.n)
  for (let i = 0; i < n; i++) head.u32(rows[i])
  for (let i = 0; i < n; i++) head.u32(index.docLength[i])
  for (let b = 0; b < firsts.length; b++) {
    head.u32(firsts[b].length)
    head.bytes(firsts[b])
    head.u32(blockAt[b])
    head.u32((b + 1 < blockAt.length ? blockAt[b + 1] : dict.n) - blockAt[b])
  }
  let total = 0
  for (let i = 0; i < n; i++) total += index.docLength[i]
  head.view.setFloat64(16, total, true)
  head.view.setUint32(24, head.n, true)
  const out = new Uint8Array(head.n + dict.n + postings.n)
  out.set(head.done(), 0)
  out.set(dict.done(), head.n)
  out.set(postings.done(), head.n + dict.n)
  return out
}

/** An opened sidecar: its head (rows, lengths, the dictionary's block index), and where to read the rest. */
export interface Bm25Sidecar {
  key: string
  nDocs: number
  totalLength: number
  rows: Int32Array
  lengths: Int32Array
  firstTerms: string[]
  blockOffset: Uint32Array
  blockLength: Uint32Array
  headBytes: number
  dictBytes: number
  /** The whole dictionary, when small enough to keep with the head. */
  dictionary?: Uint8Array
}

/** Heads kept per process (rows and lengths: 8 bytes a document, plus block indexes and small dictionaries). */
const HEADS_CACHE_BYTES = 64 << 20
/** A dictionary up to this size is read with the head and kept: a query term then costs one read per shard, not two. */
const INLINE_DICTIONARY_BYTES = 128 << 10
const caches = new WeakMap<ObjectStore, BoundedCache<Bm25Sidecar>>()

async function mustGetRange(store: ObjectStore, key: string, start: number, end: number): Promise<Uint8Array> {
  const bytes = await store.getRange(key, start, end)
  if (!bytes || bytes.length !== end - start) throw new Error(`BM25 sidecar ${key}: bytes ${start}-${end} missing`)
  return bytes
}

/** The sidecar's head, read once per process and store (by key and size: a rewritten sidecar is read again). */
export function openBm25Sidecar(store: ObjectStore, key: string, size: number): Promise<Bm25Sidecar> {
  let cache = caches.get(store)
  if (!cache) caches.set(store, (cache = new BoundedCache(HEADS_CACHE_BYTES, 4096)))
  return cache.get(
    `${key}\u0000${size}`,
    async (): Promise<Bm25Sidecar> => {
      const header = await mustGetRange(store, key, 0, Math.min(size, HEADER_BYTES))
      const view = new DataView(header.buffer, header.byteOffset, header.byteLength)
      if (header.length < HEADER_BYTES || view.getUint32(0, true) !== MAGIC)
        throw new Error(`BM25 sidecar ${key}: not a sidecar (bad magic)`)
      const nDocs = view.getUint32(4, true)
      const nBlocks = view.getUint32(12, true)
      const totalLength = view.getFloat64(16, true)
      const headBytes = view.getUint32(24, true)
      const dictBytes = view.getUint32(28, true)
      if (headBytes + dictBytes > size) throw new Error(`BM25 sidecar ${key}: truncated`)
      // The dictionary follows the head: a small one comes in the same read.
      const inline = dictBytes <= INLINE_DICTIONARY_BYTES
      const head = (await mustGetRange(store, key, HEADER_BYTES, headBytes + (inline ? dictBytes : 0))).slice()
      const rows = new Int32Array(head.buffer, 0, nDocs)
      const lengths = new Int32Array(head.buffer, 4 * nDocs, nDocs)
      const hv = new DataView(head.buffer)
      const firstTerms: string[] = new Array(nBlocks)
      const blockOffset = new Uint32Array(nBlocks)
      const blockLength = new Uint32Array(nBlocks)
      let at = 8 * nDocs
      for (let b = 0; b < nBlocks; b++) {
        const len = hv.getUint32(at, true)
        firstTerms[b] = fromUtf8.decode(head.subarray(at + 4, at + 4 + len))
        at += 4 + len
        blockOffset[b] = hv.getUint32(at, true)
        blockLength[b] = hv.getUint32(at + 4, true)
        at += 8
      }
      return {
        key,
        nDocs,
        totalLength,
        rows,
        lengths,
        firstTerms,
        blockOffset,
        blockLength,
        headBytes,
        dictBytes,
        ...(inline ? { dictionary: head.subarray(headBytes - HEADER_BYTES) } : {})
      }
    },
    s => s.rows.byteLength + s.lengths.byteLength + (s.dictionary?.byteLength ?? 0) + 24 * s.firstTerms.length
  )
}

type Postings = { docs: Int32Array; tfs: Uint16Array }

/** Decoded postings (and absent terms) kept per process: a warm query with known terms reads nothing. */
const POSTINGS_CACHE_BYTES = 16 << 20
const postingsCaches = new WeakMap<ObjectStore, BoundedCache<Postings | null>>()

/** A term's postings in one shard: document indexes in the shard (ascending) and term frequencies; null if absent. */
export function readPostings(store: ObjectStore, sidecar: Bm25Sidecar, term: string): Promise<Postings | null> {
  let cache = postingsCaches.get(store)
  if (!cache) postingsCaches.set(store, (cache = new BoundedCache(POSTINGS_CACHE_BYTES, 100_000)))
  return cache.get(
    `${sidecar.key}\u0000${sidecar.headBytes + sidecar.dictBytes}\u0000${term}`,
    () => fetchPostings(store, sidecar, term),
    p => 64 + 2 * term.length + (p ? p.docs.byteLength + p.tfs.byteLength : 0)
  )
}

async function fetchPostings(store: ObjectStore, sidecar: Bm25Sidecar, term: string): Promise<Postings | null> {
  const { firstTerms } = sidecar
  // The last block whose first term is <= term.
  let lo = 0
  let hi = firstTerms.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (firstTerms[mid] <= term) lo = mid + 1
    else hi = mid
  }
  const b = lo - 1
  if (b < 0) return null
  const start = sidecar.headBytes + sidecar.blockOffset[b]
  const block = sidecar.dictionary
    ? sidecar.dictionary.subarray(sidecar.blockOffset[b], sidecar.blockOffset[b] + sidecar.blockLength[b])
    : await mustGetRange(store, sidecar.key, start, start + sidecar.blockLength[b])
  const wanted = utf8.encode(term)
  const dict = new VarintReader(block)
  let offset = dict.next()
  let name = new Uint8Array(0)
  while (dict.at < block.length) {
    const shared = dict.next()
    const own = dict.next()
    const next = new Uint8Array(shared + own)
    next.set(name.subarray(0, shared))
    next.set(block.subarray(dict.at, dict.at + own), shared)
    dict.at += own
    name = next
    const df = dict.next()
    const length = dict.next()
    if (name.length !== wanted.length || !name.every((x, i) => x === wanted[i])) {
      offset += length
      continue
    }
    const from = sidecar.headBytes + sidecar.dictBytes + offset
    const postings = new VarintReader(await mustGetRange(store, sidecar.key, from, from + length))
    const docs = new Int32Array(df)
    const tfs = new Uint16Array(df)
    let doc = -1
    for (let i = 0; i < df; i++) {
      doc += postings.next() + 1
      docs[i] = doc
      tfs[i] = postings.next()
    }
    return { docs, tfs }
  }
  return null
}

/** Reads the unsigned varints Bytes.varint writes, from `at` on. */
class VarintReader {
  at = 0
  constructor(private readonly bytes: Uint8Array) {}
  next(): number {
    let x = 0
    let scale = 1
    let c: number
    do {
      c = this.bytes[this.at++]
      x += (c & 0x7f) * scale
      scale *= 128
    } while (c & 0x80)
    return x
  }
}

/**
 * BM25 scores of every dataset row (`nDocs`: the dataset's documents) for the query, from the shards' sidecars: the
 * same numbers as bm25Scores over an index of every text (document frequencies and the mean length summed over the
 * shards), reading the sidecars' heads and the query terms' postings only. With `slice` (dataset rows, ascending),
 * as an index of the slice's texts alone: its documents, frequencies and mean length, 0 elsewhere.
 */
export async function sidecarBm25Scores(
  store: ObjectStore,
  sidecars: Bm25Sidecar[],
  nDocs: number,
  query: string,
  slice?: Int32Array,
  k1 = BM25_K1,
  b = BM25_B
): Promise<Float32Array> {
  const scores = new Float32Array(nDocs)
  let inSlice: Uint8Array | null = null
  let n = nDocs
  let total = 0
  if (slice) {
    inSlice = new Uint8Array(nDocs)
    for (const r of slice) if (r >= 0 && r < nDocs) inSlice[r] = 1
    n = 0
    for (const s of sidecars)
      for (let i = 0; i < s.nDocs; i++)
        if (inSlice[s.rows[i]]) {
          n++
          total += s.lengths[i]
        }
    if (!n) return scores
  } else for (const s of sidecars) total += s.totalLength
  const avg = (n ? total / n : 0) || 1
  const terms = [...new Set(bm25Tokens(query))]
  // Every term's postings at once (on S3 the reads overlap); then scored term by term in query order, as bm25Scores.
  const found = await Promise.all(terms.map(t => Promise.all(sidecars.map(s => readPostings(store, s, t)))))
  for (const perShard of found) {
    let df = 0
    perShard.forEach((p, s) => {
      if (!p) return
      if (!inSlice) df += p.docs.length
      else for (const d of p.docs) df += inSlice[sidecars[s].rows[d]]
    })
    if (!df) continue
    const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5))
    perShard.forEach((p, s) => {
      if (!p) return
      const { rows, lengths } = sidecars[s]
      for (let i = 0; i < p.docs.length; i++) {
        const d = p.docs[i]
        if (inSlice && !inSlice[rows[d]]) continue
        const tf = p.tfs[i]
        scores[rows[d]] += (idf * (tf * (k1 + 1))) / (tf + k1 * (1 - b + (b * lengths[d]) / avg))
      }
    })
  }
  return scores
}

/** @module Sparse Parquet shards of the latent store: write them, and read only the row groups a request needs (planned from the manifest). */
import { parquetMetadataAsync, parquetRead, readColumnIndex, readOffsetIndex, type AsyncBuffer, type FileMetaData } from 'hyparquet'
import { parquetWriteBuffer } from 'hyparquet-writer'
import type { ColumnSource } from 'hyparquet-writer'
import { cscFromCsr, type PooledCsc, type PooledCsr } from '../analysis/sparse.ts'
import { STORE_VERSION, type RowGroupRange, type ShardFile } from '../contract/manifest.ts'
import type { ObjectStore } from './object-store.ts'

/** Rows per row group of the latent shards: the smallest unit a ranged read fetches is one column chunk. */
export const DEFAULT_ROW_GROUP_ROWS = 100_000
/** Documents shards cut row groups by text size instead, so reading one document fetches a few MB at most. */
export const DOCUMENTS_ROW_GROUP_BYTES = 4 << 20
export const DOCUMENTS_MAX_ROW_GROUP_ROWS = 100_000
/**
 * Target uncompressed page sizes. Small pages plus the offset index (written by default) let a read of a few
 * latents or a few documents fetch and decode only the pages holding them, not whole 100k-row column chunks; but
 * every page costs a header and a decoder start, so a full scan of 16 KB pages takes ~2x as long as of 64 KB ones
 * (measured: 20M values, 300 vs 156 ms). By-latent shards serve search and latent pages (a few latents each): 16 KB,
 * ~4k rows. By-document shards are mostly scanned whole (correlations, clustering) or by document ranges: 64 KB.
 */
export const LATENT_PAGE_BYTES = 16 << 10
export const BY_DOCUMENT_PAGE_BYTES = 64 << 10
export const DOCUMENTS_PAGE_BYTES = 32 << 10
/** Bytes read from the end of a file to get its footer in one request (hyparquet asks again if it is longer). */
export const FOOTER_FETCH_BYTES = 64 << 10

/** Key-value metadata written into every shard, so a file is self-describing outside the manifest too. */
export const KV = {
  storeVersion: 'latentbase.store_version',
  shard: 'latentbase.shard',
  nLatents: 'latentbase.n_latents',
  docStart: 'latentbase.doc_start',
  docCount: 'latentbase.doc_count',
} as const

export type ShardKind = 'documents' | 'by-document' | 'by-latent'

/** A written shard: its bytes and its manifest entry, whose key the caller fills in (layout.byDocumentShard etc.). */
export interface WrittenShard {
  bytes: Uint8Array
  file: Omit<ShardFile, 'key'>
}

/** Half-open range [start, end) of a sort key (document rows or latent ids). */
export interface KeyRange {
  start: number
  end: number
}

/** Known sizes of the whole dataset; taken from the shards' metadata when left out. */
export interface DatasetShape {
  nDocs?: number
  nLatents?: number
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

export interface LatentShardOptions {
  /** Dataset row of the CSR's first row: shards from chunks encoded in parallel cover disjoint row ranges. */
  docOffset?: number
  /** Rows per row group (default 100,000; 65,536 to 131,072 is the intended range). */
  rowGroupRows?: number
}

function int32Column(name: string, data: Int32Array, sortKey = false): ColumnSource {
  // Sorted and small-delta ints: DELTA_BINARY_PACKED is ~25% smaller than dictionaries here, and reads back
  // as an Int32Array rather than a plain Array. A sort key also gets a column index (min/max per page), so a
  // reader finds the pages holding a key without decoding the column.
  return { name, data, type: 'INT32', nullable: false, encoding: 'DELTA_BINARY_PACKED', columnIndex: sortKey }
}

function floatColumn(name: string, data: Float32Array): ColumnSource {
  return { name, data, type: 'FLOAT', nullable: false, encoding: 'BYTE_STREAM_SPLIT' }
}

function rowGroupRanges(sortKey: Int32Array, sizes: number[]): RowGroupRange[] {
  const out: RowGroupRange[] = []
  let start = 0
  for (const size of sizes) {
    out.push({ rowStart: start, rowCount: size, first: sortKey[start], last: sortKey[start + size - 1] })
    start += size
  }
  return out
}

function fixedSizes(rows: number, per: number): number[] {
  if (!(Number.isInteger(per) && per > 0)) throw new RangeError(`rowGroupRows must be a positive integer, got ${per}`)
  const sizes: number[] = []
  for (let at = 0; at < rows; at += per) sizes.push(Math.min(per, rows - at))
  return sizes
}

function writeTable(columnData: ColumnSource[], sizes: number[], kv: Record<string, string | number>, pageSize: number): Uint8Array {
  const buffer = parquetWriteBuffer({
    columnData,
    pageSize,
    // hyparquet-writer repeats the last size; with no rows any size gives an empty file with the schema.
    rowGroupSize: sizes.length ? sizes : [1],
    kvMetadata: Object.entries(kv).map(([key, value]) => ({ key, value: String(value) })),
    createdBy: 'latentbase (hyparquet-writer)',
  })
  return new Uint8Array(buffer)
}

function checkCsr(csr: PooledCsr): void {
  const { indptr, latents } = csr
  if (indptr.length !== csr.nDocs + 1) throw new Error(`CSR indptr has ${indptr.length} entries for ${csr.nDocs} documents`)
  const nnz = indptr[csr.nDocs]
  if (latents.length !== nnz || csr.values.length !== nnz || csr.positions.length !== nnz) throw new Error('CSR arrays disagree with indptr')
  for (let i = 0; i < csr.nDocs; i++) {
    if (indptr[i + 1] < indptr[i]) throw new Error(`CSR indptr decreases at row ${i}`)
    for (let k = indptr[i]; k < indptr[i + 1]; k++) {
      const l = latents[k]
      if (l < 0 || l >= csr.nLatents) throw new Error(`latent ${l} out of range [0, ${csr.nLatents}) at row ${i}`)
      // The row-group index stores first/last sort keys: it is only right if rows really are sorted.
      if (k > indptr[i] && l <= latents[k - 1]) throw new Error(`CSR row ${i} is not sorted by latent (or repeats one)`)
    }
  }
}

/** The by-document and by-latent shards of one chunk of pooled latents. */
export function writeLatentShards(csr: PooledCsr, options: LatentShardOptions = {}): { byDocument: WrittenShard; byLatent: WrittenShard } {
  checkCsr(csr)
  const docStart = options.docOffset ?? 0
  const per = options.rowGroupRows ?? DEFAULT_ROW_GROUP_ROWS
  const nnz = csr.latents.length
  const sizes = fixedSizes(nnz, per)
  const kv = (shard: ShardKind) => ({
    [KV.storeVersion]: STORE_VERSION, [KV.shard]: shard, [KV.nLatents]: csr.nLatents,
    [KV.docStart]: docStart, [KV.docCount]: csr.nDocs,
  })

  const docOfRow = new Int32Array(nnz)
  for (let i = 0; i < csr.nDocs; i++) docOfRow.fill(docStart + i, csr.indptr[i], csr.indptr[i + 1])
  const byDocBytes = writeTable([
    int32Column('doc', docOfRow, true),
    int32Column('latent', csr.latents),
    floatColumn('value', csr.values),
    int32Column('position', csr.positions),
  ], sizes, kv('by-document'), BY_DOCUMENT_PAGE_BYTES)

  const csc = cscFromCsr(csr)
  const latentOfRow = new Int32Array(nnz)
  for (let j = 0; j < csc.nLatents; j++) latentOfRow.fill(j, csc.indptr[j], csc.indptr[j + 1])
  const docs = docStart === 0 ? csc.docs : csc.docs.map((d) => d + docStart)
  const byLatentBytes = writeTable([
    int32Column('latent', latentOfRow, true),
    int32Column('doc', docs),
    floatColumn('value', csc.values),
    int32Column('position', csc.positions),
  ], sizes, kv('by-latent'), LATENT_PAGE_BYTES)

  return {
    byDocument: {
      bytes: byDocBytes,
      file: { rows: nnz, bytes: byDocBytes.length, rowGroups: rowGroupRanges(docOfRow, sizes), docStart, docCount: csr.nDocs },
    },
    byLatent: {
      bytes: byLatentBytes,
      file: { rows: nnz, bytes: byLatentBytes.length, rowGroups: rowGroupRanges(latentOfRow, sizes), docStart, docCount: csr.nDocs },
    },
  }
}

/**
 * One documents shard, columnar, under its Parquet column names (the names DuckDB or pandas users see).
 * `row` is the dataset row, ascending; `metadata` and `messages` are JSON text.
 */
export interface DocumentColumns {
  row: Int32Array
  id: string[]
  text: string[]
  metadata: string[]
  token_count: Int32Array
  /** 1 when the document was cut at the encoder's max tokens. */
  truncated: Uint8Array
  /** Tokens left out of pooling (special, outlier-norm and role-masked tokens). */
  masked_tokens: Int32Array
  /** Chat documents only: the `[{ role, content }]` list as JSON ('' for plain text), to re-render them later. */
  messages?: string[]
}
export type DocumentColumnName = keyof DocumentColumns

/** What writeDocumentsShard accepts: the same columns, with plain arrays allowed where typed ones are read back. */
export type DocumentColumnsInput = Omit<DocumentColumns, 'token_count' | 'truncated' | 'masked_tokens'> & {
  token_count: ArrayLike<number>
  truncated: ArrayLike<number | boolean>
  masked_tokens: ArrayLike<number>
}

export interface DocumentsShardOptions {
  /** Target text + metadata bytes per row group. */
  rowGroupBytes?: number
  maxRowGroupRows?: number
}

export function writeDocumentsShard(columns: DocumentColumnsInput, options: DocumentsShardOptions = {}): WrittenShard {
  const n = columns.row.length
  const names = ['id', 'text', 'metadata', 'token_count', 'truncated', 'masked_tokens', ...(columns.messages ? ['messages'] as const : [])] as const
  for (const name of names) {
    const len = (columns[name] as ArrayLike<unknown>).length
    if (len !== n) throw new Error(`documents column ${name} has ${len} rows, expected ${n}`)
  }
  for (let i = 1; i < n; i++) if (columns.row[i] <= columns.row[i - 1]) throw new Error(`document rows must ascend (row ${columns.row[i]} at ${i})`)
  const targetBytes = options.rowGroupBytes ?? DOCUMENTS_ROW_GROUP_BYTES
  const maxRows = options.maxRowGroupRows ?? DOCUMENTS_MAX_ROW_GROUP_ROWS
  const sizes: number[] = []
  let rows = 0
  let bytes = 0
  for (let i = 0; i < n; i++) {
    rows++
    bytes += columns.text[i].length + columns.metadata[i].length + columns.id[i].length + (columns.messages?.[i].length ?? 0)
    if (bytes >= targetBytes || rows >= maxRows) {
      sizes.push(rows)
      rows = 0
      bytes = 0
    }
  }
  if (rows) sizes.push(rows)
  const docStart = n ? columns.row[0] : 0
  const docCount = n ? columns.row[n - 1] - docStart + 1 : 0
  const out = writeTable([
    int32Column('row', columns.row),
    { name: 'id', data: columns.id, type: 'STRING', nullable: false },
    { name: 'text', data: columns.text, type: 'STRING', nullable: false },
    { name: 'metadata', data: columns.metadata, type: 'JSON', nullable: false },
    { name: 'token_count', data: Int32Array.from(columns.token_count), type: 'INT32', nullable: false },
    { name: 'truncated', data: Array.from(columns.truncated, (v) => Boolean(v)), type: 'BOOLEAN', nullable: false },
    { name: 'masked_tokens', data: Int32Array.from(columns.masked_tokens), type: 'INT32', nullable: false },
    ...(columns.messages ? [{ name: 'messages', data: columns.messages, type: 'JSON', nullable: false } satisfies ColumnSource] : []),
  ], sizes, { [KV.storeVersion]: STORE_VERSION, [KV.shard]: 'documents', [KV.docStart]: docStart, [KV.docCount]: docCount }, DOCUMENTS_PAGE_BYTES)
  return { bytes: out, file: { rows: n, bytes: out.length, rowGroups: rowGroupRanges(columns.row, sizes), docStart, docCount } }
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

function exactArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) return bytes.buffer
  return bytes.slice().buffer as ArrayBuffer
}

/**
 * An hyparquet AsyncBuffer over ranged reads of one object. The first read that falls in the last `footerBytes`
 * fetches that whole tail once, so the footer length, the footer and the page indexes near it cost one request.
 */
export function storeAsyncBuffer(store: ObjectStore, key: string, byteLength: number, footerBytes = FOOTER_FETCH_BYTES): AsyncBuffer {
  const tailStart = Math.max(0, byteLength - footerBytes)
  let tail: Promise<ArrayBuffer> | undefined
  return {
    byteLength,
    slice(start: number, end = byteLength): Promise<ArrayBuffer> {
      if (start >= tailStart && end <= byteLength) {
        tail ??= store.getRange(key, tailStart, byteLength).then(exactArrayBuffer)
        return tail.then((buf) => buf.slice(start - tailStart, end - tailStart))
      }
      return store.getRange(key, start, end).then(exactArrayBuffer)
    },
  }
}

const METADATA_CACHE_ENTRIES = 256
/** Page-index regions up to this size are fetched whole and kept with the open shard (~1 MB per 30M-row shard). */
const PAGE_INDEX_REGION_MAX_BYTES = 4 << 20
let metadataCaches = new WeakMap<ObjectStore, Map<string, Promise<OpenShard>>>()
let pageIndexCaches = new WeakMap<ObjectStore, Map<string, Promise<SortKeyPages | null>>>()

/** Drop cached footers and page indexes of one store, or of every store (benchmarks measuring cold reads). */
export function clearShardMetadataCache(store?: ObjectStore): void {
  if (store) { metadataCaches.delete(store); pageIndexCaches.delete(store) }
  else { metadataCaches = new WeakMap(); pageIndexCaches = new WeakMap() }
}

interface OpenShard {
  key: string
  buffer: AsyncBuffer
  metadata: FileMetaData
}

/**
 * An open shard (its parsed footer, and its buffer with the fetched tail, where the page indexes usually sit too),
 * cached per store by key and size (a rewritten shard of another size is re-read): a repeated search touches
 * new pages, not the footer again.
 */
function openShard(store: ObjectStore, datasetPrefix: string, file: ShardFile): Promise<OpenShard> {
  let cache = metadataCaches.get(store)
  if (!cache) metadataCaches.set(store, (cache = new Map()))
  const key = datasetPrefix + file.key
  const id = `${key}\u0000${file.bytes}`
  const hit = cache.get(id)
  if (hit) {
    cache.delete(id) // move to the back: least recently used goes first
    cache.set(id, hit)
    return hit
  }
  const footer = storeAsyncBuffer(store, key, file.bytes)
  const loading = parquetMetadataAsync(footer, { initialFetchSize: FOOTER_FETCH_BYTES }).then((metadata) => {
    // Page indexes sit together between the last row group and the footer. A page-narrowed read needs several of
    // them per row group; fetching the whole region once (when small) turns dozens of tiny reads into one.
    let indexStart = file.bytes
    for (const g of metadata.row_groups) {
      for (const c of g.columns) {
        if (c.column_index_offset !== undefined) indexStart = Math.min(indexStart, Number(c.column_index_offset))
        if (c.offset_index_offset !== undefined) indexStart = Math.min(indexStart, Number(c.offset_index_offset))
      }
    }
    const region = file.bytes - indexStart
    const buffer = region > FOOTER_FETCH_BYTES && region <= PAGE_INDEX_REGION_MAX_BYTES ? storeAsyncBuffer(store, key, file.bytes, region) : footer
    return { key, buffer, metadata }
  })
  loading.catch(() => cache.delete(id))
  cache.set(id, loading)
  if (cache.size > METADATA_CACHE_ENTRIES) cache.delete(cache.keys().next().value!)
  return loading
}

function kvNumber(metadata: FileMetaData, key: string): number | undefined {
  const v = metadata.key_value_metadata?.find((kv) => kv.key === key)?.value
  const n = v === undefined ? NaN : Number(v)
  return Number.isFinite(n) ? n : undefined
}

/**
 * Contiguous runs of row groups [rowStart, rowEnd) whose sort-key span [first, last] satisfies `overlaps`,
 * from the manifest's index alone: no file is opened to decide what to read.
 */
export function planRowGroupRuns(rowGroups: RowGroupRange[], overlaps: (first: number, last: number) => boolean): Array<[number, number]> {
  const runs: Array<[number, number]> = []
  for (const g of rowGroups) {
    if (g.rowCount === 0 || !overlaps(g.first, g.last)) continue
    const prev = runs[runs.length - 1]
    if (prev && prev[1] === g.rowStart) prev[1] = g.rowStart + g.rowCount
    else runs.push([g.rowStart, g.rowStart + g.rowCount])
  }
  return runs
}

type ColumnKind = 'i32' | 'f32' | 'str' | 'bool'
type ColumnOut = Int32Array | Float32Array | string[] | Uint8Array

function allocate(kind: ColumnKind, n: number): ColumnOut {
  if (kind === 'i32') return new Int32Array(n)
  if (kind === 'f32') return new Float32Array(n)
  if (kind === 'bool') return new Uint8Array(n)
  return new Array<string>(n)
}

/** Rows [rowStart, rowEnd) of the named columns, each assembled into one typed array. */
async function readColumns(shard: OpenShard, columns: Record<string, ColumnKind>, rowStart: number, rowEnd: number,
  useOffsetIndex = false): Promise<Record<string, ColumnOut>> {
  const n = rowEnd - rowStart
  const out: Record<string, ColumnOut> = {}
  for (const [name, kind] of Object.entries(columns)) out[name] = allocate(kind, n)
  await parquetRead({
    file: shard.buffer,
    metadata: shard.metadata,
    columns: Object.keys(columns),
    rowStart,
    rowEnd,
    useOffsetIndex,
    onChunk({ columnName, columnData, rowStart: chunkStart }) {
      const target = out[columnName]
      // Page-level reads may hand back a page that starts before the requested row: clip to the request.
      const from = Math.max(0, rowStart - chunkStart)
      const to = Math.min(columnData.length, rowEnd - chunkStart)
      const at = chunkStart + from - rowStart
      if (to <= from) return
      if (target instanceof Uint8Array) {
        for (let i = from; i < to; i++) target[at + i - from] = columnData[i] ? 1 : 0
      } else if (Array.isArray(target)) {
        for (let i = from; i < to; i++) target[at + i - from] = columnData[i] as string
      } else {
        const src = columnData as ArrayLike<number>
        if (ArrayBuffer.isView(src)) target.set((src as Int32Array).subarray(from, to), at)
        else for (let i = from; i < to; i++) target[at + i - from] = src[i]
      }
    },
  })
  return out
}

/** First index in sorted `a` (within [lo, hi)) whose value is >= x. */
function lowerBound(a: ArrayLike<number>, x: number, lo = 0, hi = a.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (a[mid] < x) lo = mid + 1
    else hi = mid
  }
  return lo
}

function disjoint(file: ShardFile, start: number, end: number): boolean {
  return file.docStart !== undefined && file.docCount !== undefined &&
    (file.docStart >= end || file.docStart + file.docCount <= start)
}

/** Files in row order when every file says where it starts, so concatenated reads stay sorted by document. */
function inDocOrder(files: ShardFile[]): ShardFile[] {
  return files.every((f) => f.docStart !== undefined) ? [...files].sort((a, b) => a.docStart! - b.docStart!) : files
}

function datasetDocs(files: ShardFile[]): number | undefined {
  let n: number | undefined
  for (const f of files) if (f.docStart !== undefined && f.docCount !== undefined) n = Math.max(n ?? 0, f.docStart + f.docCount)
  return n
}

/** A CSR over dataset rows [docStart, docStart + nDocs): row i of the matrix is dataset row docStart + i. */
export type PooledCsrSlice = PooledCsr & { docStart: number }

/**
 * Pooled latents of a run of documents, from the by-document shards: `docRange` is `[first, last]` (inclusive, like
 * the manifest's row groups) or `{ start, end }` (half-open); all documents when left out.
 */
export async function readByDocument(store: ObjectStore, datasetPrefix: string, files: ShardFile[],
  docRange?: readonly [first: number, last: number] | KeyRange, shape: DatasetShape = {}): Promise<PooledCsrSlice> {
  const totalDocs = shape.nDocs ?? datasetDocs(files)
  const range = docRange === undefined ? undefined : 'start' in docRange ? docRange : { start: docRange[0], end: docRange[1] + 1 }
  const start = range?.start ?? 0
  const end = range?.end ?? totalDocs ?? Number.MAX_SAFE_INTEGER
  if (!(start >= 0 && end >= start)) throw new RangeError(`bad document range [${start}, ${end})`)
  let nLatents = shape.nLatents
  const parts: { doc: Int32Array; latent: Int32Array; value: Float32Array; position: Int32Array }[] = []
  let maxDoc = -1
  let maxLatent = -1
  for (const file of inDocOrder(files)) {
    if (end <= start || disjoint(file, start, end)) continue
    const runs = planRowGroupRuns(file.rowGroups, (first, last) => last >= start && first < end)
    if (!runs.length) continue
    const shard = await openShard(store, datasetPrefix, file)
    nLatents ??= kvNumber(shard.metadata, KV.nLatents)
    const reads = await Promise.all(runs.map(([a, b]) =>
      readColumns(shard, { doc: 'i32', latent: 'i32', value: 'f32', position: 'i32' }, a, b)))
    for (const cols of reads) {
      const doc = cols.doc as Int32Array
      const lo = lowerBound(doc, start)
      const hi = lowerBound(doc, end, lo)
      if (hi <= lo) continue
      const part = {
        doc: doc.subarray(lo, hi), latent: (cols.latent as Int32Array).subarray(lo, hi),
        value: (cols.value as Float32Array).subarray(lo, hi), position: (cols.position as Int32Array).subarray(lo, hi),
      }
      maxDoc = Math.max(maxDoc, part.doc[part.doc.length - 1])
      for (let k = 0; k < part.latent.length; k++) if (part.latent[k] > maxLatent) maxLatent = part.latent[k]
      parts.push(part)
    }
  }
  const stop = range?.end ?? totalDocs ?? maxDoc + 1
  const nDocs = Math.max(0, stop - start)
  const indptr = new Int32Array(nDocs + 1)
  let nnz = 0
  for (const p of parts) {
    for (let k = 0; k < p.doc.length; k++) indptr[p.doc[k] - start + 1]++
    nnz += p.doc.length
  }
  for (let i = 0; i < nDocs; i++) indptr[i + 1] += indptr[i]
  const fill = indptr.slice(0, nDocs)
  const latents = new Int32Array(nnz)
  const values = new Float32Array(nnz)
  const positions = new Int32Array(nnz)
  // Each document lives in one file and one sorted run, so filling in read order keeps rows sorted by latent.
  for (const p of parts) {
    for (let k = 0; k < p.doc.length; k++) {
      const at = fill[p.doc[k] - start]++
      latents[at] = p.latent[k]
      values[at] = p.value[k]
      positions[at] = p.position[k]
    }
  }
  return { nDocs, nLatents: nLatents ?? maxLatent + 1, indptr, latents, values, positions, docStart: start }
}

function sortedUnique(xs: ArrayLike<number>): Int32Array {
  const a = Int32Array.from(xs).sort()
  let n = 0
  for (let i = 0; i < a.length; i++) if (i === 0 || a[i] !== a[i - 1]) a[n++] = a[i]
  return a.subarray(0, n)
}

/** Half-open slices [lo, hi) of a sorted key column holding the wanted keys. */
function wantedSlices(keys: Int32Array, want: Int32Array | KeyRange): Array<[number, number]> {
  if (!(want instanceof Int32Array)) {
    const lo = lowerBound(keys, want.start)
    const hi = lowerBound(keys, want.end, lo)
    return hi > lo ? [[lo, hi]] : []
  }
  const out: Array<[number, number]> = []
  let from = 0
  for (const x of want) {
    const lo = lowerBound(keys, x, from)
    if (lo >= keys.length) break
    const hi = lowerBound(keys, x + 1, lo)
    if (hi > lo) out.push([lo, hi])
    from = hi
  }
  return out
}

function overlapTest(want: Int32Array | KeyRange): (first: number, last: number) => boolean {
  if (!(want instanceof Int32Array)) return (first, last) => last >= want.start && first < want.end
  return (first, last) => {
    const i = lowerBound(want, first)
    return i < want.length && want[i] <= last
  }
}

interface LatentPart { latent: Int32Array; doc: Int32Array; value: Float32Array; position: Int32Array }

/** Pages of one sort-key column chunk: the file row each starts at, and the smallest and largest key on it. */
interface SortKeyPages { firstRow: number[]; min: number[]; max: number[] }

/**
 * The page index (column index + offset index) of a sort-key column chunk, or null when the shard was written
 * without one (older stores). Cached per store like footers: a few KB per row group.
 */
function sortKeyPages(store: ObjectStore, shard: OpenShard, rowGroup: number, column: string): Promise<SortKeyPages | null> {
  let cache = pageIndexCaches.get(store)
  if (!cache) pageIndexCaches.set(store, (cache = new Map()))
  const id = `${shard.key}\u0000${shard.buffer.byteLength}\u0000${rowGroup}\u0000${column}`
  const hit = cache.get(id)
  if (hit) return hit
  const load = async (): Promise<SortKeyPages | null> => {
    const group = shard.metadata.row_groups[rowGroup]
    const chunk = group.columns.find((c) => c.meta_data?.path_in_schema[0] === column)
    const schema = shard.metadata.schema.find((e) => e.name === column)
    if (!chunk?.column_index_offset || !chunk.column_index_length || !chunk.offset_index_offset || !chunk.offset_index_length || !schema) return null
    const ci = Number(chunk.column_index_offset)
    const oi = Number(chunk.offset_index_offset)
    const [colBytes, offBytes] = await Promise.all([
      shard.buffer.slice(ci, ci + chunk.column_index_length), shard.buffer.slice(oi, oi + chunk.offset_index_length),
    ])
    const columnIndex = readColumnIndex({ view: new DataView(colBytes), offset: 0 }, schema)
    const offsetIndex = readOffsetIndex({ view: new DataView(offBytes), offset: 0 })
    let groupStart = 0
    for (let g = 0; g < rowGroup; g++) groupStart += Number(shard.metadata.row_groups[g].num_rows)
    return {
      firstRow: offsetIndex.page_locations.map((p) => groupStart + Number(p.first_row_index)),
      min: columnIndex.min_values.map(Number),
      max: columnIndex.max_values.map(Number),
    }
  }
  const loading = load()
  loading.catch(() => cache.delete(id))
  cache.set(id, loading)
  if (cache.size > METADATA_CACHE_ENTRIES * 16) cache.delete(cache.keys().next().value!)
  return loading
}

/**
 * File rows to read for the wanted keys in rows [a, b): the runs of pages whose key span meets a wanted key, from
 * the page index, or the whole range when a row group has none.
 */
async function pagesToRead(store: ObjectStore, shard: OpenShard, a: number, b: number, column: string,
  overlaps: (first: number, last: number) => boolean): Promise<Array<[number, number]>> {
  const spans: Array<[number, number]> = []
  const add = (lo: number, hi: number) => {
    const last = spans[spans.length - 1]
    if (last && last[1] >= lo) last[1] = Math.max(last[1], hi)
    else spans.push([lo, hi])
  }
  let groupStart = 0
  for (let g = 0; g < shard.metadata.row_groups.length; g++) {
    const groupEnd = groupStart + Number(shard.metadata.row_groups[g].num_rows)
    if (groupEnd > a && groupStart < b) {
      const pages = await sortKeyPages(store, shard, g, column)
      if (!pages) add(Math.max(a, groupStart), Math.min(b, groupEnd))
      else for (let p = 0; p < pages.firstRow.length; p++) {
        if (!overlaps(pages.min[p], pages.max[p])) continue
        const lo = Math.max(a, pages.firstRow[p])
        const hi = Math.min(b, p + 1 < pages.firstRow.length ? pages.firstRow[p + 1] : groupEnd)
        if (hi > lo) add(lo, hi)
      }
    }
    groupStart = groupEnd
  }
  return spans
}

interface LatentPart { latent: Int32Array; doc: Int32Array; value: Float32Array; position: Int32Array }

/**
 * The wanted latents' rows in rows [a, b) of a by-latent shard: only the pages whose latent span meets a wanted
 * latent are fetched and decoded (page index + offset index), so a latent with 2k documents costs about a page per
 * column instead of four 100k-row column chunks.
 */
async function readLatentRun(store: ObjectStore, shard: OpenShard, a: number, b: number, want: Int32Array | KeyRange): Promise<LatentPart[]> {
  const spans = await pagesToRead(store, shard, a, b, 'latent', overlapTest(want))
  const reads = await Promise.all(spans.map(([lo, hi]) =>
    readColumns(shard, { latent: 'i32', doc: 'i32', value: 'f32', position: 'i32' }, lo, hi, true)))
  const parts: LatentPart[] = []
  for (const cols of reads) {
    const latent = cols.latent as Int32Array
    for (const [lo, hi] of wantedSlices(latent, want)) {
      parts.push({
        latent: latent.subarray(lo, hi), doc: (cols.doc as Int32Array).subarray(lo, hi),
        value: (cols.value as Float32Array).subarray(lo, hi), position: (cols.position as Int32Array).subarray(lo, hi),
      })
    }
  }
  return parts
}

/** Columns of the requested latents only (the other columns are empty), from the by-latent shards. */
export async function readByLatent(store: ObjectStore, datasetPrefix: string, files: ShardFile[],
  latents: ArrayLike<number> | KeyRange, shape: DatasetShape = {}): Promise<PooledCsc> {
  const want = 'start' in latents && 'end' in latents && !ArrayBuffer.isView(latents) && !Array.isArray(latents)
    ? latents as KeyRange : sortedUnique(latents as ArrayLike<number>)
  let nLatents = shape.nLatents
  const overlaps = overlapTest(want)
  const parts: LatentPart[] = []
  let maxDoc = -1
  let maxLatent = -1
  for (const file of inDocOrder(files)) {
    const runs = planRowGroupRuns(file.rowGroups, overlaps)
    if (!runs.length) continue
    const shard = await openShard(store, datasetPrefix, file)
    nLatents ??= kvNumber(shard.metadata, KV.nLatents)
    const reads = await Promise.all(runs.map(([a, b]) => readLatentRun(store, shard, a, b, want)))
    for (const part of reads.flat()) {
      maxLatent = Math.max(maxLatent, part.latent[part.latent.length - 1])
      for (let k = 0; k < part.doc.length; k++) if (part.doc[k] > maxDoc) maxDoc = part.doc[k]
      parts.push(part)
    }
  }
  const L = Math.max(nLatents ?? 0, maxLatent + 1)
  const indptr = new Int32Array(L + 1)
  let nnz = 0
  for (const p of parts) {
    for (let k = 0; k < p.latent.length; k++) indptr[p.latent[k] + 1]++
    nnz += p.latent.length
  }
  for (let j = 0; j < L; j++) indptr[j + 1] += indptr[j]
  const fill = indptr.slice(0, L)
  const docs = new Int32Array(nnz)
  const values = new Float32Array(nnz)
  const positions = new Int32Array(nnz)
  for (const p of parts) {
    for (let k = 0; k < p.latent.length; k++) {
      const at = fill[p.latent[k]]++
      docs[at] = p.doc[k]
      values[at] = p.value[k]
      positions[at] = p.position[k]
    }
  }
  sortColumnsByDoc(indptr, docs, values, positions)
  return { nDocs: shape.nDocs ?? datasetDocs(files) ?? maxDoc + 1, nLatents: L, indptr, docs, values, positions }
}

/** Files in doc order keep every column sorted already; files that overlap or lack docStart need this pass. */
function sortColumnsByDoc(indptr: Int32Array, docs: Int32Array, values: Float32Array, positions: Int32Array): void {
  for (let j = 0; j + 1 < indptr.length; j++) {
    const a = indptr[j]
    const b = indptr[j + 1]
    let sorted = true
    for (let k = a + 1; k < b && sorted; k++) if (docs[k] < docs[k - 1]) sorted = false
    if (sorted) continue
    const order = Array.from({ length: b - a }, (_, i) => a + i).sort((x, y) => docs[x] - docs[y])
    const d = order.map((k) => docs[k])
    const v = order.map((k) => values[k])
    const p = order.map((k) => positions[k])
    docs.set(d, a)
    values.set(v, a)
    positions.set(p, a)
  }
}

const DOCUMENT_KINDS: Record<DocumentColumnName, ColumnKind> = {
  row: 'i32', id: 'str', text: 'str', metadata: 'str', token_count: 'i32', truncated: 'bool', masked_tokens: 'i32', messages: 'str',
}
/** Wanted document rows this close together are read as one span. */
const DOCUMENTS_GAP_ROWS = 16
const BASE_DOCUMENT_COLUMNS: DocumentColumnName[] = ['row', 'id', 'text', 'metadata', 'token_count', 'truncated', 'masked_tokens']

/**
 * Documents at the requested rows (a list of rows, a range `{ start, end }`, or every row when left out), ascending
 * by row, each once; rows that no shard holds are left out, so compare `row` with what was asked. Reads only the
 * pages holding those rows. `messages` comes back as '' from shards written without it.
 */
export async function readDocuments<C extends DocumentColumnName = DocumentColumnName>(store: ObjectStore, datasetPrefix: string,
  files: ShardFile[], rows?: ArrayLike<number> | KeyRange, columns?: readonly C[]): Promise<Pick<Required<DocumentColumns>, C | 'row'>> {
  const want: Int32Array | KeyRange = rows === undefined ? { start: 0, end: Number.MAX_SAFE_INTEGER }
    : 'start' in rows && 'end' in rows && !ArrayBuffer.isView(rows) && !Array.isArray(rows)
      ? rows as KeyRange : sortedUnique(rows as ArrayLike<number>)
  const names = [...new Set<DocumentColumnName>(['row', ...(columns ?? BASE_DOCUMENT_COLUMNS)])]
  const overlaps = overlapTest(want)
  const pieces: Array<Record<string, ColumnOut>> = []
  for (const file of inDocOrder(files)) {
    const groups = file.rowGroups.filter((g) => g.rowCount > 0 && overlaps(g.first, g.last))
    if (!groups.length) continue
    const shard = await openShard(store, datasetPrefix, file)
    const present = new Set(shard.metadata.schema.map((e) => e.name))
    const wanted: Record<string, ColumnKind> = {}
    for (const name of names) if (present.has(name)) wanted[name] = DOCUMENT_KINDS[name]
    // Within a group whose rows are dense, read only the spans of wanted rows (close ones merged): with small pages
    // and the offset index, hyparquet then fetches just the pages holding them.
    const spans: Array<[number, number]> = []
    for (const g of groups) {
      if (g.last - g.first + 1 !== g.rowCount) { spans.push([g.rowStart, g.rowStart + g.rowCount]); continue }
      if (!(want instanceof Int32Array)) {
        spans.push([g.rowStart + Math.max(want.start, g.first) - g.first, g.rowStart + Math.min(want.end - 1, g.last) - g.first + 1])
        continue
      }
      const before = spans.length
      for (let i = lowerBound(want, g.first); i < want.length && want[i] <= g.last; i++) {
        const at = g.rowStart + want[i] - g.first
        const last = spans.length > before ? spans[spans.length - 1] : undefined
        if (last && at - last[1] <= DOCUMENTS_GAP_ROWS) last[1] = at + 1
        else spans.push([at, at + 1])
      }
    }
    const reads = await Promise.all(spans.map(([a, b]) => readColumns(shard, wanted, a, b, true)))
    for (const cols of reads) {
      const row = cols.row as Int32Array
      for (const [lo, hi] of wantedSlices(row, want)) {
        const piece: Record<string, ColumnOut> = {}
        for (const [name, col] of Object.entries(cols)) piece[name] = Array.isArray(col) ? col.slice(lo, hi) : col.subarray(lo, hi)
        for (const name of names) { // a column this shard was written without (messages): empty values
          if (!piece[name]) { const blank = allocate(DOCUMENT_KINDS[name], hi - lo); if (Array.isArray(blank)) blank.fill(''); piece[name] = blank }
        }
        pieces.push(piece)
      }
    }
  }
  const total = pieces.reduce((s, p) => s + p.row.length, 0)
  const out: Record<string, ColumnOut> = {}
  for (const name of names) {
    const dest = allocate(DOCUMENT_KINDS[name], total)
    let at = 0
    for (const p of pieces) {
      const src = p[name]
      if (Array.isArray(dest)) for (let i = 0; i < src.length; i++) dest[at + i] = (src as string[])[i]
      else dest.set(src as Int32Array, at)
      at += src.length
    }
    out[name] = dest
  }
  return out as unknown as Pick<Required<DocumentColumns>, C | 'row'>
}

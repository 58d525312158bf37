/**
 * @module Parquet reading shared by the store's readers: ranged reads of an object as an hyparquet AsyncBuffer, open
 * shards (footer + page indexes) cached per store, row-group planning from the manifest, page-narrowed column reads.
 */
import {
  parquetMetadataAsync,
  parquetRead,
  readColumnIndex,
  readOffsetIndex,
  type AsyncBuffer,
  type FileMetaData,
  type OffsetIndex
} from 'hyparquet'
import type { RowGroupRange, ShardFile } from '../../contract/manifest.ts'
import { lowerBound } from '../../util/sorted.ts'
import type { ObjectStore } from '../object-store.ts'
import { FOOTER_FETCH_BYTES, type KeyRange } from '../format.ts'
import { clearCscIndexCache } from '../latent-shards/csc.ts'

type PageLocation = OffsetIndex['page_locations'][number]

function exactArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer)
    return bytes.buffer
  return bytes.slice().buffer as ArrayBuffer
}

/**
 * An hyparquet AsyncBuffer over ranged reads of one object. The first read that falls in the last `footerBytes`
 * fetches that whole tail once, so the footer length, the footer and the page indexes near it cost one request.
 */
export function storeAsyncBuffer(
  store: ObjectStore,
  key: string,
  byteLength: number,
  footerBytes = FOOTER_FETCH_BYTES
): AsyncBuffer {
  const tailStart = Math.max(0, byteLength - footerBytes)
  let tail: Promise<ArrayBuffer> | undefined
  return {
    byteLength,
    slice(start: number, end = byteLength): Promise<ArrayBuffer> {
      if (start >= tailStart && end <= byteLength) {
        tail ??= store.getRange(key, tailStart, byteLength).then(exactArrayBuffer)
        return tail.then(buf => buf.slice(start - tailStart, end - tailStart))
      }
      return store.getRange(key, start, end).then(exactArrayBuffer)
    }
  }
}

const METADATA_CACHE_ENTRIES = 256
/** Page-index regions up to this size are fetched whole and kept with the open shard (~1 MB per 30M-row shard). */
const PAGE_INDEX_REGION_MAX_BYTES = 4 << 20
let metadataCaches = new WeakMap<ObjectStore, Map<string, Promise<OpenShard>>>()
let pageIndexCaches = new WeakMap<ObjectStore, Map<string, Promise<SortKeyPages | null>>>()

/** Drop cached footers, page indexes and sidecar indexes of one store, or of every store (benchmarks measuring cold reads). */
export function clearShardMetadataCache(store?: ObjectStore): void {
  clearCscIndexCache(store)
  if (store) {
    metadataCaches.delete(store)
    pageIndexCaches.delete(store)
  } else {
    metadataCaches = new WeakMap()
    pageIndexCaches = new WeakMap()
  }
}

export interface OpenShard {
  key: string
  buffer: AsyncBuffer
  metadata: FileMetaData
}

/**
 * An open shard (its parsed footer, and its buffer with the fetched tail, where the page indexes usually sit too),
 * cached per store by key and size (a rewritten shard of another size is re-read): a repeated search touches
 * new pages, not the footer again.
 */
export function openShard(
  store: ObjectStore,
  datasetPrefix: string,
  file: ShardFile | { key: string; bytes: number }
): Promise<OpenShard> {
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
  const loading = parquetMetadataAsync(footer, { initialFetchSize: FOOTER_FETCH_BYTES }).then(metadata => {
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
    const buffer =
      region > FOOTER_FETCH_BYTES && region <= PAGE_INDEX_REGION_MAX_BYTES
        ? storeAsyncBuffer(store, key, file.bytes, region)
        : footer
    return { key, buffer, metadata }
  })
  loading.catch(() => cache.delete(id))
  cache.set(id, loading)
  if (cache.size > METADATA_CACHE_ENTRIES) cache.delete(cache.keys().next().value!)
  return loading
}

export function kvNumber(metadata: FileMetaData, key: string): number | undefined {
  const v = metadata.key_value_metadata?.find(kv => kv.key === key)?.value
  const n = v === undefined ? NaN : Number(v)
  return Number.isFinite(n) ? n : undefined
}

/**
 * Contiguous runs of row groups [rowStart, rowEnd) whose sort-key span [first, last] satisfies `overlaps`,
 * from the manifest's index alone: no file is opened to decide what to read.
 */
export function planRowGroupRuns(
  rowGroups: RowGroupRange[],
  overlaps: (first: number, last: number) => boolean
): Array<[number, number]> {
  const runs: Array<[number, number]> = []
  for (const g of rowGroups) {
    if (g.rowCount === 0 || !overlaps(g.first, g.last)) continue
    const prev = runs[runs.length - 1]
    if (prev && prev[1] === g.rowStart) prev[1] = g.rowStart + g.rowCount
    else runs.push([g.rowStart, g.rowStart + g.rowCount])
  }
  return runs
}

export type ColumnKind = 'i32' | 'f32' | 'str' | 'bool'
export type ColumnOut = Int32Array | Float32Array | string[] | Uint8Array

export function allocate(kind: ColumnKind, n: number): ColumnOut {
  if (kind === 'i32') return new Int32Array(n)
  if (kind === 'f32') return new Float32Array(n)
  if (kind === 'bool') return new Uint8Array(n)
  return new Array<string>(n)
}

const pageLocationCaches = new WeakMap<OpenShard, Map<string, Promise<PageLocation[] | null>>>()

/**
 * The page locations (offset index) of one column chunk, parsed once per open shard: hyparquet parses a chunk's
 * offset index on every page-narrowed read, which a search repeats for each latent and column (measured ~7% of a
 * warm search's CPU at 100k documents, and more of a cold one's). null when the chunk has no offset index.
 */
function columnPageLocations(shard: OpenShard, rowGroup: number, column: string): Promise<PageLocation[] | null> {
  let cache = pageLocationCaches.get(shard)
  if (!cache) pageLocationCaches.set(shard, (cache = new Map()))
  const id = `${rowGroup}\u0000${column}`
  let hit = cache.get(id)
  if (!hit) {
    const chunk = shard.metadata.row_groups[rowGroup].columns.find(
      c => c.meta_data?.path_in_schema.join('.') === column
    )
    const at = chunk?.offset_index_offset === undefined ? undefined : Number(chunk.offset_index_offset)
    const length = chunk?.offset_index_length
    hit =
      at === undefined || !length
        ? Promise.resolve(null)
        : Promise.resolve(shard.buffer.slice(at, at + length)).then(
            bytes => readOffsetIndex({ view: new DataView(bytes), offset: 0 }).page_locations
          )
    const loading = hit
    loading.catch(() => cache.delete(id))
    cache.set(id, loading)
  }
  return hit
}

/**
 * Page locations of the columns in the row groups that rows [rowStart, rowEnd) cover only in part (whole row groups
 * read whole column chunks, without them), indexed by row group as hyparquet's planner takes them.
 */
export async function pageLocationsByGroup(
  shard: OpenShard,
  columns: string[],
  rowStart: number,
  rowEnd: number
): Promise<Array<Record<string, PageLocation[]>>> {
  const byGroup: Array<Record<string, PageLocation[]>> = []
  const loads: Array<Promise<void>> = []
  let groupStart = 0
  for (let g = 0; g < shard.metadata.row_groups.length; g++) {
    const groupEnd = groupStart + Number(shard.metadata.row_groups[g].num_rows)
    if (groupEnd > rowStart && groupStart < rowEnd && (rowStart > groupStart || rowEnd < groupEnd)) {
      const group: Record<string, PageLocation[]> = (byGroup[g] = {})
      for (const column of columns)
        loads.push(
          columnPageLocations(shard, g, column).then(pages => {
            if (pages) group[column] = pages
          })
        )
    }
    groupStart = groupEnd
  }
  await Promise.all(loads)
  return byGroup
}

const utf8 = new TextDecoder()
/** hyparquet's string parser, replaced: the bytes as they are (decoded by readColumns for the rows it keeps). */
const rawBytes = (bytes: Uint8Array) => bytes as unknown as string

/** Rows [rowStart, rowEnd) of the named columns, each assembled into one typed array. */
export async function readColumns(
  shard: OpenShard,
  columns: Record<string, ColumnKind>,
  rowStart: number,
  rowEnd: number,
  useOffsetIndex = false
): Promise<Record<string, ColumnOut>> {
  const n = rowEnd - rowStart
  const out: Record<string, ColumnOut> = {}
  for (const [name, kind] of Object.entries(columns)) out[name] = allocate(kind, n)
  const names = Object.keys(columns)
  await parquetRead({
    file: shard.buffer,
    metadata: shard.metadata,
    columns: names,
    rowStart,
    rowEnd,
    useOffsetIndex,
    // Parsed offset indexes, handed to hyparquet's planner the way its own page-index reads do (an option its types
    // leave out): without it, or should a version ignore it, hyparquet reads each offset index itself, as before.
    ...(useOffsetIndex ? { pageLocationsByGroup: await pageLocationsByGroup(shard, names, rowStart, rowEnd) } : {}),
    // Strings come back as their bytes and only the requested rows are decoded: a page-narrowed read of a few rows
    // (a search's hits) otherwise decodes every id and text of each page it touches (~1,000 ids a page).
    ...(names.some(c => columns[c] === 'str') ? { parsers: { stringFromBytes: rawBytes } } : {}),
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
        for (let i = from; i < to; i++) {
          const v = columnData[i] as Uint8Array | string | null | undefined
          target[at + i - from] = (v instanceof Uint8Array ? utf8.decode(v) : v) as string
        }
      } else {
        const src = columnData as ArrayLike<number>
        if (ArrayBuffer.isView(src)) target.set((src as Int32Array).subarray(from, to), at)
        else for (let i = from; i < to; i++) target[at + i - from] = src[i]
      }
    }
  })
  return out
}

export function disjoint(file: ShardFile, start: number, end: number): boolean {
  return (
    file.docStart !== undefined &&
    file.docCount !== undefined &&
    (file.docStart >= end || file.docStart + file.docCount <= start)
  )
}

/** Files in row order when every file says where it starts, so concatenated reads stay sorted by document. */
export function inDocOrder(files: ShardFile[]): ShardFile[] {
  return files.every(f => f.docStart !== undefined) ? [...files].sort((a, b) => a.docStart! - b.docStart!) : files
}

export function datasetDocs(files: ShardFile[]): number | undefined {
  let n: number | undefined
  for (const f of files)
    if (f.docStart !== undefined && f.docCount !== undefined) n = Math.max(n ?? 0, f.docStart + f.docCount)
  return n
}

/** Half-open slices [lo, hi) of a sorted key column holding the wanted keys. */
export function wantedSlices(keys: Int32Array, want: Int32Array | KeyRange): Array<[number, number]> {
  if (!(want instanceof Int32Array)) {
    const lo = lowerBound(keys, want.start)
    const hi = lowerBound(keys, want.end, lo)
    return hi > lo ? [[lo, hi]] : []
  }
  const out: Array<[number, number]> = []
  if (!keys.length) return out
  // Only the wanted keys within this read's range: a caller reading many small spans (scattered rows) would otherwise
  // walk every wanted key once per span.
  const last = keys[keys.length - 1]
  let from = 0
  for (let i = lowerBound(want, keys[0]); i < want.length && want[i] <= last; i++) {
    const x = want[i]
    const lo = lowerBound(keys, x, from)
    if (lo >= keys.length) break
    const hi = lowerBound(keys, x + 1, lo)
    if (hi > lo) out.push([lo, hi])
    from = hi
  }
  return out
}

export function overlapTest(want: Int32Array | KeyRange): (first: number, last: number) => boolean {
  if (!(want instanceof Int32Array)) return (first, last) => last >= want.start && first < want.end
  return (first, last) => {
    const i = lowerBound(want, first)
    return i < want.length && want[i] <= last
  }
}

/** Pages of one sort-key column chunk: the file row each starts at, and the smallest and largest key on it. */
export interface SortKeyPages {
  firstRow: number[]
  min: number[]
  max: number[]
}

/**
 * The page index (column index + offset index) of a sort-key column chunk, or null when the shard was written
 * without one (older stores). Cached per store like footers: a few KB per row group.
 */
function sortKeyPages(
  store: ObjectStore,
  shard: OpenShard,
  rowGroup: number,
  column: string
): Promise<SortKeyPages | null> {
  let cache = pageIndexCaches.get(store)
  if (!cache) pageIndexCaches.set(store, (cache = new Map()))
  const id = `${shard.key}\u0000${shard.buffer.byteLength}\u0000${rowGroup}\u0000${column}`
  const hit = cache.get(id)
  if (hit) return hit
  const load = async (): Promise<SortKeyPages | null> => {
    const group = shard.metadata.row_groups[rowGroup]
    const chunk = group.columns.find(c => c.meta_data?.path_in_schema[0] === column)
    const schema = shard.metadata.schema.find(e => e.name === column)
    if (
      !chunk?.column_index_offset ||
      !chunk.column_index_length ||
      !chunk.offset_index_offset ||
      !chunk.offset_index_length ||
      !schema
    )
      return null
    const ci = Number(chunk.column_index_offset)
    const [colBytes, locations] = await Promise.all([
      shard.buffer.slice(ci, ci + chunk.column_index_length),
      columnPageLocations(shard, rowGroup, column)
    ])
    const columnIndex = readColumnIndex({ view: new DataView(colBytes), offset: 0 }, schema)
    let groupStart = 0
    for (let g = 0; g < rowGroup; g++) groupStart += Number(shard.metadata.row_groups[g].num_rows)
    return {
      firstRow: locations!.map(p => groupStart + Number(p.first_row_index)),
      min: columnIndex.min_values.map(Number),
      max: columnIndex.max_values.map(Number)
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
export async function pagesToRead(
  store: ObjectStore,
  shard: OpenShard,
  a: number,
  b: number,
  column: string,
  overlaps: (first: number, last: number) => boolean
): Promise<Array<[number, number]>> {
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
      else
        for (let p = 0; p < pages.firstRow.length; p++) {
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

/**
 * @module Constants and shapes of the stored Parquet shards that readers and writers share: metadata keys, row-group
 * and page sizes, key ranges. Imports no Parquet library, so either side (or a planner) can use it alone.
 */
import type { ShardFile } from '../contract/manifest.ts'
import { sortedUnique } from '../util/sorted.ts'

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
  docCount: 'latentbase.doc_count'
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

/** A range when `x` is `{ start, end }`, else the sorted distinct values of the list. */
export function keyRangeOrSorted(x: ArrayLike<number> | KeyRange): Int32Array | KeyRange {
  return 'start' in x && 'end' in x && !ArrayBuffer.isView(x) && !Array.isArray(x)
    ? (x as KeyRange)
    : sortedUnique(x as ArrayLike<number>)
}

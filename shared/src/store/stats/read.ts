/**
 * @module Readers of the statistics files: stats/latent-stats.parquet (whole, some columns, or one latent's row) and
 * stats/latent-p90.f32.
 */
import { parquetMetadata, parquetMetadataAsync, parquetRead, type AsyncBuffer } from 'hyparquet'
import { DEFAULT_TOP_K, emptyStats, HISTOGRAM_SLOTS, type LatentStats } from '../../analysis/latent-stats.ts'
import { parseP90Bytes } from '../../analysis/search.ts'
import type { ObjectStore } from '../object-store.ts'
import { FOOTER_FETCH_BYTES } from '../format.ts'
import { storeAsyncBuffer } from '../parquet/read.ts'
import { checkHistogramEdges, KV_EDGES, KV_TOP_K } from './format.ts'

/** Parquet columns of the statistics file ('latent' is implied). Reading fewer fetches fewer bytes. */
export type LatentStatsColumn = 'doc_count' | 'sum' | 'max' | 'histogram' | 'top_docs' | 'top_values'

/** Parse a statistics file (bytes, or an AsyncBuffer over ranged reads); left-out columns stay zero / empty. */
export async function parseLatentStats(
  file: Uint8Array | AsyncBuffer,
  columns?: readonly LatentStatsColumn[]
): Promise<LatentStats> {
  const buffer: AsyncBuffer =
    file instanceof Uint8Array
      ? file.byteOffset === 0 && file.byteLength === file.buffer.byteLength
        ? (file.buffer as ArrayBuffer)
        : (file.slice().buffer as ArrayBuffer)
      : file
  const metadata =
    buffer instanceof ArrayBuffer
      ? parquetMetadata(buffer)
      : await parquetMetadataAsync(buffer, { initialFetchSize: FOOTER_FETCH_BYTES })
  const kv = (key: string) => metadata.key_value_metadata?.find(e => e.key === key)?.value
  checkHistogramEdges(kv(KV_EDGES))
  const K = Number(kv(KV_TOP_K) ?? DEFAULT_TOP_K)
  const nLatents = Number(metadata.num_rows)
  const s = emptyStats(nLatents, K)
  if (columns?.length === 0) return s
  await parquetRead({
    file: buffer,
    metadata,
    columns: columns ? [...columns] : undefined,
    onChunk({ columnName, columnData, rowStart }) {
      const rows = columnData as ArrayLike<unknown>
      for (let r = 0; r < rows.length; r++) {
        const l = rowStart + r
        const x = rows[r]
        switch (columnName) {
          case 'doc_count':
            s.docCount[l] = x as number
            break
          case 'sum':
            s.sum[l] = x as number
            break
          case 'max':
            s.max[l] = x as number
            break
          case 'histogram':
            s.histogram.set(x as number[], l * HISTOGRAM_SLOTS)
            break
          case 'top_docs':
            s.topDocs.set(x as number[], l * K)
            break
          case 'top_values':
            s.topValues.set(x as number[], l * K)
            break
        }
      }
    }
  })
  return s
}

/**
 * The statistics file of a dataset (key: dataset prefix + manifest.stats.key). With `columns`, only those column
 * chunks (and the footer) are fetched: a diff needs doc_count alone, a few kB instead of the whole file.
 */
export async function readLatentStats(
  store: ObjectStore,
  key: string,
  columns?: readonly LatentStatsColumn[]
): Promise<LatentStats> {
  if (!columns) {
    const bytes = await store.get(key)
    if (!bytes) throw new Error(`latent statistics not found: ${key}`)
    return parseLatentStats(bytes)
  }
  const size = await store.head(key)
  if (size === null) throw new Error(`latent statistics not found: ${key}`)
  return parseLatentStats(storeAsyncBuffer(store, key, size), columns)
}

/**
 * One latent's row of the statistics file, as a one-latent LatentStats (so `quantile` applies). Reads only that row
 * through the offset index: parsing the whole histogram column of a 16k-latent file costs ~150 ms, one row a few.
 */
export async function readLatentStatsRow(store: ObjectStore, key: string, latent: number): Promise<LatentStats> {
  const size = await store.head(key)
  if (size === null) throw new Error(`latent statistics not found: ${key}`)
  const file = storeAsyncBuffer(store, key, size)
  const metadata = await parquetMetadataAsync(file, { initialFetchSize: FOOTER_FETCH_BYTES })
  checkHistogramEdges(metadata.key_value_metadata?.find(e => e.key === KV_EDGES)?.value)
  const s = emptyStats(1, 1)
  if (latent >= Number(metadata.num_rows)) return s
  await parquetRead({
    file,
    metadata,
    rowStart: latent,
    rowEnd: latent + 1,
    useOffsetIndex: true,
    columns: ['doc_count', 'sum', 'max', 'histogram'],
    onChunk({ columnName, columnData, rowStart }) {
      const i = latent - rowStart
      const rows = columnData as ArrayLike<unknown>
      if (i < 0 || i >= rows.length) return
      const x = rows[i]
      if (columnName === 'doc_count') s.docCount[0] = x as number
      else if (columnName === 'sum') s.sum[0] = x as number
      else if (columnName === 'max') s.max[0] = x as number
      else if (columnName === 'histogram') s.histogram.set(x as number[])
    }
  })
  return s
}

/**
 * The stored p90 of every latent (key: dataset prefix + layout.latentP90()), or null when the file is missing or
 * does not hold nLatents of them (a dataset written before they were stored).
 */
export async function readLatentP90(store: ObjectStore, key: string, nLatents: number): Promise<Float32Array | null> {
  return parseP90Bytes(await store.get(key), nLatents)
}

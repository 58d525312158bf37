/**
 * @module Writer of the statistics files: stats/latent-stats.parquet, one row per latent (the histogram and the top-k
 * are LIST columns, which DuckDB, pandas and Spark read as arrays; the top-k lists hold only the filled entries), and
 * stats/latent-p90.f32, every latent's p90 for search.
 */
import { parquetWriteBuffer } from 'hyparquet-writer'
import {
  HISTOGRAM_BINS,
  HISTOGRAM_EDGES,
  HISTOGRAM_MAX,
  HISTOGRAM_MIN,
  HISTOGRAM_SLOTS,
  type LatentStats
} from '../../analysis/latent-stats.ts'
import { p90Bytes } from '../../analysis/search.ts'
import { STORE_VERSION } from '../../contract/manifest.ts'
import { KV } from '../format.ts'
import { KV_EDGES, KV_LAYOUT, KV_TOP_K } from './format.ts'

function listOf(name: string, type: 'INT32' | 'FLOAT') {
  return [
    { name, repetition_type: 'REQUIRED' as const, converted_type: 'LIST' as const, num_children: 1 },
    { name: 'list', repetition_type: 'REPEATED' as const, num_children: 1 },
    { name: 'element', type, repetition_type: 'REQUIRED' as const }
  ]
}

export function writeLatentStats(stats: LatentStats): Uint8Array {
  const { nLatents, topK: K } = stats
  const histogram: number[][] = new Array(nLatents)
  const topDocs: number[][] = new Array(nLatents)
  const topValues: number[][] = new Array(nLatents)
  for (let l = 0; l < nLatents; l++) {
    histogram[l] = Array.from(stats.histogram.subarray(l * HISTOGRAM_SLOTS, (l + 1) * HISTOGRAM_SLOTS))
    let n = 0
    while (n < K && stats.topDocs[l * K + n] >= 0) n++
    topDocs[l] = Array.from(stats.topDocs.subarray(l * K, l * K + n))
    topValues[l] = Array.from(stats.topValues.subarray(l * K, l * K + n))
  }
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: 'latent', data: Int32Array.from({ length: nLatents }, (_, i) => i) },
      { name: 'doc_count', data: stats.docCount },
      { name: 'sum', data: stats.sum },
      { name: 'max', data: stats.max },
      { name: 'histogram', data: histogram },
      { name: 'top_docs', data: topDocs },
      { name: 'top_values', data: topValues }
    ],
    schema: [
      { name: 'root', num_children: 7 },
      { name: 'latent', type: 'INT32', repetition_type: 'REQUIRED' },
      { name: 'doc_count', type: 'INT32', repetition_type: 'REQUIRED' },
      { name: 'sum', type: 'DOUBLE', repetition_type: 'REQUIRED' },
      { name: 'max', type: 'FLOAT', repetition_type: 'REQUIRED' },
      ...listOf('histogram', 'INT32'),
      ...listOf('top_docs', 'INT32'),
      ...listOf('top_values', 'FLOAT')
    ],
    rowGroupSize: 100_000,
    kvMetadata: [
      { key: KV.storeVersion, value: String(STORE_VERSION) },
      { key: KV_EDGES, value: JSON.stringify(Array.from(HISTOGRAM_EDGES)) },
      {
        key: KV_LAYOUT,
        value: `underflow (0, ${HISTOGRAM_MIN}), ${HISTOGRAM_BINS} log-spaced bins [edges[i], edges[i+1]), overflow [${HISTOGRAM_MAX}, inf)`
      },
      { key: KV_TOP_K, value: String(K) }
    ],
    createdBy: 'latentbase (hyparquet-writer)'
  })
  return new Uint8Array(buffer)
}

/** The bytes of stats/latent-p90.f32 (layout.latentP90): every latent's p90 as float32 little-endian. */
export function writeLatentP90(stats: LatentStats): Uint8Array {
  return p90Bytes(stats)
}

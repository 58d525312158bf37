/** @module Reader of examples/top-examples.parquet: one latent's top examples, reading only its rows. */
import { parquetMetadataAsync, parquetRead } from 'hyparquet'
import { lowerBound } from '../../util/sorted.ts'
import type { ObjectStore } from '../object-store.ts'
import { FOOTER_FETCH_BYTES } from '../format.ts'
import { storeAsyncBuffer } from '../parquet/read.ts'

/** One latent's rows of examples/top-examples.parquet, columnar, in rank order. */
export interface LatentExamples {
  rank: Int32Array
  doc: Int32Array
  value: Float32Array
  position: Int32Array
  windowStart: Int32Array
  tokens: string[][]
  activations: number[][]
}

const asJson = <T>(x: unknown): T => (typeof x === 'string' ? JSON.parse(x) : x) as T

/**
 * A latent's top examples. The file is sorted by (latent, rank): row groups whose latent statistics exclude it are
 * skipped, the latent column of the others locates its rows, and only those rows of the wide columns (tokens and
 * activations as JSON) are read, through the offset index.
 */
export async function readLatentExamples(
  store: ObjectStore,
  key: string,
  latent: number,
  limit = Infinity
): Promise<LatentExamples> {
  const out: LatentExamples = {
    rank: new Int32Array(0),
    doc: new Int32Array(0),
    value: new Float32Array(0),
    position: new Int32Array(0),
    windowStart: new Int32Array(0),
    tokens: [],
    activations: []
  }
  const size = await store.head(key)
  if (size === null) return out
  const file = storeAsyncBuffer(store, key, size)
  const metadata = await parquetMetadataAsync(file, { initialFetchSize: FOOTER_FETCH_BYTES })
  let groupStart = 0
  let lo = -1
  let hi = -1
  for (const group of metadata.row_groups) {
    const rows = Number(group.num_rows)
    const start = groupStart
    groupStart += rows
    const stats = group.columns.find(c => c.meta_data?.path_in_schema.join('.') === 'latent')?.meta_data?.statistics
    const min = stats?.min_value ?? stats?.min
    const max = stats?.max_value ?? stats?.max
    if (typeof min === 'number' && typeof max === 'number' && (latent < min || latent > max)) continue
    const column = new Int32Array(rows)
    await parquetRead({
      file,
      metadata,
      columns: ['latent'],
      rowStart: start,
      rowEnd: start + rows,
      onChunk({ columnData, rowStart }) {
        const data = columnData as ArrayLike<number>
        for (let i = Math.max(0, start - rowStart); i < data.length && rowStart + i < start + rows; i++)
          column[rowStart + i - start] = data[i]
      }
    })
    const a = lowerBound(column, latent, 0, rows)
    const b = lowerBound(column, latent + 1, a, rows)
    if (b > a) {
      if (lo < 0) lo = start + a
      hi = start + b
    }
    if (b < rows) break // sorted by latent: the rows end here
  }
  if (lo < 0) return out
  const n = Math.min(hi - lo, limit)
  if (n <= 0) return out
  const rowEnd = lo + n
  out.rank = new Int32Array(n)
  out.doc = new Int32Array(n)
  out.value = new Float32Array(n)
  out.position = new Int32Array(n)
  out.windowStart = new Int32Array(n)
  out.tokens = new Array(n)
  out.activations = new Array(n)
  await parquetRead({
    file,
    metadata,
    rowStart: lo,
    rowEnd,
    useOffsetIndex: true,
    columns: ['rank', 'doc', 'value', 'position', 'window_start', 'tokens', 'activations'],
    onChunk({ columnName, columnData, rowStart }) {
      const data = columnData as ArrayLike<unknown>
      for (let i = Math.max(0, lo - rowStart); i < data.length && rowStart + i < rowEnd; i++) {
        const r = rowStart + i - lo
        const x = data[i]
        switch (columnName) {
          case 'rank':
            out.rank[r] = x as number
            break
          case 'doc':
            out.doc[r] = x as number
            break
          case 'value':
            out.value[r] = x as number
            break
          case 'position':
            out.position[r] = x as number
            break
          case 'window_start':
            out.windowStart[r] = x as number
            break
          case 'tokens':
            out.tokens[r] = asJson<string[]>(x)
            break
          case 'activations':
            out.activations[r] = asJson<number[]>(x)
            break
        }
      }
    }
  })
  return out
}

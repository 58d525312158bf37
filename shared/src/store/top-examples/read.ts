/** @module Reader of examples/top-examples.parquet: the top examples of chosen latents, reading only their rows. */
import { parquetMetadataAsync, parquetRead } from 'hyparquet'
import { lowerBound, sortedUnique } from '../../util/sorted.ts'
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

const emptyExamples = (n = 0): LatentExamples => ({
  rank: new Int32Array(n),
  doc: new Int32Array(n),
  value: new Float32Array(n),
  position: new Int32Array(n),
  windowStart: new Int32Array(n),
  tokens: new Array(n),
  activations: new Array(n)
})

/** A latent's top examples (at most `limit`, best ranks first); none when the file or the latent has none. */
export async function readLatentExamples(
  store: ObjectStore,
  key: string,
  latent: number,
  limit = Infinity
): Promise<LatentExamples> {
  return (await readExamplesOfLatents(store, key, [latent], limit)).get(latent) ?? emptyExamples()
}

/**
 * The top examples of each latent in `latents` that has any (at most `limit` each). The file is sorted by
 * (latent, rank): its footer is read once, row groups whose latent statistics miss every wanted latent are skipped,
 * the latent column of the others locates each latent's rows, and only those rows of the wide columns (tokens and
 * activations as JSON) are read, through the offset index.
 */
export async function readExamplesOfLatents(
  store: ObjectStore,
  key: string,
  latents: ArrayLike<number>,
  limit = Infinity
): Promise<Map<number, LatentExamples>> {
  const out = new Map<number, LatentExamples>()
  const wanted = sortedUnique(latents)
  if (wanted.length === 0 || limit <= 0) return out
  const size = await store.head(key)
  if (size === null) return out
  const file = storeAsyncBuffer(store, key, size)
  const metadata = await parquetMetadataAsync(file, { initialFetchSize: FOOTER_FETCH_BYTES })
  // Each wanted latent's run of rows [lo, hi) in file coordinates; a run may continue into the next row group.
  const runs = new Map<number, [number, number]>()
  let groupStart = 0
  for (const group of metadata.row_groups) {
    const rows = Number(group.num_rows)
    const start = groupStart
    groupStart += rows
    const stats = group.columns.find(c => c.meta_data?.path_in_schema.join('.') === 'latent')?.meta_data?.statistics
    const min = stats?.min_value ?? stats?.min
    const max = stats?.max_value ?? stats?.max
    const bounded = typeof min === 'number' && typeof max === 'number'
    const first = bounded ? lowerBound(wanted, min as number) : 0
    const last = bounded ? lowerBound(wanted, (max as number) + 1) : wanted.length
    if (first >= last) continue
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
    let from = 0
    for (let w = first; w < last; w++) {
      const latent = wanted[w]
      const a = lowerBound(column, latent, from, rows)
      const b = lowerBound(column, latent + 1, a, rows)
      from = b
      if (b === a) continue
      const run = runs.get(latent)
      if (run) run[1] = start + b
      else runs.set(latent, [start + a, start + b])
    }
    if (last === wanted.length && from < rows) break // sorted by latent: no wanted rows after these
  }
  await Promise.all(
    [...runs].map(async ([latent, [lo, hi]]) => {
      const n = Math.min(hi - lo, limit)
      const ex = emptyExamples(n)
      out.set(latent, ex)
      const rowEnd = lo + n
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
                ex.rank[r] = x as number
                break
              case 'doc':
                ex.doc[r] = x as number
                break
              case 'value':
                ex.value[r] = x as number
                break
              case 'position':
                ex.position[r] = x as number
                break
              case 'window_start':
                ex.windowStart[r] = x as number
                break
              case 'tokens':
                ex.tokens[r] = asJson<string[]>(x)
                break
              case 'activations':
                ex.activations[r] = asJson<number[]>(x)
                break
            }
          }
        }
      })
    })
  )
  return out
}

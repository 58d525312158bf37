/** @module Reader of examples/top-examples.parquet: the top examples of chosen latents, reading only their rows. */
import { parquetRead } from 'hyparquet'
import { lowerBound, sortedUnique } from '../../util/sorted.ts'
import type { ObjectStore } from '../object-store.ts'
import { openShard, pageLocationsByGroup, type OpenShard } from '../parquet/read.ts'

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

const COLUMNS = ['rank', 'doc', 'value', 'position', 'window_start', 'tokens', 'activations']

const utf8 = new TextDecoder()
/**
 * A JSON cell: bytes (rawBytes), or a value already parsed. The writer stores each window's JSON text as a JSON string
 * (hyparquet-writer encodes the strings it is given), so a parsed string is parsed once more.
 */
function asJson<T>(x: unknown): T {
  const v = x instanceof Uint8Array ? JSON.parse(utf8.decode(x)) : x
  return (typeof v === 'string' ? JSON.parse(v) : v) as T
}
/** hyparquet's JSON parser, replaced: the bytes as they are, parsed by asJson for the rows kept. */
const rawBytes = (bytes: Uint8Array) => bytes as unknown

/** Pages of the tokens column (16 KB each as written) one read may skip over rather than start another read. */
const MERGE_PAGES = 8

/** The array of `ex` that a stored column fills. */
function columnOf(ex: LatentExamples, column: string): { [row: number]: unknown } {
  switch (column) {
    case 'rank':
      return ex.rank
    case 'doc':
      return ex.doc
    case 'value':
      return ex.value
    case 'position':
      return ex.position
    case 'window_start':
      return ex.windowStart
    case 'tokens':
      return ex.tokens
    case 'activations':
      return ex.activations
    default:
      throw new Error(`top examples: no column ${column}`)
  }
}

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

// Each open file's latent column by row group, decoded once: every read needs it to find its latents' rows.
const latentColumns = new WeakMap<OpenShard, Map<number, Promise<Int32Array>>>()

function latentColumn(shard: OpenShard, group: number, start: number, rows: number): Promise<Int32Array> {
  let groups = latentColumns.get(shard)
  if (!groups) latentColumns.set(shard, (groups = new Map()))
  let hit = groups.get(group)
  if (!hit) {
    const column = new Int32Array(rows)
    hit = parquetRead({
      file: shard.buffer,
      metadata: shard.metadata,
      columns: ['latent'],
      rowStart: start,
      rowEnd: start + rows,
      onChunk({ columnData, rowStart }) {
        const data = columnData as ArrayLike<number>
        for (let i = Math.max(0, start - rowStart); i < data.length && rowStart + i < start + rows; i++)
          column[rowStart + i - start] = data[i]
      }
    }).then(() => column)
    const loading = hit
    loading.catch(() => groups.delete(group))
    groups.set(group, loading)
  }
  return hit
}

/**
 * The top examples of each latent in `latents` that has any (at most `limit` each), ascending by latent. The file is
 * sorted by (latent, rank): its footer and page indexes are read once per process (the store's open-shard cache),
 * row groups whose latent statistics miss every wanted latent are skipped, the latent column of the others locates
 * each latent's rows, and only the pages holding those rows are read (latents close together in one read).
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
  const shard = await openShard(store, '', { key, bytes: size })
  // Each wanted latent's run of rows [lo, hi) in file coordinates; a run may continue into the next row group.
  const runs = new Map<number, [number, number]>()
  let groupStart = 0
  for (let g = 0; g < shard.metadata.row_groups.length; g++) {
    const group = shard.metadata.row_groups[g]
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
    const column = await latentColumn(shard, g, start, rows)
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
  // Runs within MERGE_PAGES pages of the widest column (tokens) share one read: a page is then decompressed once, not
  // once per latent on it, whatever page size the file was written with, and a diff of 200 latents makes a few reads
  // (each a request per column on S3), not 200.
  const groupStarts = [0]
  for (const g of shard.metadata.row_groups) groupStarts.push(groupStarts[groupStarts.length - 1] + Number(g.num_rows))
  const pageStarts = new Map<number, number[]>()
  const pageOf = async (row: number): Promise<number> => {
    const g = lowerBound(groupStarts, row + 1) - 1
    let starts = pageStarts.get(g)
    if (!starts) {
      const pages = (await pageLocationsByGroup(shard, ['tokens'], row, row + 1))[g]?.tokens ?? []
      pageStarts.set(g, (starts = pages.map(p => groupStarts[g] + Number(p.first_row_index))))
    }
    // A chunk without an offset index is one page: the row group.
    return g * 2 ** 20 + Math.max(0, lowerBound(starts, row + 1) - 1)
  }
  const spans: Array<{
    lo: number
    hi: number
    lastPage: number
    runs: Array<{ ex: LatentExamples; lo: number; end: number }>
  }> = []
  for (const [latent, [lo, hi]] of runs) {
    const n = Math.min(hi - lo, limit)
    const ex = emptyExamples(n)
    out.set(latent, ex)
    const run = { ex, lo, end: lo + n }
    const firstPage = await pageOf(lo)
    const lastPage = await pageOf(run.end - 1)
    const last = spans[spans.length - 1]
    if (last && firstPage <= last.lastPage + MERGE_PAGES) {
      last.hi = run.end
      last.lastPage = lastPage
      last.runs.push(run)
    } else spans.push({ lo, hi: run.end, lastPage, runs: [run] })
  }
  await Promise.all(
    spans.map(async span =>
      parquetRead({
        file: shard.buffer,
        metadata: shard.metadata,
        rowStart: span.lo,
        rowEnd: span.hi,
        useOffsetIndex: true,
        // The offset indexes parsed once per open file (an option hyparquet's planner takes; see readColumns).
        pageLocationsByGroup: await pageLocationsByGroup(shard, COLUMNS, span.lo, span.hi),
        columns: COLUMNS,
        // The JSON columns come back as bytes and only the wanted rows are parsed: hyparquet would parse every row of
        // each page it decodes.
        parsers: { jsonFromBytes: rawBytes },
        onChunk({ columnName, columnData, rowStart }) {
          const data = columnData as ArrayLike<unknown>
          const chunkEnd = rowStart + data.length
          for (const { ex, lo, end } of span.runs) {
            const target = columnOf(ex, columnName)
            const json = columnName === 'tokens' || columnName === 'activations'
            for (let row = Math.max(lo, rowStart); row < Math.min(end, chunkEnd); row++) {
              const x = data[row - rowStart]
              target[row - lo] = json ? asJson(x) : (x as number)
            }
          }
        }
      } as Parameters<typeof parquetRead>[0])
    )
  )
  return out
}

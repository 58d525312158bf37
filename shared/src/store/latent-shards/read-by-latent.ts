/** @module Reader of the by-latent latent shards: the documents of a few latents as a CSC, fetching only their pages. */
import type { PooledCsc } from '../../analysis/sparse.ts'
import type { ShardFile } from '../../contract/manifest.ts'
import type { ObjectStore } from '../object-store.ts'
import { KV, keyRangeOrSorted, type DatasetShape, type KeyRange } from '../format.ts'
import {
  datasetDocs,
  inDocOrder,
  kvNumber,
  openShard,
  overlapTest,
  pagesToRead,
  planRowGroupRuns,
  readColumns,
  wantedSlices,
  type ColumnKind,
  type OpenShard
} from '../parquet/read.ts'
import { compressParts, type LatentPart } from './parts.ts'
import { cscKey, readCscLatents } from './csc.ts'

/**
 * The wanted latents' rows in rows [a, b) of a by-latent shard: only the pages whose latent span meets a wanted
 * latent are fetched and decoded (page index + offset index), so a latent with 2k documents costs about a page per
 * column instead of four 100k-row column chunks.
 */
async function readLatentRun(
  store: ObjectStore,
  shard: OpenShard,
  a: number,
  b: number,
  want: Int32Array | KeyRange,
  fileRows: boolean
): Promise<LatentPart[]> {
  const spans = await pagesToRead(store, shard, a, b, 'latent', overlapTest(want))
  const columns: Record<string, ColumnKind> = fileRows
    ? { latent: 'i32', doc: 'i32', value: 'f32' }
    : { latent: 'i32', doc: 'i32', value: 'f32', position: 'i32' }
  const reads = await Promise.all(spans.map(([lo, hi]) => readColumns(shard, columns, lo, hi, true)))
  const parts: LatentPart[] = []
  reads.forEach((cols, s) => {
    const latent = cols.latent as Int32Array
    for (const [lo, hi] of wantedSlices(latent, want)) {
      const first = spans[s][0] + lo
      parts.push({
        latent: latent.subarray(lo, hi),
        doc: (cols.doc as Int32Array).subarray(lo, hi),
        value: (cols.value as Float32Array).subarray(lo, hi),
        // With fileRows, the position slot carries each entry's row in its file (assembled the same way).
        position: fileRows ? consecutive(first, hi - lo) : (cols.position as Int32Array).subarray(lo, hi)
      })
    }
  })
  return parts
}

export interface ByLatentOptions {
  /**
   * false: the position column is not read (a quarter of the pages decoded); `positions` holds each entry's row in
   * its by-latent file instead, from which readPositionsAt reads the positions of the few entries wanted (a search's
   * hits). Honoured when every file says which documents it holds (docStart, docCount); see `fileRows` in the answer.
   */
  positions?: boolean
  /**
   * Told when a by-latent sidecar (part-NNNNN.csc) cannot be read: that file's rows come from its Parquet shard instead,
   * which is slower but the same answer. Default: one console.warn per sidecar key and process, so a damaged or
   * missing sidecar is seen in the logs without flooding them.
   */
  onSidecarError?: (key: string, error: Error) => void
}

const warnedSidecars = new Set<string>()
/** One console.warn per unreadable sidecar key and process. */
export function warnSidecarOnce(key: string, error: Error): void {
  if (warnedSidecars.has(key)) return
  if (warnedSidecars.size >= 1024) warnedSidecars.clear()
  warnedSidecars.add(key)
  console.warn(`latent shards: sidecar ${key} unreadable (${error.message}); reading its Parquet shard instead`)
}

function consecutive(first: number, n: number): Int32Array {
  const out = new Int32Array(n)
  for (let k = 0; k < n; k++) out[k] = first + k
  return out
}

/**
 * Columns of the requested latents only (the other columns are empty), from the by-latent shards. `fileRows` is true
 * when `positions` holds file rows rather than positions (options.positions false, honoured).
 */
export async function readByLatent(
  store: ObjectStore,
  datasetPrefix: string,
  files: ShardFile[],
  latents: ArrayLike<number> | KeyRange,
  shape: DatasetShape = {},
  options: ByLatentOptions = {}
): Promise<PooledCsc & { fileRows?: boolean }> {
  const fileRows = options.positions === false && files.every(f => f.docStart !== undefined && f.docCount !== undefined)
  const want = keyRangeOrSorted(latents)
  let nLatents = shape.nLatents
  const overlaps = overlapTest(want)
  const parts: LatentPart[] = []
  let maxDoc = -1
  let maxLatent = -1
  // Without positions, from the sidecars (one ranged read per run of latents and file, no decoding); a file without
  // one, or whose sidecar cannot be read, from its Parquet shard, which holds the same rows.
  const ordered = inDocOrder(files)
  const report = options.onSidecarError ?? warnSidecarOnce
  const fromCsc = fileRows
    ? await Promise.all(
        ordered.map(file =>
          file.cscBytes === undefined
            ? null
            : readCscLatents(store, datasetPrefix, file, want).catch((error: Error) => {
                report(datasetPrefix + cscKey(file.key), error)
                return null
              })
        )
      )
    : null
  nLatents ??= fromCsc?.find(r => r !== null)?.nLatents
  const fromParquet = async (file: ShardFile): Promise<LatentPart[]> => {
    const runs = planRowGroupRuns(file.rowGroups, overlaps)
    if (!runs.length) return []
    const shard = await openShard(store, datasetPrefix, file)
    nLatents ??= kvNumber(shard.metadata, KV.nLatents)
    return (await Promise.all(runs.map(([a, b]) => readLatentRun(store, shard, a, b, want, fileRows)))).flat()
  }
  for (let f = 0; f < ordered.length; f++) {
    const reads = fromCsc?.[f]?.parts ?? (await fromParquet(ordered[f]))
    for (const part of reads) {
      maxLatent = Math.max(maxLatent, part.latent[part.latent.length - 1])
      for (let k = 0; k < part.doc.length; k++) if (part.doc[k] > maxDoc) maxDoc = part.doc[k]
      parts.push(part)
    }
  }
  const L = Math.max(nLatents ?? 0, maxLatent + 1)
  const { indptr, minor: docs, values, positions } = compressParts(parts, 'latent', L)
  sortColumnsByDoc(indptr, docs, values, positions)
  return {
    nDocs: shape.nDocs ?? datasetDocs(files) ?? maxDoc + 1,
    nLatents: L,
    indptr,
    docs,
    values,
    positions,
    ...(fileRows ? { fileRows } : {})
  }
}

/**
 * The positions of a few entries read without them (readByLatent with positions: false): `rows[i]` is the file row
 * of an entry of document `docs[i]` (the file is the one holding that document); -1 where rows[i] is -1. Rows close
 * together are read as one span, so each page of the position column is decoded once.
 */
export async function readPositionsAt(
  store: ObjectStore,
  datasetPrefix: string,
  files: ShardFile[],
  docs: ArrayLike<number>,
  rows: ArrayLike<number>
): Promise<Int32Array> {
  const out = new Int32Array(rows.length).fill(-1)
  const perFile = new Map<ShardFile, number[]>()
  for (let i = 0; i < rows.length; i++) {
    if (rows[i] < 0) continue
    const file = files.find(f => f.docStart! <= docs[i] && docs[i] < f.docStart! + f.docCount!)
    if (!file) throw new Error(`no by-latent file holds document ${docs[i]}`)
    let list = perFile.get(file)
    if (!list) perFile.set(file, (list = []))
    list.push(i)
  }
  await Promise.all(
    [...perFile].map(async ([file, entries]) => {
      const shard = await openShard(store, datasetPrefix, file)
      entries.sort((x, y) => rows[x] - rows[y])
      const spans: Array<{ lo: number; hi: number; entries: number[] }> = []
      for (const i of entries) {
        const last = spans[spans.length - 1]
        if (last && rows[i] - last.hi < POSITION_GAP_ROWS) {
          last.hi = rows[i] + 1
          last.entries.push(i)
        } else spans.push({ lo: rows[i], hi: rows[i] + 1, entries: [i] })
      }
      await Promise.all(
        spans.map(async ({ lo, hi, entries }) => {
          const position = (await readColumns(shard, { position: 'i32' }, lo, hi, true)).position as Int32Array
          for (const i of entries) out[i] = position[rows[i] - lo]
        })
      )
    })
  )
  return out
}

/** File rows this close together are read as one span (about one page of the position column at 16 KB pages). */
const POSITION_GAP_ROWS = 2048

/** Files in doc order keep every column sorted already; files that overlap or lack docStart need this pass. */
function sortColumnsByDoc(indptr: Int32Array, docs: Int32Array, values: Float32Array, positions: Int32Array): void {
  for (let j = 0; j + 1 < indptr.length; j++) {
    const a = indptr[j]
    const b = indptr[j + 1]
    let sorted = true
    for (let k = a + 1; k < b && sorted; k++) if (docs[k] < docs[k - 1]) sorted = false
    if (sorted) continue
    const order = Array.from({ length: b - a }, (_, i) => a + i).sort((x, y) => docs[x] - docs[y])
    const d = order.map(k => docs[k])
    const v = order.map(k => values[k])
    const p = order.map(k => positions[k])
    docs.set(d, a)
    values.set(v, a)
    positions.set(p, a)
  }
}

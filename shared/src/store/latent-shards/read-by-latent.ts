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
  type OpenShard
} from '../parquet/read.ts'
import { compressParts, type LatentPart } from './parts.ts'

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
  want: Int32Array | KeyRange
): Promise<LatentPart[]> {
  const spans = await pagesToRead(store, shard, a, b, 'latent', overlapTest(want))
  const reads = await Promise.all(
    spans.map(([lo, hi]) =>
      readColumns(shard, { latent: 'i32', doc: 'i32', value: 'f32', position: 'i32' }, lo, hi, true)
    )
  )
  const parts: LatentPart[] = []
  for (const cols of reads) {
    const latent = cols.latent as Int32Array
    for (const [lo, hi] of wantedSlices(latent, want)) {
      parts.push({
        latent: latent.subarray(lo, hi),
        doc: (cols.doc as Int32Array).subarray(lo, hi),
        value: (cols.value as Float32Array).subarray(lo, hi),
        position: (cols.position as Int32Array).subarray(lo, hi)
      })
    }
  }
  return parts
}

/** Columns of the requested latents only (the other columns are empty), from the by-latent shards. */
export async function readByLatent(
  store: ObjectStore,
  datasetPrefix: string,
  files: ShardFile[],
  latents: ArrayLike<number> | KeyRange,
  shape: DatasetShape = {}
): Promise<PooledCsc> {
  const want = keyRangeOrSorted(latents)
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
  const { indptr, minor: docs, values, positions } = compressParts(parts, 'latent', L)
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
    const d = order.map(k => docs[k])
    const v = order.map(k => values[k])
    const p = order.map(k => positions[k])
    docs.set(d, a)
    values.set(v, a)
    positions.set(p, a)
  }
}

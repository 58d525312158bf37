/** @module Reader of the by-document latent shards: pooled latents of a run of documents as a CSR. */
import type { PooledCsr } from '../../analysis/sparse.ts'
import type { ShardFile } from '../../contract/manifest.ts'
import { lowerBound } from '../../util/sorted.ts'
import type { ObjectStore } from '../object-store.ts'
import { KV, type DatasetShape, type KeyRange } from '../format.ts'
import {
  datasetDocs,
  disjoint,
  inDocOrder,
  kvNumber,
  openShard,
  planRowGroupRuns,
  readColumns
} from '../parquet/read.ts'
import { compressParts, type LatentPart } from './parts.ts'

/** A CSR over dataset rows [docStart, docStart + nDocs): row i of the matrix is dataset row docStart + i. */
export type PooledCsrSlice = PooledCsr & { docStart: number }

/**
 * Pooled latents of a run of documents, from the by-document shards: `docRange` is `[first, last]` (inclusive, like
 * the manifest's row groups) or `{ start, end }` (half-open); all documents when left out.
 */
export async function readByDocument(
  store: ObjectStore,
  datasetPrefix: string,
  files: ShardFile[],
  docRange?: readonly [first: number, last: number] | KeyRange,
  shape: DatasetShape = {}
): Promise<PooledCsrSlice> {
  const totalDocs = shape.nDocs ?? datasetDocs(files)
  const range =
    docRange === undefined ? undefined : 'start' in docRange ? docRange : { start: docRange[0], end: docRange[1] + 1 }
  const start = range?.start ?? 0
  const end = range?.end ?? totalDocs ?? Number.MAX_SAFE_INTEGER
  if (!(start >= 0 && end >= start)) throw new RangeError(`bad document range [${start}, ${end})`)
  let nLatents = shape.nLatents
  const parts: LatentPart[] = []
  let maxDoc = -1
  let maxLatent = -1
  for (const file of inDocOrder(files)) {
    if (end <= start || disjoint(file, start, end)) continue
    const runs = planRowGroupRuns(file.rowGroups, (first, last) => last >= start && first < end)
    if (!runs.length) continue
    const shard = await openShard(store, datasetPrefix, file)
    nLatents ??= kvNumber(shard.metadata, KV.nLatents)
    const reads = await Promise.all(
      runs.map(([a, b]) => readColumns(shard, { doc: 'i32', latent: 'i32', value: 'f32', position: 'i32' }, a, b))
    )
    for (const cols of reads) {
      const doc = cols.doc as Int32Array
      const lo = lowerBound(doc, start)
      const hi = lowerBound(doc, end, lo)
      if (hi <= lo) continue
      const part = {
        doc: doc.subarray(lo, hi),
        latent: (cols.latent as Int32Array).subarray(lo, hi),
        value: (cols.value as Float32Array).subarray(lo, hi),
        position: (cols.position as Int32Array).subarray(lo, hi)
      }
      maxDoc = Math.max(maxDoc, part.doc[part.doc.length - 1])
      for (let k = 0; k < part.latent.length; k++) if (part.latent[k] > maxLatent) maxLatent = part.latent[k]
      parts.push(part)
    }
  }
  const stop = range?.end ?? totalDocs ?? maxDoc + 1
  const nDocs = Math.max(0, stop - start)
  // Each document lives in one file and one sorted run, so filling in read order keeps rows sorted by latent.
  const { indptr, minor: latents, values, positions } = compressParts(parts, 'doc', nDocs, start)
  return { nDocs, nLatents: nLatents ?? maxLatent + 1, indptr, latents, values, positions, docStart: start }
}

/** @module Writer of the latent shards: one chunk of pooled latents as a by-document and a by-latent Parquet shard. */
import { cscFromCsr, type PooledCsr } from '../../analysis/sparse.ts'
import { STORE_VERSION } from '../../contract/manifest.ts'
import {
  BY_DOCUMENT_PAGE_BYTES,
  DEFAULT_ROW_GROUP_ROWS,
  KV,
  LATENT_PAGE_BYTES,
  type ShardKind,
  type WrittenShard
} from '../format.ts'
import { fixedSizes, floatColumn, int32Column, rowGroupRanges, writeTable } from '../parquet/write.ts'
import { writeCsc } from './csc.ts'

export interface LatentShardOptions {
  /** Dataset row of the CSR's first row: shards from chunks encoded in parallel cover disjoint row ranges. */
  docOffset?: number
  /** Rows per row group (default 100,000; 65,536 to 131,072 is the intended range). */
  rowGroupRows?: number
  /**
   * Write the by-latent sidecar (default true). It adds ~8 bytes per pooled latent (~40% of the store) and makes reading
   * a few latents without positions ~25x faster; a store at tens of millions of documents may prefer the space.
   */
  sidecar?: boolean
}

function checkCsr(csr: PooledCsr): void {
  const { indptr, latents } = csr
  if (indptr.length !== csr.nDocs + 1)
    throw new Error(`CSR indptr has ${indptr.length} entries for ${csr.nDocs} documents`)
  const nnz = indptr[csr.nDocs]
  if (latents.length !== nnz || csr.values.length !== nnz || csr.positions.length !== nnz)
    throw new Error('CSR arrays disagree with indptr')
  for (let i = 0; i < csr.nDocs; i++) {
    if (indptr[i + 1] < indptr[i]) throw new Error(`CSR indptr decreases at row ${i}`)
    for (let k = indptr[i]; k < indptr[i + 1]; k++) {
      const l = latents[k]
      if (l < 0 || l >= csr.nLatents) throw new Error(`latent ${l} out of range [0, ${csr.nLatents}) at row ${i}`)
      // The row-group index stores first/last sort keys: it is only right if rows really are sorted.
      if (k > indptr[i] && l <= latents[k - 1]) throw new Error(`CSR row ${i} is not sorted by latent (or repeats one)`)
    }
  }
}

/** The by-document and by-latent shards of one chunk of pooled latents, and the by-latent shard's sidecar (csc.ts). */
export function writeLatentShards(
  csr: PooledCsr,
  options: LatentShardOptions = {}
): { byDocument: WrittenShard; byLatent: WrittenShard & { csc?: Uint8Array } } {
  checkCsr(csr)
  const docStart = options.docOffset ?? 0
  const per = options.rowGroupRows ?? DEFAULT_ROW_GROUP_ROWS
  const nnz = csr.latents.length
  const sizes = fixedSizes(nnz, per)
  const kv = (shard: ShardKind) => ({
    [KV.storeVersion]: STORE_VERSION,
    [KV.shard]: shard,
    [KV.nLatents]: csr.nLatents,
    [KV.docStart]: docStart,
    [KV.docCount]: csr.nDocs
  })

  const docOfRow = new Int32Array(nnz)
  for (let i = 0; i < csr.nDocs; i++) docOfRow.fill(docStart + i, csr.indptr[i], csr.indptr[i + 1])
  const byDocBytes = writeTable(
    [
      int32Column('doc', docOfRow, true),
      int32Column('latent', csr.latents),
      floatColumn('value', csr.values),
      int32Column('position', csr.positions)
    ],
    sizes,
    kv('by-document'),
    BY_DOCUMENT_PAGE_BYTES
  )

  const csc = cscFromCsr(csr)
  const latentOfRow = new Int32Array(nnz)
  for (let j = 0; j < csc.nLatents; j++) latentOfRow.fill(j, csc.indptr[j], csc.indptr[j + 1])
  const docs = docStart === 0 ? csc.docs : csc.docs.map(d => d + docStart)
  const byLatentBytes = writeTable(
    [
      int32Column('latent', latentOfRow, true),
      int32Column('doc', docs),
      floatColumn('value', csc.values),
      int32Column('position', csc.positions)
    ],
    sizes,
    kv('by-latent'),
    LATENT_PAGE_BYTES
  )

  const cscBytes = options.sidecar === false ? undefined : writeCsc(csc.indptr, docs, csc.values)
  return {
    byDocument: {
      bytes: byDocBytes,
      file: {
        rows: nnz,
        bytes: byDocBytes.length,
        rowGroups: rowGroupRanges(docOfRow, sizes),
        docStart,
        docCount: csr.nDocs
      }
    },
    byLatent: {
      bytes: byLatentBytes,
      ...(cscBytes ? { csc: cscBytes } : {}),
      file: {
        rows: nnz,
        bytes: byLatentBytes.length,
        rowGroups: rowGroupRanges(latentOfRow, sizes),
        docStart,
        docCount: csr.nDocs,
        ...(cscBytes ? { cscBytes: cscBytes.length } : {})
      }
    }
  }
}

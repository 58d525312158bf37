/** @module GET /datasets/{id}/documents/{row}/similar: the documents closest to one, by cosine of weighted latent sets, and why. */
import {
  SimilarQuery,
  SimilarTextQuery,
  type SimilarDocument,
  type SimilarDocuments,
  type SimilarToText
} from '@latentbase/shared/contract/similar'
import { poolRolesOf } from '@latentbase/shared/contract/dataset'
import { latentRef } from '@latentbase/shared/contract/latents'
import {
  addSharedWeights,
  collectShared,
  rankSimilar,
  sharedLatents,
  sharesOf,
  sqrtIdfWeights,
  topSimilar,
  type SimilarRanking
} from '@latentbase/shared/analysis/similar'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import { readByDocument } from '@latentbase/shared/store/latent-shards/read-by-document'
import { readByLatent } from '@latentbase/shared/store/latent-shards/read-by-latent'
import { sidecarDocumentSums } from '@latentbase/shared/store/latent-shards/slice-counts'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { BoundedCache } from '@latentbase/shared/util/bounded-cache'
import { ApiError } from '../problem.ts'
import type { AnalysisContext } from './context.ts'
import { loadLabelInfo } from './latent-page-service.ts'
import { readPeaks } from './latent-peaks.ts'
import { documentText } from '@latentbase/shared/analysis/search'
import { encoderNotHeld, loadReadyDataset, type ReadyDataset } from './ready-dataset.ts'
import { inRows } from '@latentbase/shared/analysis/slice'
import { documentsOf, sliceDataset, type SlicedDataset } from './slice-service.ts'

const SNIPPET = 200
/** Rows of by-document entries read at once when a store has no sidecars to sum norms from. */
const NORM_CHUNK_DOCS = 20_000
/**
 * Entries (documents x latents) of the query's columns held at once. A query past it (a document with frequent
 * latents, in a large dataset) reads its columns in blocks of latents, summing the dot products block by block, and
 * reads them again for the results' shared latents: twice the reads, bounded memory. At 100k documents (a query of
 * ~4.6M entries) the peak JavaScript heap and buffers were +290-340 MB read whole and +22-57 MB in blocks of 1M,
 * at 125-134 against 198-210 ms (`npm run bench:search`): a Worker has 128 MB, the local server reads more at once.
 */
export const SIMILAR_BLOCK_ENTRIES = 1_000_000
/** The local server's budget (LATENTBASE_SIMILAR_BLOCK_ENTRIES): a machine's memory, not a Worker's. */
export const LOCAL_SIMILAR_BLOCK_ENTRIES = 8_000_000

/** The query's latents (ascending) in blocks whose documents add up to at most `budget` (a larger latent alone). */
export function latentBlocks(latents: readonly number[], docCount: Int32Array, budget: number): number[][] {
  const blocks: number[][] = []
  let block: number[] = []
  let entries = 0
  for (const l of latents) {
    if (block.length && entries + docCount[l] > budget) {
      blocks.push(block)
      block = []
      entries = 0
    }
    block.push(l)
    entries += docCount[l]
  }
  if (block.length || !blocks.length) blocks.push(block)
  return blocks
}

/**
 * Every document's squared norm under the weights, per dataset version: one pass over all its entries, which a
 * dataset's first similarity query pays and the next ones (each a few latents' columns) do not. 8 bytes a document.
 */
const normCaches = new WeakMap<ObjectStore, BoundedCache<Float64Array>>()

async function squaredNorms(ctx: AnalysisContext, ds: ReadyDataset, w2: Float64Array): Promise<Float64Array> {
  const { manifest, prefix } = ds
  let cache = normCaches.get(ctx.objects)
  if (!cache) normCaches.set(ctx.objects, (cache = new BoundedCache(64 << 20, 64)))
  const key = [prefix, ds.record.createdAt, manifest.documents.count].join('\u0000')
  const nDocs = manifest.documents.count
  return cache.get(
    key,
    async () => {
      const fromSidecars = await sidecarDocumentSums(ctx.objects, prefix, manifest.latents.byLatent, w2, nDocs)
      if (fromSidecars) return fromSidecars
      const sums = new Float64Array(nDocs)
      for (let start = 0; start < nDocs; start += NORM_CHUNK_DOCS) {
        const end = Math.min(nDocs, start + NORM_CHUNK_DOCS)
        const csr = await readByDocument(ctx.objects, prefix, manifest.latents.byDocument, { start, end })
        for (let d = 0; d < csr.nDocs; d++)
          for (let p = csr.indptr[d]; p < csr.indptr[d + 1]; p++)
            if (csr.values[p] > 0) sums[csr.docStart + d] += w2[csr.latents[p]]
        ctx.signal?.throwIfAborted()
      }
      return sums
    },
    a => a.byteLength + key.length
  )
}

export async function similarDocuments(
  ctx: AnalysisContext,
  dataset: string,
  row: number,
  input: SimilarQuery,
  options: { blockEntries?: number } = {}
): Promise<SimilarDocuments> {
  const query = SimilarQuery.parse(input)
  const whole = await loadReadyDataset(ctx.datasets, ctx.tenant, dataset, 'dataset')
  const { manifest, prefix } = whole
  const nDocs = manifest.documents.count
  if (row >= nDocs) {
    throw new ApiError(
      404,
      'document-not-found',
      `dataset "${dataset}" has ${nDocs} documents (rows 0-${nDocs - 1}); row ${row} does not exist`
    )
  }
  // The dataset searched: this one, or another encoded alike (its documents, frequencies and norms).
  const target =
    query.in && query.in !== dataset ? await loadReadyDataset(ctx.datasets, ctx.tenant, query.in, 'in') : whole
  if (target.manifest.encoderFingerprint !== manifest.encoderFingerprint) {
    throw new ApiError(
      409,
      'encoder-mismatch',
      `datasets were encoded differently and cannot be compared: "${whole.record.id}" with ${manifest.encoder.id} (${manifest.encoderFingerprint.slice(0, 12)}, pooling ${manifest.pooling.method}) and "${target.record.id}" with ${target.manifest.encoder.id} (${target.manifest.encoderFingerprint.slice(0, 12)}, pooling ${target.manifest.pooling.method}); re-encode one of them with the other's encoder and pooling`
    )
  }
  const same = target === whole
  const [own, head] = await Promise.all([
    readByDocument(ctx.objects, prefix, manifest.latents.byDocument, [row, row], { nLatents: manifest.encoder.dSae }),
    readDocuments(ctx.objects, prefix, manifest.documents.files, [row], ['id'])
  ])
  const present: number[] = []
  for (let p = own.indptr[0]; p < own.indptr[1]; p++) if (own.values[p] > 0) present.push(own.latents[p])
  // The document itself is left out of its own dataset only.
  const like = await rankLike(ctx, target, present, same ? row : -1, query, options)
  const inSlice = like.ds.slice ? inRows(like.ds.slice.rows, [row])[0] : true
  return {
    dataset: whole.record.id,
    row,
    id: head.id[0] ?? String(row),
    in: target.record.id,
    ...(like.ds.slice ? { where: like.ds.slice.text } : {}),
    encoder: manifest.encoder.id,
    similarity: 'cosine-sqrt-idf',
    latents: like.latents,
    candidates: documentsOf(like.ds) - (same && inSlice ? 1 : 0),
    results: like.results
  }
}

/** GET /datasets/{id}/similar?text=: documents like a text, encoded as the dataset's documents were. */
export async function similarToText(
  ctx: AnalysisContext,
  dataset: string,
  input: SimilarTextQuery | Record<string, unknown>,
  options: { blockEntries?: number } = {}
): Promise<SimilarToText> {
  const query = SimilarTextQuery.parse(input)
  const target = await loadReadyDataset(ctx.datasets, ctx.tenant, dataset, 'dataset')
  const present = ctx.textEncoder
    ? await ctx.textEncoder({ manifest: target.manifest, poolRoles: poolRolesOf(target.record) }, query.text)
    : null
  if (!present)
    throw encoderNotHeld(
      target,
      'Documents like a text',
      "Search by words (GET /search) instead, or ask for documents like one of the dataset's (GET /datasets/{id}/documents/{row}/similar)."
    )
  const like = await rankLike(ctx, target, Array.from(present), -1, query, options)
  return {
    dataset: target.record.id,
    text: query.text,
    ...(like.ds.slice ? { where: like.ds.slice.text } : {}),
    encoder: target.manifest.encoder.id,
    similarity: 'cosine-sqrt-idf',
    latents: like.latents,
    candidates: documentsOf(like.ds),
    results: like.results
  }
}

/**
 * The documents of `target` (or of its slice `query.where`) closest to a query given by its present latents, each
 * with its snippet and the latents that make most of the likeness; `excludeRow` is left out (the query document).
 */
export async function rankLike(
  ctx: AnalysisContext,
  target: ReadyDataset,
  present: number[],
  excludeRow: number,
  query: { limit: number; shared: number; where?: SimilarQuery['where'] },
  options: { blockEntries?: number }
): Promise<{ ds: SlicedDataset; latents: number; results: SimilarDocument[] }> {
  const { manifest } = target
  const nLatents = manifest.encoder.dSae
  const nTarget = manifest.documents.count
  const [ds, stats, info] = await Promise.all([
    sliceDataset(ctx.objects, target, query.where, 'where'),
    readLatentStats(ctx.objects, target.prefix + manifest.stats.key, ['doc_count']),
    loadLabelInfo(ctx.encoders, manifest.encoder.id, nLatents, {
      objects: ctx.objects,
      tenant: ctx.tenant,
      fingerprint: manifest.encoderFingerprint
    })
  ])
  const weights = sqrtIdfWeights(stats.docCount, nTarget)
  const w2 = Float64Array.from(weights, w => w * w)
  const queryLatents = present.filter(l => weights[l] > 0).sort((a, b) => a - b)
  const readColumns = (latents: number[]) =>
    readByLatent(
      ctx.objects,
      target.prefix,
      manifest.latents.byLatent,
      latents,
      { nDocs: nTarget, nLatents },
      { positions: false }
    )
  const blocks = latentBlocks(queryLatents, stats.docCount, options.blockEntries ?? SIMILAR_BLOCK_ENTRIES)
  const [norms, firstColumns] = await Promise.all([squaredNorms(ctx, target, w2), readColumns(blocks[0])])
  ctx.signal?.throwIfAborted()
  const sliceRows = ds.slice?.rows
  let candidate: ((d: number) => boolean) | undefined
  if (sliceRows) {
    const member = new Uint8Array(nTarget)
    for (let i = 0; i < sliceRows.length; i++) member[sliceRows[i]] = 1
    candidate = d => member[d] === 1
  }
  let ranking: SimilarRanking
  let shared: Array<Array<{ latent: number; share: number }>>
  if (blocks.length === 1) {
    ranking = rankSimilar(firstColumns, queryLatents, weights, norms, excludeRow, query.limit, candidate)
    shared = Array.from(ranking.rows, r => sharedLatents(firstColumns, queryLatents, weights, r, query.shared))
  } else {
    const dot = new Float64Array(nTarget)
    let queryNorm = addSharedWeights(firstColumns, blocks[0], weights, dot)
    for (const block of blocks.slice(1)) {
      queryNorm += addSharedWeights(await readColumns(block), block, weights, dot)
      ctx.signal?.throwIfAborted()
    }
    ranking = topSimilar(dot, queryNorm, norms, excludeRow, query.limit, candidate)
    const found = Array.from(ranking.rows, () => [] as Array<{ latent: number; weight: number }>)
    for (const block of blocks) {
      const columns = await readColumns(block)
      for (let i = 0; i < ranking.rows.length; i++) collectShared(columns, block, weights, ranking.rows[i], found[i])
      ctx.signal?.throwIfAborted()
    }
    shared = found.map(f => sharesOf(f, query.shared))
  }
  const unlabelled = [...new Set(shared.flat().map(s => s.latent))].filter(l => !info.labels[l])
  const [docs, peaks] = await Promise.all([
    readDocuments(ctx.objects, target.prefix, manifest.documents.files, ranking.rows, ['id', 'text', 'messages']),
    readPeaks(ctx.objects, target, unlabelled)
  ])
  const at = new Map<number, number>()
  for (let i = 0; i < docs.row.length; i++) at.set(docs.row[i], i)
  const snippetOf = (i: number | undefined) => {
    if (i === undefined) return ''
    const text = documentText(docs.text[i], docs.messages[i])
    return text.length > SNIPPET ? `${text.slice(0, SNIPPET)}…` : text
  }
  return {
    ds,
    latents: queryLatents.length,
    results: Array.from(ranking.rows, (r, i) => ({
      row: r,
      id: docs.id[at.get(r)!] ?? String(r),
      score: Math.round(ranking.scores[i] * 1e4) / 1e4,
      snippet: snippetOf(at.get(r)),
      shared: shared[i].map(s => {
        const ref = latentRef(
          info.labels,
          info.sources,
          s.latent,
          { dataset: target.record.id, share: Math.round(s.share * 1e4) / 1e4 },
          info
        )
        return info.labels[s.latent] ? ref : { ...ref, peak: peaks.get(s.latent) ?? null }
      })
    }))
  }
}

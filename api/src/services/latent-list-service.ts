/** @module GET /latents?dataset=: a dataset's (or slice's) latents, most frequent first or ranked by label similarity to a text, page by page. */
import {
  LATENT_LIST_MATCHES,
  LatentListQuery,
  latentRef,
  type LatentList,
  type LatentListItem
} from '@latentbase/shared/contract/latents'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import { sidecarLatentStats } from '@latentbase/shared/store/latent-shards/slice-counts'
import { readByDocument } from '@latentbase/shared/store/latent-shards/read-by-document'
import { valueStatsOfRows } from '@latentbase/shared/analysis/slice'
import { ApiError } from '../problem.ts'
import type { AnalysisContext } from './context.ts'
import { labelCache, labelMatcher } from './label-match.ts'
import { loadLabelInfo } from './latent-page-service.ts'
import { loadReadyDataset } from './ready-dataset.ts'
import { readPeaks } from './latent-peaks.ts'
import { documentsOf, sliceDataset, type SlicedDataset } from './slice-service.ts'

type ListStats = { docCount: Int32Array; sum: ArrayLike<number>; max: ArrayLike<number> }

/**
 * Documents, sums and maxima per latent: three columns of the statistics file for a whole dataset (never the
 * histograms or top documents); for a slice, one pass over the by-latent sidecars restricted to its rows, else a read
 * of the by-document shards over the rows' span.
 */
async function listStats(ctx: AnalysisContext, ds: SlicedDataset): Promise<ListStats> {
  const { manifest, prefix, slice } = ds
  if (!slice) return readLatentStats(ctx.objects, prefix + manifest.stats.key, ['doc_count', 'sum', 'max'])
  const nLatents = manifest.encoder.dSae
  const rows = slice.rows
  if (!rows.length)
    return { docCount: new Int32Array(nLatents), sum: new Float64Array(nLatents), max: new Float32Array(nLatents) }
  const fromSidecars = await sidecarLatentStats(
    ctx.objects,
    prefix,
    manifest.latents.byLatent,
    rows,
    { nDocs: manifest.documents.count, nLatents },
    { values: true }
  )
  if (fromSidecars?.sum && fromSidecars.max)
    return { docCount: fromSidecars.docCount, sum: fromSidecars.sum, max: fromSidecars.max }
  const csr = await readByDocument(
    ctx.objects,
    prefix,
    manifest.latents.byDocument,
    { start: rows[0], end: rows[rows.length - 1] + 1 },
    { nLatents }
  )
  return valueStatsOfRows(csr, rows)
}

export async function listLatents(ctx: AnalysisContext, input: LatentListQuery): Promise<LatentList> {
  const query = LatentListQuery.parse(input)
  const whole = await loadReadyDataset(ctx.datasets, ctx.tenant, query.dataset, 'dataset')
  const ds = await sliceDataset(ctx.objects, whole, query.where, 'where')
  const { manifest } = ds
  const nLatents = manifest.encoder.dSae
  const n = documentsOf(ds)
  const [stats, wholeStats, info] = await Promise.all([
    listStats(ctx, ds),
    // A slice's NPMI needs each latent's documents in the whole dataset.
    ds.slice ? readLatentStats(ctx.objects, ds.prefix + manifest.stats.key, ['doc_count']) : null,
    loadLabelInfo(ctx.encoders, manifest.encoder.id, nLatents, {
      objects: ctx.objects,
      tenant: ctx.tenant,
      fingerprint: manifest.encoderFingerprint
    })
  ])
  // NPMI of each latent with the slice, over the whole dataset's documents (a latent present in the slice has c > 0).
  const total = manifest.documents.count
  const npmi =
    ds.slice && wholeStats
      ? (l: number) => {
          const joint = stats.docCount[l] / total
          if (joint >= 1) return 1
          return Math.log(joint / ((n / total) * (wholeStats.docCount[l] / total))) / -Math.log(joint)
        }
      : null
  let order: Int32Array
  let similarity: Float32Array | null = null
  if (query.sort === 'npmi' && !ds.slice)
    throw new ApiError(
      400,
      'invalid-request',
      'sort=npmi ranks latents by how tied they are to a slice of the dataset: give where (e.g. where=latent 12 for the latents that fire with latent 12)'
    )
  if (query.q && query.sort !== 'frequent')
    throw new ApiError(
      400,
      'invalid-request',
      `sort (${query.sort}) orders a list without q; q ranks latents by how close their labels are to it: give one of them`
    )
  if (query.q) {
    if (!info.labels.some(l => l)) {
      throw new ApiError(
        422,
        'no-labels',
        `encoder ${manifest.encoder.id} has no latent labels, so q cannot rank latents: list without q, or label its latents first (POST /encoders/${manifest.encoder.id}/relabel)`
      )
    }
    let top: { latents: Int32Array; similarities: Float32Array }
    try {
      const embeddings = await labelMatcher(labelCache(ctx.objects), manifest.encoderFingerprint, ctx.embedder, info)
      top = embeddings.top(await ctx.embedder.embed([query.q]), LATENT_LIST_MATCHES)
    } catch (err) {
      throw new ApiError(
        503,
        'embeddings-unavailable',
        `ranking by q needs the embedder ${ctx.embedder.id}, which failed: ${(err as Error).message}; list without q`
      )
    }
    // Latents that never fire in this dataset (or slice) have nothing to show here.
    const keep: number[] = []
    for (let i = 0; i < top.latents.length; i++) if (stats.docCount[top.latents[i]] > 0) keep.push(i)
    order = Int32Array.from(keep, i => top.latents[i])
    similarity = Float32Array.from(keep, i => top.similarities[i])
  } else {
    let present = 0
    for (let l = 0; l < nLatents; l++) if (stats.docCount[l] > 0) present++
    order = new Int32Array(present)
    for (let l = 0, at = 0; l < nLatents; l++) if (stats.docCount[l] > 0) order[at++] = l
    const { docCount, sum, max } = stats
    const mean = (l: number) => sum[l] / docCount[l]
    const npmiOf = npmi ?? (() => 0)
    const by: Record<(typeof query)['sort'], (a: number, b: number) => number> = {
      frequent: (a, b) => docCount[b] - docCount[a],
      rare: (a, b) => docCount[a] - docCount[b],
      max: (a, b) => max[b] - max[a],
      mean: (a, b) => mean(b) - mean(a),
      npmi: (a, b) => npmiOf(b) - npmiOf(a)
    }
    const compare = by[query.sort]
    order.sort((a, b) => compare(a, b) || a - b)
  }
  const page = order.subarray(query.offset, query.offset + query.limit)
  // An unlabelled latent is shown by what it peaks on in this dataset's top examples, as in a diff.
  const peaks = await readPeaks(
    ctx.objects,
    ds,
    Array.from(page).filter(l => !info.labels[l])
  )
  const latents: LatentListItem[] = Array.from(page, (latent, i) => {
    const documents = stats.docCount[latent]
    const ref = latentRef(
      info.labels,
      info.sources,
      latent,
      {
        dataset: ds.record.id,
        frequency: n ? documents / n : 0,
        documents,
        mean: documents ? stats.sum[latent] / documents : null,
        max: stats.max[latent],
        similarity: similarity ? Math.round(similarity[query.offset + i] * 1e4) / 1e4 : null,
        ...(npmi ? { npmi: Math.round(npmi(latent) * 1e4) / 1e4 } : {})
      },
      info
    )
    return info.labels[latent] ? ref : { ...ref, peak: peaks.get(latent) ?? null }
  })
  return {
    dataset: ds.record.id,
    ...(ds.slice ? { where: ds.slice.text } : {}),
    encoder: manifest.encoder.id,
    documents: n,
    ...(query.q ? { q: query.q } : { sort: query.sort }),
    embedder: query.q ? ctx.embedder.id : null,
    total: order.length,
    offset: query.offset,
    limit: query.limit,
    latents
  }
}

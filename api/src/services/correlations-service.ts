/**
 * @module Correlations of a dataset: reads the by-document shards, counts co-occurring latent pairs (pure, in
 * shared/analysis/cooccurrence), then drops pairs whose labels say the same thing. No HTTP here: the route and an
 * analysis-job consumer call the same function.
 */
import type { CorrelationPair, CorrelationsQuery, CorrelationsResult } from '@latentbase/shared/contract/correlations'
import { latentRef } from '@latentbase/shared/contract/latents'
import { withPeaks } from './latent-peaks.ts'
import {
  CooccurrenceCounter,
  presence,
  type CooccurrenceOptions,
  type CooccurrenceResult
} from '@latentbase/shared/analysis/cooccurrence'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import { ApiError } from '../problem.ts'
import type { AnalysisContext } from './context.ts'
import { loadReadyDataset, readDocumentRange } from './ready-dataset.ts'
import { resultHead, sliceDataset } from './slice-service.ts'
import { accumulatePresenceAndTop, rowChunks, selectRows } from '@latentbase/shared/analysis/slice'
import { sidecarLatentStats } from '@latentbase/shared/store/latent-shards/slice-counts'
import { DEFAULT_TOP_K } from '@latentbase/shared/analysis/latent-stats'
import type { PooledCsr } from '@latentbase/shared/analysis/sparse'
import { loadLabelInfo } from './latent-page-service.ts'

export type Progress = (fraction: number, phase: string) => void

/** Latent entries per read of the by-document shards (~24 MB of columns in flight). */
export const SLICE_ENTRIES = 2_000_000

/** Embeddings of labels, computed once per distinct label text and only when asked for. */
class LabelEmbeddings {
  private readonly byText = new Map<string, Float32Array>()
  constructor(private readonly embedder: Embedder) {}

  async ensure(texts: Iterable<string>): Promise<void> {
    const missing = [...new Set(texts)].filter(t => !this.byText.has(t))
    if (!missing.length) return
    const flat = await this.embedder.embed(missing)
    // An embedder may learn its dimension from its first answer (dimensions 0 until then): trust the answer's shape.
    const dim = flat.length / missing.length
    if (!Number.isInteger(dim) || dim === 0 || (this.embedder.dimensions && dim !== this.embedder.dimensions)) {
      throw new Error(
        `embedder ${this.embedder.id} returned ${flat.length} numbers for ${missing.length} texts (dimension ${this.embedder.dimensions})`
      )
    }
    missing.forEach((t, i) => {
      this.byText.set(t, flat.subarray(i * dim, (i + 1) * dim))
    })
  }

  /** Cosine of two embedded labels (the embedder returns unit vectors, but normalizing here costs nothing). */
  cosine(x: string, y: string): number {
    if (x === y) return 1
    const a = this.byText.get(x)!
    const b = this.byText.get(y)!
    let dot = 0,
      na = 0,
      nb = 0
    for (let i = 0; i < a.length; i++) {
      dot += a[i] * b[i]
      na += a[i] * a[i]
      nb += b[i] * b[i]
    }
    return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0
  }
}

export interface CorrelationsOptions {
  /** Latent entries per read of the by-document shards (default SLICE_ENTRIES). */
  sliceEntries?: number
}

/** The documents a correlations query reads: the dataset (or its slice) and its by-document shards in chunks. */
export interface CorrelationsSource {
  ds: Awaited<ReturnType<typeof sliceDataset>>
  nLatents: number
  /** Documents analysed (the slice's rows, or the whole dataset). */
  nDocs: number
  /** Chunks of ~sliceEntries latent entries: [start, end) of the rows analysed. */
  chunks: Array<[number, number]>
  readChunk(chunk: [number, number]): Promise<PooledCsr>
}

/** Resolve the dataset and the slice of a query, and how its rows are read in chunks (reads no latent data). */
export async function openCorrelationsSource(
  ctx: AnalysisContext,
  query: CorrelationsQuery,
  options: CorrelationsOptions = {}
): Promise<CorrelationsSource> {
  if (query.minFrequency > query.maxFrequency) {
    throw new ApiError(
      400,
      'invalid-request',
      `minFrequency (${query.minFrequency}) is above maxFrequency (${query.maxFrequency})`
    )
  }
  const ds = await sliceDataset(
    ctx.objects,
    await loadReadyDataset(ctx.datasets, ctx.tenant, query.dataset, 'dataset'),
    query.where,
    'where'
  )
  const { manifest } = ds
  const nLatents = manifest.encoder.dSae
  const rows = ds.slice?.rows
  const nDocs = rows ? rows.length : manifest.documents.count
  // The by-document shards are read in slices of ~SLICE_ENTRIES and only the considered latents are kept, so the
  // whole CSR (12 bytes per entry, plus the read's own copies) is never held at once.
  const perDoc = manifest.documents.count ? Math.max(1, manifest.latents.nnz / manifest.documents.count) : 1
  const slice = Math.max(1, Math.floor((options.sliceEntries ?? SLICE_ENTRIES) / perDoc))
  const readRange = (start: number, end: number) => readDocumentRange(ctx.objects, ds, start, end)
  // Chunks of documents to read: [start, end) of the rows analysed (dataset rows, or indexes into a slice's rows).
  const chunks: Array<[number, number]> = rows ? rowChunks(rows, slice) : []
  if (!rows) for (let start = 0; start < nDocs; start += slice) chunks.push([start, Math.min(nDocs, start + slice)])
  const readChunk = async ([i, j]: [number, number]): Promise<PooledCsr> => {
    if (!rows) return readRange(i, j)
    const part = rows.subarray(i, j)
    return selectRows(await readRange(part[0], part[part.length - 1] + 1), part)
  }
  return { ds, nLatents, nDocs, chunks, readChunk }
}

/** Presence per latent under the query's thresholds: what sizes the counting and scores NPMI. */
export interface CorrelationsCounts {
  docCount: Int32Array
  /** Per-latent presence thresholds (minActivation > 0), else undefined. */
  minValue?: Float32Array
}

/**
 * Document counts of the latents: the statistics file, or a pass over the documents for a slice or a presence
 * threshold (the statistics count value > 0 over the whole dataset).
 */
export async function correlationsCounts(
  ctx: AnalysisContext,
  query: CorrelationsQuery,
  src: CorrelationsSource,
  report: Progress
): Promise<CorrelationsCounts> {
  const { ds, nLatents, chunks, readChunk } = src
  const { manifest, prefix } = ds
  const passes = query.minActivation > 0 ? 2 : 1
  let stats: { nLatents: number; docCount: Int32Array; topValues: Float32Array; topK: number }
  // A pass over the by-latent sidecars (raw arrays, no decoding) where the store has them, else over the chunks.
  const shape = { nDocs: manifest.documents.count, nLatents }
  const fromSidecars = (options: { topK?: number; minValue?: Float32Array }) =>
    sidecarLatentStats(ctx.objects, prefix, manifest.latents.byLatent, ds.slice?.rows ?? null, shape, options)
  if (ds.slice) {
    // A slice's document counts and top values (what the stats file holds for a whole dataset) take one more pass.
    const read = await fromSidecars({ topK: DEFAULT_TOP_K })
    stats = {
      nLatents,
      docCount: read?.docCount ?? new Int32Array(nLatents),
      topValues: read?.topValues ?? new Float32Array(nLatents * DEFAULT_TOP_K),
      topK: DEFAULT_TOP_K
    }
    for (const chunk of read ? [] : chunks) {
      accumulatePresenceAndTop(await readChunk(chunk), stats.docCount, stats.topValues, stats.topK)
      ctx.signal?.throwIfAborted()
    }
  } else {
    stats = await readLatentStats(
      ctx.objects,
      prefix + manifest.stats.key,
      query.minActivation > 0 ? ['doc_count', 'top_values'] : ['doc_count']
    )
  }
  if (stats.nLatents !== nLatents)
    throw new Error(
      `the latent statistics of "${ds.record.id}" cover ${stats.nLatents} latents, its encoder has ${nLatents}`
    )
  if (!(query.minActivation > 0)) return { docCount: stats.docCount }
  // With a presence threshold the statistics' document counts (value > 0) are only upper bounds: one more pass
  // counts presence under the thresholds, so the frequency filters and NPMI see the same binarization.
  // The reference is the latent's k-th strongest document (k = the stored top-k, 16), not its max: one outlier
  // document must not raise the bar for all the others.
  const minValue = new Float32Array(nLatents)
  for (let l = 0; l < nLatents; l++) {
    const k = Math.min(stats.topK, stats.docCount[l])
    if (k > 0) minValue[l] = query.minActivation * stats.topValues[l * stats.topK + k - 1]
  }
  const counted = await fromSidecars({ minValue })
  if (counted) {
    report(0.3 / passes, 'reading')
    return { docCount: counted.docCount, minValue }
  }
  const docCount = new Int32Array(nLatents)
  for (let c = 0; c < chunks.length; c++) {
    presence(await readChunk(chunks[c]), minValue, docCount)
    ctx.signal?.throwIfAborted()
    report((0.3 / passes) * ((c + 1) / chunks.length), 'reading')
  }
  return { docCount, minValue }
}

/** The counting options of a query (shared by the single counter and the blocks, so both score alike). */
export function cooccurrenceOptions(
  query: CorrelationsQuery,
  minValue: Float32Array | undefined,
  progress?: (fraction: number) => void
): CooccurrenceOptions {
  return {
    minValue,
    minFrequency: query.minFrequency,
    maxFrequency: query.maxFrequency,
    minCount: query.minCount,
    minNpmi: query.minNpmi,
    dropAdjacent: query.dropAdjacent,
    adjacentShare: query.adjacentShare,
    adjacentTokens: query.adjacentTokens,
    dropPositional: query.dropPositional,
    // Candidates well beyond the limit, so that dropping pairs for similar labels still leaves `limit` of them.
    maxCandidates: Math.max(200_000, query.limit * 50),
    progress
  }
}

export async function computeCorrelations(
  ctx: AnalysisContext,
  query: CorrelationsQuery,
  progress?: Progress,
  options: CorrelationsOptions = {}
): Promise<CorrelationsResult> {
  const started = performance.now()
  const report = progress ?? ctx.progress ?? (() => {})
  const src = await openCorrelationsSource(ctx, query, options)
  report(0, 'reading')
  return countAndAnswer(ctx, query, src, await correlationsCounts(ctx, query, src, report), report, started)
}

/** One process: every considered entry in one CooccurrenceCounter, then the answer. */
export async function countAndAnswer(
  ctx: AnalysisContext,
  query: CorrelationsQuery,
  src: CorrelationsSource,
  { docCount, minValue }: CorrelationsCounts,
  report: Progress,
  started: number
): Promise<CorrelationsResult> {
  const passes = minValue ? 2 : 1
  const counter = new CooccurrenceCounter(
    docCount,
    src.nDocs,
    cooccurrenceOptions(query, minValue, f => report(0.3 + 0.6 * f, 'counting'))
  )
  for (let c = 0; c < src.chunks.length; c++) {
    counter.add(await src.readChunk(src.chunks[c]))
    ctx.signal?.throwIfAborted()
    const done = (c + 1) / src.chunks.length
    report(passes === 2 ? 0.15 + 0.15 * done : 0.3 * done, 'reading')
  }
  const r = counter.finish()
  ctx.signal?.throwIfAborted()
  return answerCorrelations(ctx, query, src.ds, r, report, started)
}

/** The answer from counted pairs: label similarity filtering and the response shape (one process or merged blocks). */
export async function answerCorrelations(
  ctx: AnalysisContext,
  query: CorrelationsQuery,
  ds: CorrelationsSource['ds'],
  r: CooccurrenceResult,
  report: Progress,
  started: number
): Promise<CorrelationsResult> {
  report(0.9, 'labels')
  const { manifest } = ds
  const nLatents = manifest.encoder.dSae
  const labels = await loadLabelInfo(ctx.encoders, manifest.encoder.id, nLatents, {
    objects: ctx.objects,
    tenant: ctx.tenant,
    fingerprint: manifest.encoderFingerprint
  })
  const n = r.documents
  // A slice's latent links open the latent's page of the same slice.
  const sliceParam = ds.slice ? `&where=${encodeURIComponent(ds.slice.text)}` : ''
  const side = (latent: number) => {
    const ref = latentRef(
      labels.labels,
      labels.sources,
      latent,
      {
        dataset: ds.record.id,
        frequency: n ? r.docCount[latent] / n : 0,
        documents: r.docCount[latent]
      },
      labels
    )
    return sliceParam && 'href' in ref ? { ...ref, href: `${ref.href}${sliceParam}` } : ref
  }
  const filterLabels = query.maxLabelSimilarity < 1
  const embeddings = filterLabels ? new LabelEmbeddings(ctx.embedder) : null
  const pairs: CorrelationPair[] = []
  let similarLabels = 0
  // Walk the sorted candidates in windows, embedding only the labels of the pairs about to be examined.
  const window = Math.max(64, query.limit * 2)
  for (let start = 0; start < r.pairs.length && pairs.length < query.limit; start += window) {
    const end = Math.min(r.pairs.length, start + window)
    if (embeddings) {
      const texts: string[] = []
      for (let i = start; i < end; i++) {
        const la = labels.labels[r.pairs.a[i]],
          lb = labels.labels[r.pairs.b[i]]
        if (la && lb) texts.push(la, lb)
      }
      await embeddings.ensure(texts)
    }
    for (let i = start; i < end && pairs.length < query.limit; i++) {
      const a = r.pairs.a[i],
        b = r.pairs.b[i],
        count = r.pairs.count[i]
      const la = labels.labels[a],
        lb = labels.labels[b]
      const similarity = embeddings && la && lb ? embeddings.cosine(la, lb) : null
      if (similarity !== null && similarity > query.maxLabelSimilarity) {
        similarLabels++
        continue
      }
      pairs.push({
        a: side(a),
        b: side(b),
        npmi: r.pairs.npmi[i],
        count,
        pAGivenB: count / r.docCount[b],
        pBGivenA: count / r.docCount[a],
        adjacentShare: r.pairs.adjacent[i] / count,
        labelSimilarity: similarity
      })
    }
  }
  // Latents without a label are described by what they peak on (one read of the examples for all of them).
  const sides = await withPeaks(
    ctx.objects,
    ds,
    pairs.flatMap(p => [p.a, p.b])
  )
  pairs.forEach((p, i) => {
    p.a = sides[2 * i]
    p.b = sides[2 * i + 1]
  })
  report(1, 'done')
  return {
    ...resultHead(ds, n),
    latentsConsidered: r.considered.length,
    pairsCounted: r.pairsCounted,
    dropped: { positional: r.droppedPositional, adjacent: r.droppedAdjacent, similarLabels },
    truncated: r.truncated,
    embedder: embeddings ? ctx.embedder.id : null,
    seconds: (performance.now() - started) / 1000,
    pairs
  }
}

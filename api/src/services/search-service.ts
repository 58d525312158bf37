/** @module Property retrieval over a ready dataset: reads only what a method needs, caches per dataset, runs the pure functions. */
import type { SearchHit, SearchQuery, SearchResult, SearchLatent } from '@latentbase/shared/contract/search'
import { readByLatent, readPositionsAt } from '@latentbase/shared/store/latent-shards/read-by-latent'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { openShard } from '@latentbase/shared/store/parquet/read'
import type { ShardFile } from '@latentbase/shared/contract/manifest'
import { quantile } from '@latentbase/shared/analysis/latent-stats'
import { readLatentP90, readLatentStats } from '@latentbase/shared/store/stats/read'
import { latentStatsOfRows } from '@latentbase/shared/analysis/slice'
import { layout } from '@latentbase/shared/store/layout'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import { Bm25IndexBuilder, bm25Scores, bm25Tokens, type Bm25Index } from '@latentbase/shared/analysis/bm25'
import { bm25SidecarKey, openBm25Sidecar, sidecarBm25Scores } from '@latentbase/shared/store/documents/bm25-sidecar'
import { BoundedCache } from '@latentbase/shared/util/bounded-cache'
import {
  rankWeights,
  maximalMarginalRelevance,
  p90Of,
  saeScores,
  topRows,
  reciprocalRankFusion,
  snippet,
  estimateCharOffset,
  firstLatentEntry,
  scoreParts,
  RRF_K
} from '@latentbase/shared/analysis/search'
import type { PooledCsc } from '@latentbase/shared/analysis/sparse'
import {
  HIT_LATENTS,
  RERANK_TOP,
  DIVERSITY_LAMBDA,
  LABEL_CANDIDATES,
  MIN_RANK_WEIGHT
} from '@latentbase/shared/contract/search'
import type { FailedItem } from '@latentbase/shared/contract/llm'
import { scoreAt } from '@latentbase/shared/contract/latents'
import { ApiError } from '../problem.ts'
import { loadLabelInfo } from './latent-page-service.ts'
import { labelCache, labelMatcher, type LabelMatcher } from './label-match.ts'
import {
  expandQuery,
  requireLlm,
  rerankOrder,
  RERANK_CHARS,
  expansionMessages,
  EXPANSION_ANSWER_TOKENS,
  rerankMessages,
  rerankAnswerTokens,
  SelectAnswer,
  selectMessages,
  selectAnswerTokens,
  type Expansion
} from './llm-helpers.ts'
import { failedItem, type LlmClient } from '@latentbase/shared/llm/client'
import type { UsageLedger } from '@latentbase/shared/llm/cost'
import type { DryRunEstimate } from '@latentbase/shared/contract/llm'
import { estimatePlan, type PlannedCall } from '@latentbase/shared/llm/cost'
import { clip } from './hypotheses-service.ts'
import type { AnalysisContext } from './context.ts'
import { withPeaks } from './latent-peaks.ts'
import { loadReadyDataset, type ReadyDataset } from './ready-dataset.ts'
import { sliceDataset, type SlicedDataset } from './slice-service.ts'

/** Documents taken from each ranking into the fusion: deep enough that the fused top `limit` is stable. */
export const FUSION_DEPTH = 1000
/** BM25 indexes kept in memory, per object store, by estimated heap bytes (an edge function has 128 MB). */
export const BM25_CACHE_BYTES = 48 << 20

export interface SearchTuning {
  /** Cap on a latent's normalized activation (value / p90); Infinity is the paper's uncapped sum. */
  cap?: number
  /** Rank weight under which a latent chosen by label is not read (default MIN_RANK_WEIGHT; 0 reads all k). */
  minWeight?: number
  /** MMR lambda of the latent order (default DIVERSITY_LAMBDA; 1 keeps the plain similarity order). */
  diversity?: number
  /** How deep the returned ranking goes (default: the query's limit). The evaluation asks for every document. */
  depth?: number
  /** An LLM query expansion: keywords join the BM25 query, phrases pick latents beside q. */
  expansion?: Expansion | null
  /** LLM selection of the latents among the closest candidates; with `plan`, the call is planned (dry run), not made. */
  select?: { llm: LlmClient; ledger?: UsageLedger; failed: FailedItem[]; plan?: PlannedCall[]; selected?: number }
}

export interface Ranked {
  dataset: SlicedDataset
  /** Rows, best first. */
  ranking: Int32Array
  /** Score of each ranked row (same order). */
  scores: Float32Array
  matched: number
  latents: SearchLatent[]
  embedder: string | null
  k: number
  /**
   * The chosen latents' columns (sae and hybrid), to place snippets at a latent's max; read without positions where
   * the store allows (`fileRows`: `positions` holds by-latent file rows, which hitPositions reads positions at).
   */
  sae: {
    csc: PooledCsc & { fileRows?: boolean }
    latents: number[]
    /** The chosen latents' rank weights and p90 normalizers, in `latents`' order (what saeScores summed). */
    weights: Float32Array
    p90: Float32Array
    cap: number
  } | null
}

// ---------------------------------------------------------------------------------------------------------------
// Caches, per object store (a test's MemoryObjectStore never sees another test's entries).

/** Query -> top latents, per label-embedding set: scanning 65k labels costs ~35 ms, and queries repeat. */
const QUERY_CACHE_ENTRIES = 256
const queryCaches = new WeakMap<LabelMatcher, Map<string, { latents: Int32Array; similarities: Float32Array }>>()
/** Query text -> its embedding, per embedder: a repeated query is not embedded (with an API embedder, paid for) again. */
const queryVectors = new WeakMap<Embedder, Map<string, Promise<Float32Array>>>()

/**
 * The embedding of a query text, started as soon as the text is known: it does not depend on the label embeddings,
 * so the two are on their way at once (two round trips to an API embedder, or two reads on a cold start, overlap).
 * The promise is marked handled here; the caller awaits it and gets its error.
 */
function embedQuery(embedder: Embedder, text: string): Promise<Float32Array> {
  let cache = queryVectors.get(embedder)
  if (!cache) queryVectors.set(embedder, (cache = new Map()))
  let hit = cache.get(text)
  if (hit) {
    cache.delete(text)
    cache.set(text, hit)
    return hit
  }
  hit = embedder.embed([text])
  hit.catch(() => cache.delete(text))
  cache.set(text, hit)
  if (cache.size > QUERY_CACHE_ENTRIES) cache.delete(cache.keys().next().value!)
  return hit
}

async function latentsForQuery(embeddings: LabelMatcher, vector: Promise<Float32Array>, text: string, k: number) {
  let cache = queryCaches.get(embeddings)
  if (!cache) queryCaches.set(embeddings, (cache = new Map()))
  const key = `${k}\u0000${text}`
  const hit = cache.get(key)
  if (hit) {
    cache.delete(key)
    cache.set(key, hit)
    return hit
  }
  const top = embeddings.top(await vector, k)
  cache.set(key, top)
  if (cache.size > QUERY_CACHE_ENTRIES) cache.delete(cache.keys().next().value!)
  return top
}

/** Files whose footers a search prefetches at most: past this many (millions of documents), it opens them as it goes. */
const PREFETCH_FOOTER_FILES = 32

/** Starts opening the shards (footer and page-index region, cached per store); a failure surfaces where one is read. */
function prefetchFooters(objects: ObjectStore, prefix: string, files: ShardFile[]): void {
  if (files.length > PREFETCH_FOOTER_FILES) return
  for (const file of files) openShard(objects, prefix, file).catch(() => {})
}

const datasetKey = (d: ReadyDataset) =>
  `${d.prefix}\u0000${d.manifest.createdAt}\u0000${d.manifest.version ?? 1}\u0000${d.manifest.latents.nnz}`

const bm25Caches = new WeakMap<ObjectStore, BoundedCache<Bm25Index>>()
const p90Caches = new WeakMap<ObjectStore, BoundedCache<Float32Array>>()

function bm25Index(objects: ObjectStore, d: ReadyDataset): Promise<Bm25Index> {
  let cache = bm25Caches.get(objects)
  if (!cache) bm25Caches.set(objects, (cache = new BoundedCache(BM25_CACHE_BYTES, 16)))
  return cache.get(
    datasetKey(d),
    async () => {
      // One row group of text at a time (<= 4 MB by construction): the whole text column never sits in memory.
      const builder = new Bm25IndexBuilder()
      for (const file of d.manifest.documents.files) {
        for (const g of file.rowGroups) {
          if (g.rowCount === 0) continue
          const docs = await readDocuments(objects, d.prefix, [file], { start: g.first, end: g.last + 1 }, ['text'])
          for (let i = 0; i < docs.row.length; i++) builder.add(docs.row[i], docs.text[i])
        }
      }
      return builder.build(d.manifest.documents.count)
    },
    ix => ix.bytes
  )
}

/**
 * BM25 from the documents shards' sidecars (the query terms' postings only; over a slice, as an index of its texts
 * alone); null when a shard has none (written before them), and then the texts are indexed in memory (bm25Index,
 * bounded by BM25_CACHE_BYTES per process, or sliceBm25).
 */
async function storedBm25Scores(
  objects: ObjectStore,
  d: ReadyDataset,
  query: string,
  slice?: Int32Array
): Promise<Float32Array | null> {
  const files = d.manifest.documents.files
  if (!files.length || files.some(f => f.bm25Bytes === undefined)) return null
  try {
    const sidecars = await Promise.all(
      files.map(f => openBm25Sidecar(objects, d.prefix + bm25SidecarKey(f.key), f.bm25Bytes!))
    )
    return await sidecarBm25Scores(objects, sidecars, d.manifest.documents.count, query, slice)
  } catch (err) {
    // A missing or damaged sidecar: the texts themselves answer (slower, the same scores), said once per dataset.
    if (!warnedBm25.has(d.prefix)) {
      if (warnedBm25.size >= 1024) warnedBm25.clear()
      warnedBm25.add(d.prefix)
      console.warn(
        `search: BM25 sidecars of ${d.prefix} unreadable (${(err as Error).message}); indexing the texts instead`
      )
    }
    return null
  }
}

const warnedBm25 = new Set<string>()

/** p90 of every latent (4 bytes a latent), from the histogram column of the statistics file. */
function p90All(objects: ObjectStore, d: ReadyDataset): Promise<Float32Array> {
  let cache = p90Caches.get(objects)
  if (!cache) p90Caches.set(objects, (cache = new BoundedCache(16 << 20, 64)))
  return cache.get(
    datasetKey(d),
    async () => {
      // Written with the statistics since issue 13 (64 KB at 16k latents); older datasets: from the histograms.
      const stored = await readLatentP90(
        objects,
        d.prefix + (d.manifest.stats.p90Key ?? layout.latentP90()),
        d.manifest.encoder.dSae
      )
      if (stored) return stored
      const stats = await readLatentStats(objects, d.prefix + d.manifest.stats.key, ['histogram', 'max'])
      return p90Of(
        stats,
        Int32Array.from({ length: stats.nLatents }, (_, i) => i)
      )
    },
    p => p.byteLength
  )
}

// ---------------------------------------------------------------------------------------------------------------

function dedupe(latents: number[]): number[] {
  const seen = new Set<number>()
  return latents.filter(l => (seen.has(l) ? false : (seen.add(l), true)))
}

function scoresOf(ranking: Int32Array, scores: Float32Array): Float32Array {
  const out = new Float32Array(ranking.length)
  for (let i = 0; i < ranking.length; i++) out[i] = scores[ranking[i]]
  return out
}

function countPositive(scores: Float32Array): number {
  let n = 0
  for (let i = 0; i < scores.length; i++) if (scores[i] > 0) n++
  return n
}

/** Scores of the slice's rows only (others 0, so no ranking lists them); all scores without a slice. */
function onlyRows(scores: Float32Array, rows: Int32Array | undefined): Float32Array {
  if (!rows) return scores
  const out = new Float32Array(scores.length)
  for (const r of rows) out[r] = scores[r]
  return out
}

/**
 * BM25 over a slice: an index of the slice's texts alone (document frequencies and the mean length are the slice's,
 * as if it were its own dataset), built per request rather than cached; scores come back over dataset rows.
 */
async function sliceBm25(
  objects: ObjectStore,
  d: ReadyDataset,
  rows: Int32Array,
  query: string
): Promise<Float32Array> {
  const builder = new Bm25IndexBuilder()
  const out = new Float32Array(d.manifest.documents.count)
  if (!rows.length) return out
  const docs = await readDocuments(objects, d.prefix, d.manifest.documents.files, rows, ['text'])
  for (let i = 0; i < docs.row.length; i++) builder.add(i, docs.text[i])
  const local = bm25Scores(builder.build(docs.row.length), query)
  for (let i = 0; i < docs.row.length; i++) out[docs.row[i]] = local[i]
  return out
}

/** Validate a query against a dataset and rank its documents; no texts are read (except bm25's index). */
export async function rankDocuments(ctx: AnalysisContext, q: SearchQuery, tuning: SearchTuning = {}): Promise<Ranked> {
  if (!q.q && !q.latents?.length) {
    throw new ApiError(
      400,
      'invalid-request',
      'give q (the property to find, in words) or latents (a comma-separated list of latent ids)'
    )
  }
  if (q.method === 'bm25' && !q.q)
    throw new ApiError(400, 'invalid-request', 'method bm25 searches the text: it needs q')
  if (q.method === 'bm25' && q.latents?.length)
    throw new ApiError(400, 'invalid-request', 'latents apply to methods sae and hybrid, not bm25')
  if (q.method === 'hybrid' && !q.q)
    throw new ApiError(400, 'invalid-request', 'method hybrid fuses sae with bm25 over the text: it needs q')

  const d = await sliceDataset(
    ctx.objects,
    await loadReadyDataset(ctx.datasets, ctx.tenant, q.dataset, 'dataset'),
    q.where,
    'where'
  )
  const { manifest } = d
  // Footers the answer will need whatever latents are chosen, fetched while the query is matched to labels (a
  // fresh process's first search otherwise waits for them one step after another).
  prefetchFooters(ctx.objects, d.prefix, [
    ...(q.method === 'bm25' ? [] : manifest.latents.byLatent),
    ...manifest.documents.files
  ])
  const nDocs = manifest.documents.count
  const nLatents = manifest.encoder.dSae
  const sliceRows = d.slice?.rows
  const depth = Math.max(1, Math.min(tuning.depth ?? q.limit, sliceRows?.length || nDocs))
  const encoderId = manifest.encoder.id
  ctx.signal?.throwIfAborted()

  let sae: {
    scores: Float32Array
    latents: SearchLatent[]
    embedder: string | null
    k: number
    csc: PooledCsc & { fileRows?: boolean }
    chosen: number[]
  } | null = null
  if (q.method !== 'bm25') {
    ctx.progress?.(0.1, 'latents')
    const info = await loadLabelInfo(ctx.encoders, encoderId, nLatents, {
      objects: ctx.objects,
      tenant: ctx.tenant,
      fingerprint: manifest.encoderFingerprint
    })
    const labels = info.labels
    let chosen: number[]
    let llmPicked = false
    let similarities: (number | null)[]
    let embedder: string | null = null
    let k: number
    if (q.latents?.length) {
      const bad = q.latents.find(l => l >= nLatents)
      if (bad !== undefined)
        throw new ApiError(
          400,
          'invalid-request',
          `latent ${bad} does not exist: encoder ${encoderId} has latents 0-${nLatents - 1}`
        )
      chosen = dedupe(q.latents)
      similarities = chosen.map(() => null)
      k = chosen.length
    } else {
      if (!labels.some(l => l)) {
        throw new ApiError(
          422,
          'no-labels',
          `encoder ${encoderId} has no latent labels, so a query in words cannot pick latents: use method=bm25 or latents=..., or label its latents from a dataset first (POST /encoders/${encoderId}/relabel with { "dataset": "...", "labeler": "offline" } needs no LLM)`
        )
      }
      const fingerprint = ctx.encoders.get(encoderId)?.fingerprint ?? manifest.encoderFingerprint
      let top: { latents: Int32Array; similarities: Float32Array }
      const phrases = tuning.expansion?.phrases ?? []
      const vectors = [q.q!, ...phrases].map(text => embedQuery(ctx.embedder, text))
      try {
        const embeddings = await labelMatcher(labelCache(ctx.objects), fingerprint, ctx.embedder, info)
        const lambda = tuning.diversity ?? DIVERSITY_LAMBDA
        // The LLM selection sees the closest candidates as they are; otherwise they are taken in MMR order.
        const depth = tuning.select || lambda < 1 ? Math.max(q.k, LABEL_CANDIDATES) : q.k
        top = await latentsForQuery(embeddings, vectors[0], q.q!, depth)
        if (phrases.length)
          top = mergeTops(
            [top, ...(await Promise.all(phrases.map((p, i) => latentsForQuery(embeddings, vectors[i + 1], p, depth))))],
            depth
          )
        if (!tuning.select && lambda < 1) top = diverseTop(embeddings, top, q.k, lambda)
      } catch (err) {
        // The embeddings endpoint is a dependency the user can route around (bm25, latents=): say so, not a bare 500.
        throw new ApiError(
          503,
          'embeddings-unavailable',
          `label similarity needs the embedder ${ctx.embedder.id}, which failed: ${(err as Error).message}; method=bm25 or latents=... work without it`
        )
      }
      chosen = Array.from(top.latents)
      similarities = Array.from(top.similarities)
      if (tuning.select) {
        const picked = await selectLatents(
          tuning.select,
          q.q!,
          chosen.map(latent => ({ latent, label: labels[latent] ?? null })),
          q.k
        )
        const sim = new Map(chosen.map((l, i) => [l, similarities[i]]))
        // Without a usable answer, the closest labels stand (as without select).
        chosen = picked.length ? picked : chosen.slice(0, q.k)
        llmPicked = picked.length > 0
        similarities = chosen.map(l => sim.get(l) ?? null)
      }
      embedder = ctx.embedder.id
      k = q.k
    }
    ctx.signal?.throwIfAborted()
    let weights = rankWeights(chosen.length, k, q.temperature)
    if (embedder && !llmPicked) {
      // Latents chosen by label whose rank weight is negligible are not read (explicit latents, and those an LLM
      // selected, always are).
      const minWeight = tuning.minWeight ?? MIN_RANK_WEIGHT
      let n = 0
      while (n < weights.length && weights[n] >= minWeight) n++
      n = Math.max(1, n)
      chosen = chosen.slice(0, n)
      similarities = similarities.slice(0, n)
      weights = weights.slice(0, n)
    }
    const [csc, p90s] = await Promise.all([
      // Positions only place the hits' snippets: read for those alone, after ranking (hitPositions).
      readByLatent(ctx.objects, d.prefix, manifest.latents.byLatent, chosen, { nDocs, nLatents }, { positions: false }),
      sliceRows ? null : p90All(ctx.objects, d)
    ])
    // A slice normalizes by the p90 within the slice, from the chosen latents' columns already read.
    const p90 = p90s
      ? Float32Array.from(chosen, l => p90s[l])
      : Float32Array.from(chosen, l => {
          const v = quantile(
            latentStatsOfRows(
              csc.docs.subarray(csc.indptr[l], csc.indptr[l + 1]),
              csc.values.subarray(csc.indptr[l], csc.indptr[l + 1]),
              sliceRows!
            ),
            0,
            0.9
          )
          return Number.isFinite(v) && v > 0 ? v : 0
        })
    sae = {
      scores: onlyRows(saeScores(csc, chosen, weights, p90, tuning.cap ?? Infinity), sliceRows),
      latents: chosen.map((latent, i) => ({
        latent,
        label: labels[latent] ?? null,
        weight: weights[i],
        similarity: similarities[i],
        p90: p90[i],
        labelSource: info.sources[latent] ?? null,
        labelScore: scoreAt(info, latent)
      })),
      embedder,
      k,
      csc,
      chosen
    }
  }
  ctx.signal?.throwIfAborted()

  let bm25: Float32Array | null = null
  if (q.method !== 'sae') {
    ctx.progress?.(0.5, 'bm25')
    const keywords = tuning.expansion?.keywords ?? []
    const query = keywords.length ? `${q.q!} ${keywords.join(' ')}` : q.q!
    bm25 =
      (await storedBm25Scores(ctx.objects, d, query, sliceRows)) ??
      (sliceRows
        ? await sliceBm25(ctx.objects, d, sliceRows, query)
        : bm25Scores(await bm25Index(ctx.objects, d), query))
  }

  let scores: Float32Array
  let ranking: Int32Array
  if (q.method === 'hybrid') {
    const fused = reciprocalRankFusion(
      [topRows(sae!.scores, Math.max(FUSION_DEPTH, depth)), topRows(bm25!, Math.max(FUSION_DEPTH, depth))],
      nDocs,
      RRF_K
    )
    scores = fused
    ranking = topRows(fused, depth)
  } else {
    scores = q.method === 'sae' ? sae!.scores : bm25!
    ranking = topRows(scores, depth)
  }
  ctx.progress?.(1, 'done')
  return {
    dataset: d,
    ranking,
    scores: scoresOf(ranking, scores),
    matched: countPositive(scores),
    latents: sae?.latents ?? [],
    embedder: sae?.embedder ?? null,
    k: sae?.k ?? q.k,
    sae: sae
      ? {
          csc: sae.csc,
          latents: sae.chosen,
          weights: Float32Array.from(sae.latents, l => l.weight),
          p90: Float32Array.from(sae.latents, l => l.p90),
          cap: tuning.cap ?? Infinity
        }
      : null
  }
}

/** The LLM's choice among the candidates (ids it made up are dropped); [] when it kept none or failed (recorded), or in a dry run. */
async function selectLatents(
  select: NonNullable<SearchTuning['select']>,
  query: string,
  candidates: Array<{ latent: number; label: string | null }>,
  k: number
): Promise<number[]> {
  const messages = selectMessages(query, candidates, k)
  if (select.plan) {
    select.plan.push({ step: 'select', messages, expectedOutputTokens: selectAnswerTokens(k) })
    return []
  }
  let ids: number[]
  try {
    ids = (await select.llm.chatJson(SelectAnswer, { step: 'select', messages, temperature: 0 }, select.ledger!)).value
      .latents
  } catch (err) {
    select.failed.push(failedItem(err, 'select', 'the latent selection'))
    select.selected = 0
    return []
  }
  const allowed = new Set(candidates.map(c => c.latent))
  const picked = [...new Set(ids)].filter(l => allowed.has(l)).slice(0, k)
  select.selected = picked.length
  return picked
}

/** k latents of `top` in maximal-marginal-relevance order (memoized per candidate list, which the query cache keeps). */
const diverseCache = new WeakMap<Int32Array, Map<string, { latents: Int32Array; similarities: Float32Array }>>()
function diverseTop(
  matcher: LabelMatcher,
  top: { latents: Int32Array; similarities: Float32Array },
  k: number,
  lambda: number
) {
  let perTop = diverseCache.get(top.latents)
  if (!perTop) diverseCache.set(top.latents, (perTop = new Map()))
  const key = `${k}\u0000${lambda}`
  let out = perTop.get(key)
  if (!out) {
    const order = maximalMarginalRelevance(top.similarities, k, lambda, (i, j) =>
      matcher.cosine(top.latents[i], top.latents[j])
    )
    out = {
      latents: Int32Array.from(order, i => top.latents[i]),
      similarities: Float32Array.from(order, i => top.similarities[i])
    }
    perTop.set(key, out)
  }
  return out
}

/** Latents of several label-similarity queries: each latent at its best similarity, the k best overall. */
function mergeTops(
  tops: Array<{ latents: Int32Array; similarities: Float32Array }>,
  k: number
): { latents: Int32Array; similarities: Float32Array } {
  const best = new Map<number, number>()
  for (const t of tops)
    for (let i = 0; i < t.latents.length; i++) {
      const l = t.latents[i]
      if (!(best.get(l)! >= t.similarities[i])) best.set(l, t.similarities[i])
    }
  const order = [...best].sort((x, y) => y[1] - x[1] || x[0] - y[0]).slice(0, k)
  return { latents: Int32Array.from(order, e => e[0]), similarities: Float32Array.from(order, e => e[1]) }
}

async function topTexts(ctx: AnalysisContext, r: Ranked, top: Int32Array): Promise<string[]> {
  const texts = await readDocuments(ctx.objects, r.dataset.prefix, r.dataset.manifest.documents.files, top, ['text'])
  const at = new Map<number, string>()
  for (let i = 0; i < texts.row.length; i++) at.set(texts.row[i], clip(String(texts.text[i]), RERANK_CHARS))
  return Array.from(top, row => at.get(row) ?? '')
}

/**
 * dryRun=true with expand or rerank: the expansion call is exact; the rerank is planned on the unexpanded ranking's
 * top documents (an expansion can change which documents those are, rarely their number or size by much).
 */
/** The LLM option a query asks for, to name in a 503. */
export function llmOptionName(q: Pick<SearchQuery, 'expand' | 'select' | 'rerank'>): string {
  return q.expand ? 'expand=true' : q.select ? 'select=true' : 'rerank=true'
}

export async function estimateSearch(ctx: AnalysisContext, q: SearchQuery): Promise<DryRunEstimate> {
  const llm = requireLlm(ctx.llm, llmOptionName(q))
  if (!q.q)
    throw new ApiError(400, 'invalid-request', 'expand, select and rerank work on a query in words: they need q')
  const plan: PlannedCall[] = []
  if (q.expand && !q.latents?.length)
    plan.push({ step: 'expand', messages: expansionMessages(q.q), expectedOutputTokens: EXPANSION_ANSWER_TOKENS })
  const selecting = q.select && q.method !== 'bm25' && !q.latents?.length
  if (q.rerank || selecting) {
    // Ranked without the expansion (not written yet); a selection is planned on the unexpanded candidates.
    const r = await rankDocuments(ctx, q, {
      depth: Math.max(q.limit, RERANK_TOP),
      ...(selecting ? { select: { llm, failed: [], plan } } : {})
    })
    if (!q.rerank)
      return {
        dryRun: true,
        model: llm.model,
        tokenScale: llm.tokenScale(),
        ...estimatePlan(plan, llm.prices, llm.tokenScale())
      }
    const top = r.ranking.subarray(0, Math.min(RERANK_TOP, r.ranking.length))
    if (top.length > 1)
      plan.push({
        step: 'rerank',
        messages: rerankMessages(q.q, await topTexts(ctx, r, top)),
        expectedOutputTokens: rerankAnswerTokens(top.length)
      })
  }
  return {
    dryRun: true,
    model: llm.model,
    tokenScale: llm.tokenScale(),
    ...estimatePlan(plan, llm.prices, llm.tokenScale())
  }
}

/** Documents up to which every id of a dataset is kept in memory once read (~40 bytes each: 20 MB at 500k). */
export const ID_CACHE_MAX_DOCUMENTS = 500_000
/** Bytes of ids kept per object store, over all datasets (an edge function has 128 MB). */
export const ID_CACHE_BYTES = 24 << 20
interface IdCache {
  ready: Map<string, { ids: string[]; bytes: number }>
  loading: Set<string>
  bytes: number
}
const idCaches = new WeakMap<ObjectStore, IdCache>()

/**
 * Every id of a dataset, once a background read has them (null until then: the first search starts that read, after
 * its answer, and reads its hits' ids as before, so a cold start pays nothing more). A hit's id is otherwise read
 * from the documents shard, where one id costs the decoding of its whole page (~5,000 ids): 20 hits took ~25 ms of
 * CPU at 100k documents for their ids alone, more than for their texts.
 */
function cachedIds(objects: ObjectStore, d: ReadyDataset): string[] | null {
  const n = d.manifest.documents.count
  if (n > ID_CACHE_MAX_DOCUMENTS) return null
  let cache = idCaches.get(objects)
  if (!cache) idCaches.set(objects, (cache = { ready: new Map(), loading: new Set(), bytes: 0 }))
  const c = cache
  const key = datasetKey(d)
  const hit = c.ready.get(key)
  if (hit) {
    c.ready.delete(key)
    c.ready.set(key, hit)
    return hit.ids
  }
  if (c.loading.has(key)) return null
  c.loading.add(key)
  // Started once this request has answered (a timer runs after its remaining reads and decoding, which are
  // synchronous or queued first): decoding 100k ids on the same thread took ~100 ms of a cold start's first search.
  new Promise<void>(resolve => setTimeout(resolve, 0))
    .then(() => readDocuments(objects, d.prefix, d.manifest.documents.files, undefined, ['id']))
    .then(
      all => {
        const ids: string[] = new Array(n).fill('')
        let bytes = 0
        for (let i = 0; i < all.row.length; i++) {
          ids[all.row[i]] = all.id[i]
          bytes += 40 + 2 * all.id[i].length
        }
        if (bytes > ID_CACHE_BYTES) return
        c.ready.set(key, { ids, bytes })
        c.bytes += bytes
        for (const [k, e] of c.ready) {
          if (c.bytes <= ID_CACHE_BYTES) break
          c.ready.delete(k)
          c.bytes -= e.bytes
        }
      },
      () => {}
    )
    .finally(() => c.loading.delete(key))
  return null
}

/**
 * The hits' ids and texts (and, for sae snippets, token counts). `truncated` is inferred rather than read: a
 * truncated document was cut at the manifest's maxTokens, so its token count equals it (the column has no page index,
 * so reading it for 20 rows decoded the whole column once per row: ~45 ms of CPU at 100k documents).
 */
async function hitDocuments(objects: ObjectStore, d: SlicedDataset, rows: Int32Array, positions: boolean) {
  const ids = cachedIds(objects, d)
  if (!rows.length)
    return {
      row: new Int32Array(0),
      id: [] as string[],
      text: [] as string[],
      token_count: new Int32Array(0),
      truncated: [] as boolean[]
    }
  const columns = [...(ids ? [] : ['id' as const]), 'text' as const, ...(positions ? ['token_count' as const] : [])]
  const docs = (await readDocuments(objects, d.prefix, d.manifest.documents.files, rows, columns)) as {
    row: Int32Array
    text: string[]
    id?: string[]
    token_count?: Int32Array
  }
  const tokenCount = docs.token_count ?? new Int32Array(docs.row.length)
  const cut = d.manifest.longDocuments === 'truncate'
  return {
    row: docs.row,
    text: docs.text,
    token_count: tokenCount,
    id: ids ? Array.from(docs.row, row => ids[row]) : docs.id!,
    truncated: Array.from(tokenCount, n => cut && n >= d.manifest.maxTokens)
  }
}

/** The chosen latents that make most of a hit's latent score, each with its share of that score. */
function hitLatents(sae: NonNullable<Ranked['sae']>, row: number): NonNullable<SearchHit['latents']> {
  const all = scoreParts(sae.csc, sae.latents, sae.weights, sae.p90, row, Infinity, sae.cap)
  const total = all.reduce((sum, p) => sum + p.part, 0)
  return all.slice(0, HIT_LATENTS).map(p => ({
    latent: p.latent,
    value: p.value,
    share: total > 0 ? Math.round((p.part / total) * 1e4) / 1e4 : 0
  }))
}

/**
 * Token position of the max of the first chosen latent present in each hit (firstLatentPosition), or -1: from the
 * columns when they hold positions, else read at the entries' file rows (a few pages instead of the whole column).
 */
async function hitPositions(objects: ObjectStore, r: Ranked, rows: Int32Array): Promise<Int32Array> {
  const { csc, latents } = r.sae!
  const entries = Int32Array.from(rows, row => firstLatentEntry(csc, latents, row))
  if (!csc.fileRows) return entries.map(e => (e < 0 ? -1 : csc.positions[e]))
  const fileRows = entries.map(e => (e < 0 ? -1 : csc.positions[e]))
  return readPositionsAt(objects, r.dataset.prefix, r.dataset.manifest.latents.byLatent, rows, fileRows)
}

export async function runSearch(
  ctx: AnalysisContext,
  q: SearchQuery,
  tuning: SearchTuning = {}
): Promise<SearchResult> {
  const useLlm = Boolean(q.expand || q.rerank || q.select)
  const llm = useLlm ? requireLlm(ctx.llm, llmOptionName(q)) : null
  if (useLlm && !q.q)
    throw new ApiError(400, 'invalid-request', `${llmOptionName(q)} works on a query in words: it needs q`)
  const ledger = llm?.newLedger()
  const failed: FailedItem[] = []
  let expansion: Expansion | null | undefined
  if (q.expand && !q.latents?.length) expansion = await expandQuery(llm!, ledger!, q.q!, failed)
  const depth = q.rerank ? Math.max(tuning.depth ?? q.limit, RERANK_TOP) : tuning.depth
  const select =
    q.select && q.method !== 'bm25' && !q.latents?.length
      ? ({ llm: llm!, ledger, failed } as NonNullable<SearchTuning['select']>)
      : undefined
  const r = await rankDocuments(ctx, q, { ...tuning, depth, expansion, select })
  let ranking = r.ranking
  let scores = r.scores
  let reranked: number | undefined
  if (q.rerank) {
    const top = ranking.subarray(0, Math.min(RERANK_TOP, ranking.length))
    reranked = 0
    if (top.length > 1) {
      const order = await rerankOrder(llm!, ledger!, q.q!, await topTexts(ctx, r, top), failed)
      if (order) {
        ranking = Int32Array.from(ranking)
        scores = Float32Array.from(scores)
        order.forEach((from, to) => {
          ranking[to] = r.ranking[from]
          scores[to] = r.scores[from]
        })
        reranked = top.length
      }
    }
  }
  const rows = ranking.subarray(0, q.limit)
  const placed = q.method === 'sae' && Boolean(r.sae)
  const [docs, positions, latents] = await Promise.all([
    hitDocuments(ctx.objects, r.dataset, rows, placed),
    placed ? hitPositions(ctx.objects, r, rows) : null,
    // Latents given without a label say what they fire on (labelled ones: no read).
    withPeaks(ctx.objects, r.dataset, r.latents)
  ])
  const at = new Map<number, number>()
  for (let i = 0; i < docs.row.length; i++) at.set(docs.row[i], i)
  const terms = q.q ? bm25Tokens([q.q, ...(expansion?.keywords ?? [])].join(' ')) : []
  // sae: around the (estimated) place where the first chosen latent present peaks; bm25 and hybrid: the first query word.
  const place = (i: number, j: number) => {
    if (!positions) return -1
    return estimateCharOffset(docs.text[j].length, Number(docs.token_count[j]), docs.truncated[j], positions[i])
  }
  return {
    dataset: r.dataset.record.id,
    ...(r.dataset.slice ? { where: r.dataset.slice.text, sliceDocuments: r.dataset.slice.rows.length } : {}),
    encoder: r.dataset.manifest.encoder.id,
    method: q.method,
    query: q.q ?? null,
    k: r.k,
    temperature: q.temperature,
    embedder: r.embedder,
    matched: r.matched,
    results: Array.from(rows, (row, i) => {
      const j = at.get(row)
      return {
        row,
        id: j === undefined ? '' : docs.id[j],
        score: scores[i],
        ...(r.sae ? { latents: hitLatents(r.sae, row) } : {}),
        snippet: j === undefined ? '' : snippet(docs.text[j], terms, 200, place(i, j))
      }
    }),
    latents,
    ...(q.expand ? { expansion: expansion ?? null } : {}),
    ...(select ? { selected: select.selected ?? 0 } : {}),
    ...(q.rerank ? { reranked } : {}),
    ...(useLlm ? { usage: ledger!.summary(), failed } : {})
  }
}

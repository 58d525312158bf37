/** @module Property retrieval over a ready dataset: reads only what a method needs, caches per dataset, runs the pure functions. */
import type { SearchQuery, SearchResult, SearchLatent } from '@latentbase/shared/contract/search'
import { readByLatent, readDocuments } from '@latentbase/shared/store/shards'
import { readLatentStats } from '@latentbase/shared/store/latent-stats'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { LabelEmbeddingCache, topLatentsByQuery, type LabelEmbeddings } from '@latentbase/shared/embeddings/label-cache'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import { Bm25IndexBuilder, bm25Scores, bm25Tokens, type Bm25Index } from '@latentbase/shared/analysis/bm25'
import { rankWeights, p90Of, saeScores, topRows, reciprocalRankFusion, snippet, estimateCharOffset, firstLatentPosition, RRF_K } from '@latentbase/shared/analysis/search'
import type { PooledCsc } from '@latentbase/shared/analysis/sparse'
import { ApiError } from '../problem.ts'
import type { AnalysisContext } from './context.ts'
import { loadReadyDataset, type ReadyDataset } from './ready-dataset.ts'

/** Documents taken from each ranking into the fusion: deep enough that the fused top `limit` is stable. */
export const FUSION_DEPTH = 1000
/** BM25 indexes kept in memory, per object store, by estimated heap bytes (an edge function has 128 MB). */
export const BM25_CACHE_BYTES = 48 << 20

export interface SearchTuning {
  /** Cap on a latent's normalized activation (value / p90); Infinity is the paper's uncapped sum. */
  cap?: number
  /** How deep the returned ranking goes (default: the query's limit). The evaluation asks for every document. */
  depth?: number
}

export interface Ranked {
  dataset: ReadyDataset
  /** Rows, best first. */
  ranking: Int32Array
  /** Score of each ranked row (same order). */
  scores: Float32Array
  matched: number
  latents: SearchLatent[]
  embedder: string | null
  k: number
  /** The chosen latents' columns (sae and hybrid), to place snippets at a latent's max. */
  sae: { csc: PooledCsc; latents: number[] } | null
}

// ---------------------------------------------------------------------------------------------------------------
// Caches, per object store (a test's MemoryObjectStore never sees another test's entries).

const labelCaches = new WeakMap<ObjectStore, LabelEmbeddingCache>()
function labelCache(objects: ObjectStore): LabelEmbeddingCache {
  let c = labelCaches.get(objects)
  if (!c) labelCaches.set(objects, (c = new LabelEmbeddingCache(objects)))
  return c
}

/** Query -> top latents, per label-embedding set: scanning 65k labels costs ~35 ms, and queries repeat. */
const QUERY_CACHE_ENTRIES = 256
const queryCaches = new WeakMap<LabelEmbeddings, Map<string, { latents: Int32Array; similarities: Float32Array }>>()
async function latentsForQuery(embeddings: LabelEmbeddings, embedder: Embedder, text: string, k: number) {
  let cache = queryCaches.get(embeddings)
  if (!cache) queryCaches.set(embeddings, (cache = new Map()))
  const key = `${k}\u0000${text}`
  const hit = cache.get(key)
  if (hit) { cache.delete(key); cache.set(key, hit); return hit }
  const top = topLatentsByQuery(embeddings, await embedder.embed([text]), k)
  cache.set(key, top)
  if (cache.size > QUERY_CACHE_ENTRIES) cache.delete(cache.keys().next().value!)
  return top
}

const datasetKey = (d: ReadyDataset) => `${d.prefix}\u0000${d.manifest.createdAt}\u0000${d.manifest.latents.nnz}`

class BoundedCache<T> {
  private readonly entries = new Map<string, { value: Promise<T>; bytes: number }>()
  private total = 0
  constructor(private readonly maxBytes: number, private readonly maxEntries: number) {}
  get(key: string, load: () => Promise<T>, size: (v: T) => number): Promise<T> {
    const hit = this.entries.get(key)
    if (hit) { this.entries.delete(key); this.entries.set(key, hit); return hit.value }
    const entry = { value: load(), bytes: 0 }
    this.entries.set(key, entry)
    entry.value.then((v) => {
      if (this.entries.get(key) !== entry) return
      entry.bytes = size(v)
      this.total += entry.bytes
      this.evict(key)
    }, () => { if (this.entries.get(key) === entry) this.entries.delete(key) })
    return entry.value
  }
  private evict(keep: string): void {
    for (const [k, e] of this.entries) {
      if (this.total <= this.maxBytes && this.entries.size <= this.maxEntries) return
      if (k === keep) continue
      this.entries.delete(k)
      this.total -= e.bytes
    }
  }
}

const bm25Caches = new WeakMap<ObjectStore, BoundedCache<Bm25Index>>()
const p90Caches = new WeakMap<ObjectStore, BoundedCache<Float32Array>>()

function bm25Index(objects: ObjectStore, d: ReadyDataset): Promise<Bm25Index> {
  let cache = bm25Caches.get(objects)
  if (!cache) bm25Caches.set(objects, (cache = new BoundedCache(BM25_CACHE_BYTES, 16)))
  return cache.get(datasetKey(d), async () => {
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
  }, (ix) => ix.bytes)
}

/** p90 of every latent (4 bytes a latent), from the histogram column of the statistics file. */
function p90All(objects: ObjectStore, d: ReadyDataset): Promise<Float32Array> {
  let cache = p90Caches.get(objects)
  if (!cache) p90Caches.set(objects, (cache = new BoundedCache(16 << 20, 64)))
  return cache.get(datasetKey(d), async () => {
    const stats = await readLatentStats(objects, d.prefix + d.manifest.stats.key, ['histogram', 'max'])
    return p90Of(stats, Int32Array.from({ length: stats.nLatents }, (_, i) => i))
  }, (p) => p.byteLength)
}

// ---------------------------------------------------------------------------------------------------------------

function dedupe(latents: number[]): number[] {
  const seen = new Set<number>()
  return latents.filter((l) => (seen.has(l) ? false : (seen.add(l), true)))
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

/** Validate a query against a dataset and rank its documents; no texts are read (except bm25's index). */
export async function rankDocuments(ctx: AnalysisContext, q: SearchQuery, tuning: SearchTuning = {}): Promise<Ranked> {
  if (!q.q && !q.latents?.length) {
    throw new ApiError(400, 'invalid-request', 'give q (the property to find, in words) or latents (a comma-separated list of latent ids)')
  }
  if (q.method === 'bm25' && !q.q) throw new ApiError(400, 'invalid-request', 'method bm25 searches the text: it needs q')
  if (q.method === 'bm25' && q.latents?.length) throw new ApiError(400, 'invalid-request', 'latents apply to methods sae and hybrid, not bm25')
  if (q.method === 'hybrid' && !q.q) throw new ApiError(400, 'invalid-request', 'method hybrid fuses sae with bm25 over the text: it needs q')

  const d = await loadReadyDataset(ctx.datasets, ctx.tenant, q.dataset, 'dataset')
  const { manifest } = d
  const nDocs = manifest.documents.count
  const nLatents = manifest.encoder.dSae
  const depth = Math.max(1, Math.min(tuning.depth ?? q.limit, nDocs))
  const encoderId = manifest.encoder.id
  ctx.signal?.throwIfAborted()

  let sae: { scores: Float32Array; latents: SearchLatent[]; embedder: string | null; k: number; csc: PooledCsc; chosen: number[] } | null = null
  if (q.method !== 'bm25') {
    ctx.progress?.(0.1, 'latents')
    const labels = await ctx.encoders.labels(encoderId).catch(() => new Array<string | null>(nLatents).fill(null))
    let chosen: number[]
    let similarities: (number | null)[]
    let embedder: string | null = null
    let k: number
    if (q.latents?.length) {
      const bad = q.latents.find((l) => l >= nLatents)
      if (bad !== undefined) throw new ApiError(400, 'invalid-request', `latent ${bad} does not exist: encoder ${encoderId} has latents 0-${nLatents - 1}`)
      chosen = dedupe(q.latents)
      similarities = chosen.map(() => null)
      k = chosen.length
    } else {
      if (!labels.some((l) => l)) {
        throw new ApiError(422, 'no-labels', `encoder ${encoderId} has no latent labels, so a query in words cannot pick latents: use method=bm25, or latents=...`)
      }
      const fingerprint = ctx.encoders.get(encoderId)?.fingerprint ?? manifest.encoderFingerprint
      let top: { latents: Int32Array; similarities: Float32Array }
      try {
        const embeddings = await labelCache(ctx.objects).get(fingerprint, ctx.embedder, labels)
        top = await latentsForQuery(embeddings, ctx.embedder, q.q!, q.k)
      } catch (err) {
        // The embeddings endpoint is a dependency the user can route around (bm25, latents=): say so, not a bare 500.
        throw new ApiError(503, 'embeddings-unavailable', `label similarity needs the embedder ${ctx.embedder.id}, which failed: ${(err as Error).message}; method=bm25 or latents=... work without it`)
      }
      chosen = Array.from(top.latents)
      similarities = Array.from(top.similarities)
      embedder = ctx.embedder.id
      k = q.k
    }
    ctx.signal?.throwIfAborted()
    const weights = rankWeights(chosen.length, k, q.temperature)
    const [csc, p90s] = await Promise.all([
      readByLatent(ctx.objects, d.prefix, manifest.latents.byLatent, chosen, { nDocs, nLatents }),
      p90All(ctx.objects, d),
    ])
    const p90 = Float32Array.from(chosen, (l) => p90s[l])
    sae = {
      scores: saeScores(csc, chosen, weights, p90, tuning.cap ?? Infinity),
      latents: chosen.map((latent, i) => ({ latent, label: labels[latent] ?? null, weight: weights[i], similarity: similarities[i], p90: p90[i] })),
      embedder, k, csc, chosen,
    }
  }
  ctx.signal?.throwIfAborted()

  let bm25: Float32Array | null = null
  if (q.method !== 'sae') {
    ctx.progress?.(0.5, 'bm25')
    bm25 = bm25Scores(await bm25Index(ctx.objects, d), q.q!)
  }

  let scores: Float32Array
  let ranking: Int32Array
  if (q.method === 'hybrid') {
    const fused = reciprocalRankFusion([topRows(sae!.scores, Math.max(FUSION_DEPTH, depth)), topRows(bm25!, Math.max(FUSION_DEPTH, depth))], nDocs, RRF_K)
    scores = fused
    ranking = topRows(fused, depth)
  } else {
    scores = q.method === 'sae' ? sae!.scores : bm25!
    ranking = topRows(scores, depth)
  }
  ctx.progress?.(1, 'done')
  return {
    dataset: d, ranking, scores: scoresOf(ranking, scores), matched: countPositive(scores),
    latents: sae?.latents ?? [], embedder: sae?.embedder ?? null, k: sae?.k ?? q.k,
    sae: sae ? { csc: sae.csc, latents: sae.chosen } : null,
  }
}

export async function runSearch(ctx: AnalysisContext, q: SearchQuery, tuning: SearchTuning = {}): Promise<SearchResult> {
  const r = await rankDocuments(ctx, q, tuning)
  const rows = r.ranking.subarray(0, q.limit)
  const docs = rows.length
    ? await readDocuments(ctx.objects, r.dataset.prefix, r.dataset.manifest.documents.files, rows, ['id', 'text', 'token_count', 'truncated'])
    : { row: new Int32Array(0), id: [] as string[], text: [] as string[], token_count: new Int32Array(0), truncated: new Uint8Array(0) }
  const at = new Map<number, number>()
  for (let i = 0; i < docs.row.length; i++) at.set(docs.row[i], i)
  const terms = q.q ? bm25Tokens(q.q) : []
  // sae: around the (estimated) place where the first chosen latent present peaks; bm25 and hybrid: the first query word.
  const place = (row: number, j: number) => {
    if (q.method !== 'sae' || !r.sae) return -1
    const position = firstLatentPosition(r.sae.csc, r.sae.latents, row)
    return estimateCharOffset(docs.text[j].length, Number(docs.token_count[j]), Boolean(docs.truncated[j]), position)
  }
  return {
    dataset: r.dataset.record.id,
    encoder: r.dataset.manifest.encoder.id,
    method: q.method,
    query: q.q ?? null,
    k: r.k,
    temperature: q.temperature,
    embedder: r.embedder,
    matched: r.matched,
    results: Array.from(rows, (row, i) => {
      const j = at.get(row)
      return { row, id: j === undefined ? '' : docs.id[j], score: r.scores[i], snippet: j === undefined ? '' : snippet(docs.text[j], terms, 200, place(row, j)) }
    }),
    latents: r.latents,
  }
}

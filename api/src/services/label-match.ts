/**
 * @module Label-to-text similarity over an encoder's labels with a tenant's label overlay on top, without re-embedding
 * every label: the encoder's own label embeddings stay cached (and shared by every tenant) with the overlaid latents
 * masked out, and only the overlay's few labels are embedded apart; a query takes the best of both.
 */
import { embedLabels, topLatentsByQuery, LabelEmbeddingCache, type LabelEmbeddings } from '@latentbase/shared/embeddings/label-cache'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import type { LabelInfo } from '@latentbase/shared/encoders/label-overlay'

export interface LabelMatcher {
  dimensions: number
  /** The k latents whose labels are most similar to a unit query vector, best first (unlabelled ones never). */
  top(query: Float32Array, k: number): { latents: Int32Array; similarities: Float32Array }
}

const matchers = new WeakMap<LabelInfo, Map<string, Promise<LabelMatcher>>>()

const labelCaches = new WeakMap<ObjectStore, LabelEmbeddingCache>()
/** The label embedding cache of an object store: one per store (a test's store never sees another's), shared by search and clustering. */
export function labelCache(objects: ObjectStore): LabelEmbeddingCache {
  let c = labelCaches.get(objects)
  if (!c) labelCaches.set(objects, (c = new LabelEmbeddingCache(objects)))
  return c
}

export function labelMatcher(cache: LabelEmbeddingCache, fingerprint: string, embedder: Embedder, info: LabelInfo): Promise<LabelMatcher> {
  let perInfo = matchers.get(info)
  if (!perInfo) matchers.set(info, (perInfo = new Map()))
  const key = `${embedder.id}\u0000${fingerprint}`
  let m = perInfo.get(key)
  if (!m) {
    m = build(cache, fingerprint, embedder, info)
    m.catch(() => perInfo!.delete(key))
    perInfo.set(key, m)
  }
  return m
}

async function build(cache: LabelEmbeddingCache, fingerprint: string, embedder: Embedder, info: LabelInfo): Promise<LabelMatcher> {
  const base = await cache.get(fingerprint, embedder, info.base ?? info.labels)
  const overlaid = info.overlaid ?? new Int32Array(0)
  if (!overlaid.length) return { dimensions: base.dimensions, top: (q, k) => topLatentsByQuery(base, q, k) }
  // Overlaid latents leave the base set (a copy of the presence bytes only) and come back with their new labels.
  const masked: LabelEmbeddings = { ...base, present: base.present.slice() }
  for (const l of overlaid) if (l < masked.count) masked.present[l] = 0
  const extra = await embedLabels(embedder, Array.from(overlaid, (l) => info.labels[l]))
  return {
    dimensions: base.dimensions,
    top(query, k) {
      const a = topLatentsByQuery(masked, query, k)
      const b = topLatentsByQuery(extra, query, k)
      const merged: Array<[number, number]> = []
      for (let i = 0; i < a.latents.length; i++) merged.push([a.latents[i], a.similarities[i]])
      for (let i = 0; i < b.latents.length; i++) merged.push([overlaid[b.latents[i]], b.similarities[i]])
      merged.sort((x, y) => y[1] - x[1] || x[0] - y[0])
      const out = merged.slice(0, k)
      return { latents: Int32Array.from(out, (e) => e[0]), similarities: Float32Array.from(out, (e) => e[1]) }
    },
  }
}

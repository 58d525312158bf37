/**
 * @module Label-to-text similarity over an encoder's labels with a tenant's label overlay on top, without re-embedding
 * every label: the encoder's own label embeddings stay cached (and shared by every tenant) with the overlaid latents
 * masked out, and only the overlay's few labels are embedded apart; a query takes the best of both.
 */
import {
  embedLabels,
  topLatentsByQuery,
  LabelEmbeddingCache,
  type LabelEmbeddings
} from '@latentbase/shared/embeddings/label-cache'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import type { LabelInfo } from '@latentbase/shared/catalog/label-overlay'
import { encoderMatchTexts, matchText } from '@latentbase/shared/embeddings/label-text'

export interface LabelMatcher {
  dimensions: number
  /** The k latents whose labels are most similar to a unit query vector, best first (unlabelled ones never). */
  top(query: Float32Array, k: number): { latents: Int32Array; similarities: Float32Array }
  /** Cosine of two latents' label embeddings (0 when either has no label). */
  cosine(a: number, b: number): number
}

/**
 * Cosine of row i of `x` and row j of `y`, int8 label embeddings of one embedder (a row is a unit vector / its scale),
 * each stored dense or sparse (the encoder's labels are sparse for a hashed-feature embedder, an overlay's few dense).
 */
function rowCosine(x: LabelEmbeddings, i: number, y: LabelEmbeddings, j: number): number {
  if (i < 0 || j < 0 || i >= x.count || j >= y.count || !x.present[i] || !y.present[j]) return 0
  return rowDot(x, i, y, j) * x.scales[i] * y.scales[j]
}

function rowDot(x: LabelEmbeddings, i: number, y: LabelEmbeddings, j: number): number {
  const d = x.dimensions
  let dot = 0
  if (x.rows && y.rows) {
    // Both sparse: a merge of the two rows' ascending dimensions.
    const xd = x.dims!
    const yd = y.dims!
    for (let p = x.rows[i], q = y.rows[j], pe = x.rows[i + 1], qe = y.rows[j + 1]; p < pe && q < qe; ) {
      if (xd[p] < yd[q]) p++
      else if (xd[p] > yd[q]) q++
      else dot += x.codes[p++] * y.codes[q++]
    }
  } else if (x.rows || y.rows) {
    const [s, si, v, vi] = x.rows ? [x, i, y, j] : [y, j, x, i]
    for (let k = s.rows![si], end = s.rows![si + 1]; k < end; k++) dot += s.codes[k] * v.codes[vi * d + s.dims![k]]
  } else for (let p = i * d, q = j * d, end = p + d; p < end; p++, q++) dot += x.codes[p] * y.codes[q]
  return dot
}

const matchers = new WeakMap<LabelInfo, Map<string, Promise<LabelMatcher>>>()

const labelCaches = new WeakMap<ObjectStore, LabelEmbeddingCache>()
/** The label embedding cache of an object store: one per store (a test's store never sees another's), shared by search and clustering. */
export function labelCache(objects: ObjectStore): LabelEmbeddingCache {
  let c = labelCaches.get(objects)
  if (!c) labelCaches.set(objects, (c = new LabelEmbeddingCache(objects)))
  return c
}

export function labelMatcher(
  cache: LabelEmbeddingCache,
  fingerprint: string,
  embedder: Embedder,
  info: LabelInfo
): Promise<LabelMatcher> {
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

async function build(
  cache: LabelEmbeddingCache,
  fingerprint: string,
  embedder: Embedder,
  info: LabelInfo
): Promise<LabelMatcher> {
  const base = await cache.get(fingerprint, embedder, encoderMatchTexts(info.base ?? info.labels, info.sources))
  const overlaid = info.overlaid ?? new Int32Array(0)
  if (!overlaid.length)
    return {
      dimensions: base.dimensions,
      top: (q, k) => topLatentsByQuery(base, q, k),
      cosine: (a, b) => rowCosine(base, a, base, b)
    }
  // Overlaid latents leave the base set (a copy of the presence bytes only) and come back with their new labels.
  const masked: LabelEmbeddings = { ...base, present: base.present.slice() }
  for (const l of overlaid) if (l < masked.count) masked.present[l] = 0
  const extra = await embedLabels(
    embedder,
    Array.from(overlaid, l => matchText(info.labels[l], info.sources[l]))
  )
  const extraRow = new Map(Array.from(overlaid, (l, i) => [l, i]))
  return {
    dimensions: base.dimensions,
    cosine(a, b) {
      const ea = extraRow.get(a),
        eb = extraRow.get(b)
      return rowCosine(ea === undefined ? masked : extra, ea ?? a, eb === undefined ? masked : extra, eb ?? b)
    },
    top(query, k) {
      const a = topLatentsByQuery(masked, query, k)
      const b = topLatentsByQuery(extra, query, k)
      const merged: Array<[number, number]> = []
      for (let i = 0; i < a.latents.length; i++) merged.push([a.latents[i], a.similarities[i]])
      for (let i = 0; i < b.latents.length; i++) merged.push([overlaid[b.latents[i]], b.similarities[i]])
      merged.sort((x, y) => y[1] - x[1] || x[0] - y[0])
      const out = merged.slice(0, k)
      return { latents: Int32Array.from(out, e => e[0]), similarities: Float32Array.from(out, e => e[1]) }
    }
  }
}

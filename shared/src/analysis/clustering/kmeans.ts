/** @module Seeded k-means++ with restarts: dense (the spectral embedding) and spherical over binarized latent vectors (cosine). */
import { seededRng, type Rng } from '../../util/random.ts'
import type { BinaryRows } from './jaccard.ts'

export interface KmeansOptions {
  seed?: number
  /** Independent k-means++ starts; the best objective wins (ties: the earliest). */
  restarts?: number
  maxIterations?: number
}

export interface KmeansResult {
  assignments: Int32Array
  /** k x d, row-major. */
  centroids: Float64Array
  /** Dense: sum of squared distances to the assigned centroid. Spherical: sum of (1 - cosine). */
  cost: number
  iterations: number
}

/** Index sampled with probability proportional to weights[i] (uniform when all are 0). */
function sampleProportional(rng: Rng, weights: Float64Array, n: number): number {
  let total = 0
  for (let i = 0; i < n; i++) total += weights[i]
  if (!(total > 0)) return rng.int(n)
  let r = rng.next() * total
  for (let i = 0; i < n; i++) {
    r -= weights[i]
    if (r < 0 && weights[i] > 0) return i
  }
  for (let i = n - 1; i >= 0; i--) if (weights[i] > 0) return i
  return n - 1
}

/** Lloyd's k-means with k-means++ seeding on n points of dimension d (row-major). */
export function kmeansDense(
  points: Float64Array,
  n: number,
  d: number,
  k: number,
  options: KmeansOptions = {}
): KmeansResult {
  if (!(k >= 1 && k <= n)) throw new RangeError(`need 1 <= k <= n, got k=${k}, n=${n}`)
  const rng = seededRng(options.seed ?? 0)
  const restarts = Math.max(1, options.restarts ?? 8)
  const maxIterations = options.maxIterations ?? 100
  let best: KmeansResult | null = null
  const dist = new Float64Array(n)
  const sq = (i: number, centroids: Float64Array, c: number) => {
    let s = 0
    for (let t = 0; t < d; t++) {
      const x = points[i * d + t] - centroids[c * d + t]
      s += x * x
    }
    return s
  }
  for (let r = 0; r < restarts; r++) {
    const centroids = new Float64Array(k * d)
    const first = rng.int(n)
    centroids.set(points.subarray(first * d, first * d + d), 0)
    for (let i = 0; i < n; i++) dist[i] = sq(i, centroids, 0)
    for (let c = 1; c < k; c++) {
      const pick = sampleProportional(rng, dist, n)
      centroids.set(points.subarray(pick * d, pick * d + d), c * d)
      for (let i = 0; i < n; i++) {
        const s = sq(i, centroids, c)
        if (s < dist[i]) dist[i] = s
      }
    }
    const assignments = new Int32Array(n).fill(-1)
    const counts = new Int32Array(k)
    let cost = 0
    let it = 0
    for (; it < maxIterations; it++) {
      let changed = 0
      cost = 0
      for (let i = 0; i < n; i++) {
        let bc = 0,
          bd = Infinity
        for (let c = 0; c < k; c++) {
          const s = sq(i, centroids, c)
          if (s < bd) {
            bd = s
            bc = c
          }
        }
        if (assignments[i] !== bc) {
          assignments[i] = bc
          changed++
        }
        dist[i] = bd
        cost += bd
      }
      if (changed === 0 && it > 0) break
      centroids.fill(0)
      counts.fill(0)
      for (let i = 0; i < n; i++) {
        const c = assignments[i]
        counts[c]++
        for (let t = 0; t < d; t++) centroids[c * d + t] += points[i * d + t]
      }
      for (let c = 0; c < k; c++) {
        if (counts[c] > 0) {
          for (let t = 0; t < d; t++) centroids[c * d + t] /= counts[c]
          continue
        }
        // An empty cluster takes the point farthest from its centroid, which then leaves its old cluster.
        let far = 0
        for (let i = 1; i < n; i++) if (dist[i] > dist[far]) far = i
        centroids.set(points.subarray(far * d, far * d + d), c * d)
        dist[far] = 0
      }
    }
    if (!best || cost < best.cost) best = { assignments, centroids, cost, iterations: it }
  }
  return best!
}

export interface SphericalResult extends KmeansResult {
  /** n x k cosine of each document to each (unit) centroid. */
  cosines: Float32Array
}

/**
 * Spherical k-means on binarized latent vectors (each row scaled to unit length, so the similarity is cosine):
 * k-means++ seeding on 1 - cosine, centroids are normalized means. Documents without any kept latent have cosine 0 to
 * every centroid and join the lowest-numbered cluster.
 */
export function kmeansBinaryCosine(rows: BinaryRows, k: number, options: KmeansOptions = {}): SphericalResult {
  const n = rows.nDocs
  const m = rows.nCols
  if (!(k >= 1 && k <= n)) throw new RangeError(`need 1 <= k <= n, got k=${k}, n=${n}`)
  const rng = seededRng(options.seed ?? 0)
  const restarts = Math.max(1, options.restarts ?? 8)
  const maxIterations = options.maxIterations ?? 100
  const inv = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const len = rows.indptr[i + 1] - rows.indptr[i]
    inv[i] = len > 0 ? 1 / Math.sqrt(len) : 0
  }
  const cosTo = (i: number, centroids: Float64Array, c: number) => {
    let s = 0
    const base = c * m
    for (let p = rows.indptr[i]; p < rows.indptr[i + 1]; p++) s += centroids[base + rows.cols[p]]
    return s * inv[i]
  }
  const setToDoc = (centroids: Float64Array, c: number, i: number) => {
    centroids.fill(0, c * m, (c + 1) * m)
    for (let p = rows.indptr[i]; p < rows.indptr[i + 1]; p++) centroids[c * m + rows.cols[p]] = inv[i]
  }
  let best: KmeansResult | null = null
  const weight = new Float64Array(n)
  const sim = new Float64Array(n)
  for (let r = 0; r < restarts; r++) {
    const centroids = new Float64Array(k * m)
    setToDoc(centroids, 0, rng.int(n))
    for (let i = 0; i < n; i++) {
      sim[i] = cosTo(i, centroids, 0)
      weight[i] = 2 - 2 * sim[i]
    }
    for (let c = 1; c < k; c++) {
      setToDoc(centroids, c, sampleProportional(rng, weight, n))
      for (let i = 0; i < n; i++) {
        const s = cosTo(i, centroids, c)
        if (s > sim[i]) {
          sim[i] = s
          weight[i] = 2 - 2 * s
        }
      }
    }
    const assignments = new Int32Array(n).fill(-1)
    let cost = 0
    let it = 0
    for (; it < maxIterations; it++) {
      let changed = 0
      cost = 0
      for (let i = 0; i < n; i++) {
        let bc = 0,
          bs = -Infinity
        for (let c = 0; c < k; c++) {
          const s = cosTo(i, centroids, c)
          if (s > bs) {
            bs = s
            bc = c
          }
        }
        if (assignments[i] !== bc) {
          assignments[i] = bc
          changed++
        }
        sim[i] = bs
        cost += 1 - bs
      }
      if (changed === 0 && it > 0) break
      centroids.fill(0)
      for (let i = 0; i < n; i++) {
        const base = assignments[i] * m
        for (let p = rows.indptr[i]; p < rows.indptr[i + 1]; p++) centroids[base + rows.cols[p]] += inv[i]
      }
      for (let c = 0; c < k; c++) {
        let s = 0
        for (let t = 0; t < m; t++) s += centroids[c * m + t] ** 2
        if (s > 0) {
          const f = 1 / Math.sqrt(s)
          for (let t = 0; t < m; t++) centroids[c * m + t] *= f
          continue
        }
        // Empty (or all-empty-document) cluster: restart it at the document least similar to its centroid.
        let far = 0
        for (let i = 1; i < n; i++) if (sim[i] < sim[far]) far = i
        setToDoc(centroids, c, far)
        sim[far] = 1
      }
    }
    if (!best || cost < best.cost) best = { assignments, centroids, cost, iterations: it }
  }
  const cosines = new Float32Array(n * k)
  for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) cosines[i * k + c] = cosTo(i, best!.centroids, c)
  return { ...best!, cosines }
}

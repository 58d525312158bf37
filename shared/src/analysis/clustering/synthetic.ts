/** @module Synthetic pooled-latent matrices with planted document groups, for clustering tests and benchmarks. */
import { csrFromCoo, type PooledCsr } from '../sparse.ts'
import { seededRng } from '../../util/random.ts'

export interface PlantedAxis {
  /** Number of groups along this axis; each document belongs to one group per axis. */
  groups: number
  /** Group-specific latents per group (consecutive ids, allocated in axis order). */
  latentsPerGroup: number
  /** Probability that a document has each of its group's latents. */
  p: number
}

export interface PlantedSpec {
  docs: number
  nLatents: number
  axes: PlantedAxis[]
  /** Latents after the planted ones that fire at random: each document draws this many. */
  noisePerDoc: number
  seed?: number
}

/** Documents with planted groups per axis, plus uniform noise latents; labels[axis][doc] is the hidden group. */
export function plantedCsr(spec: PlantedSpec): { csr: PooledCsr; labels: Int32Array[]; groupLatents: number[][][] } {
  const rng = seededRng(spec.seed ?? 1)
  const docs: number[] = [],
    latents: number[] = [],
    values: number[] = []
  const groupLatents: number[][][] = []
  let next = 0
  for (const axis of spec.axes) {
    const perAxis: number[][] = []
    for (let g = 0; g < axis.groups; g++) perAxis.push(Array.from({ length: axis.latentsPerGroup }, () => next++))
    groupLatents.push(perAxis)
  }
  const noiseStart = next
  const noiseCount = spec.nLatents - noiseStart
  if (noiseCount < spec.noisePerDoc) throw new RangeError('not enough latents for the noise')
  const labels = spec.axes.map(() => new Int32Array(spec.docs))
  const seen = new Uint8Array(spec.nLatents)
  for (let d = 0; d < spec.docs; d++) {
    const chosen: number[] = []
    spec.axes.forEach((axis, a) => {
      const g = rng.int(axis.groups)
      labels[a][d] = g
      for (const l of groupLatents[a][g]) if (rng.next() < axis.p) chosen.push(l)
    })
    for (let t = 0; t < spec.noisePerDoc; t++) chosen.push(noiseStart + rng.int(noiseCount))
    for (const l of chosen) {
      if (seen[l]) continue
      seen[l] = 1
      docs.push(d)
      latents.push(l)
      values.push(0.5 + rng.next())
    }
    for (const l of chosen) seen[l] = 0
  }
  return { csr: csrFromCoo(spec.docs, spec.nLatents, docs, latents, values), labels, groupLatents }
}

/** Purity of a clustering against hidden labels: each cluster counts its majority label. */
export function purity(assignments: ArrayLike<number>, truth: ArrayLike<number>): number {
  const counts = new Map<string, number>()
  const best = new Map<number, number>()
  for (let i = 0; i < assignments.length; i++) {
    const key = `${assignments[i]}:${truth[i]}`
    const c = (counts.get(key) ?? 0) + 1
    counts.set(key, c)
    if (c > (best.get(assignments[i]) ?? 0)) best.set(assignments[i], c)
  }
  let s = 0
  for (const v of best.values()) s += v
  return s / assignments.length
}

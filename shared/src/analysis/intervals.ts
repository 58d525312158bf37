/**
 * @module Activation intervals of one latent: its documents grouped by pooled value into equal-width intervals of
 * (0, max], and a seeded sample of each, as SAE dashboards show examples below the top ones (a label that describes
 * the top examples only may not describe what the latent does at a third of its max).
 */
import { mulberry32 } from '../util/random.ts'

export interface ActivationInterval {
  /** Exclusive lower bound of the pooled value (0 for the lowest interval). */
  from: number
  /** Inclusive upper bound. */
  to: number
  /** Entries (documents) whose value falls in the interval. */
  count: number
  /** Indexes into the given entries: a seeded uniform sample of the interval, strongest first. */
  picked: number[]
}

/**
 * Split the entries with value > 0 (optionally only those `include` accepts) into `intervals` equal-width
 * intervals of (0, max], highest first, and pick up to `perInterval` of each: uniform without replacement, seeded
 * by `seed`, so an answer repeats. An interval without entries is kept (count 0), so the spread is visible.
 */
export function activationIntervals(
  values: ArrayLike<number>,
  intervals: number,
  perInterval: number,
  seed: number,
  include?: (entry: number) => boolean
): { max: number; count: number; intervals: ActivationInterval[] } {
  let max = 0
  let count = 0
  for (let e = 0; e < values.length; e++) {
    if (!(values[e] > 0) || (include && !include(e))) continue
    count++
    if (values[e] > max) max = values[e]
  }
  const members: number[][] = Array.from({ length: intervals }, () => [])
  if (max > 0) {
    for (let e = 0; e < values.length; e++) {
      if (!(values[e] > 0) || (include && !include(e))) continue
      // ceil(v / max * n) - 1 puts v in (max * k / n, max * (k + 1) / n]; the max itself in the top interval.
      const k = Math.min(intervals - 1, Math.max(0, Math.ceil((values[e] / max) * intervals) - 1))
      members[k].push(e)
    }
  }
  const out: ActivationInterval[] = []
  for (let k = intervals - 1; k >= 0; k--) {
    const pool = members[k]
    // A partial Fisher-Yates over the interval's entries, one stream per interval.
    const random = mulberry32((seed * 0x9e3779b1) ^ (k + 1))
    const take = Math.min(perInterval, pool.length)
    for (let i = 0; i < take; i++) {
      const j = i + Math.floor(random() * (pool.length - i))
      const t = pool[i]
      pool[i] = pool[j]
      pool[j] = t
    }
    const picked = pool.slice(0, take).sort((a, b) => values[b] - values[a] || a - b)
    out.push({ from: (max * k) / intervals, to: (max * (k + 1)) / intervals, count: pool.length, picked })
  }
  return { max, count, intervals: out }
}

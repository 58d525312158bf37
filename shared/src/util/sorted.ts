/** @module Binary search and set helpers over sorted number arrays (sort keys, row lists, latent ids). */

/** First index in sorted `a` (within [lo, hi)) whose value is >= x. */
export function lowerBound(a: ArrayLike<number>, x: number, lo = 0, hi = a.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (a[mid] < x) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** The distinct values of `xs`, ascending, as an Int32Array. */
export function sortedUnique(xs: ArrayLike<number>): Int32Array {
  const a = Int32Array.from(xs).sort()
  let n = 0
  for (let i = 0; i < a.length; i++) if (i === 0 || a[i] !== a[i - 1]) a[n++] = a[i]
  return a.subarray(0, n)
}

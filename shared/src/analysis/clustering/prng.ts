/** @module A small seeded PRNG (splitmix32-seeded sfc32) so clustering is reproducible for a given seed. */

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number
  /** Uniform integer in [0, n). */
  int(n: number): number
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
}

/**
 * sfc32 seeded through splitmix32: fast, passes PractRand far beyond what k-means seeding needs, and
 * (unlike Math.random) gives the same stream for the same seed on every runtime.
 */
export function seededRng(seed: number): Rng {
  const mix = splitmix32(Math.floor(seed) ^ 0x5bd1e995)
  let a = mix(), b = mix(), c = mix(), d = mix()
  const next32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0
    d = (d + 1) >>> 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) >>> 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) >>> 0
    return t
  }
  for (let i = 0; i < 12; i++) next32()
  const next = () => next32() / 4294967296
  return { next, int: (n: number) => Math.floor(next() * n) }
}

/**
 * @module Seeded pseudo-random numbers, so tests, benchmarks, seeded analyses and the demo encoder's weights repeat
 * exactly. Three generators, each kept bit for bit where its stream is relied on: mulberry32 (sampling, synthetic
 * data), sfc32 (clustering), xoshiro128** (the demo reader's weights: changing it would change the stored model).
 */

/** Uniform [0, 1) from a 32-bit seed (mulberry32: small, fast, good enough for sampling and initialization). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// Clustering: sfc32.

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number
  /** Uniform integer in [0, n). */
  int(n: number): number
}

function splitmix32Sfc(seed: number): () => number {
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
  const mix = splitmix32Sfc(Math.floor(seed) ^ 0x5bd1e995)
  let a = mix(),
    b = mix(),
    c = mix(),
    d = mix()
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

// The demo encoder's weights: xoshiro128**. Only integer ops (Math.imul, shifts) and IEEE-exact float ops (+, -, *,
// sqrt) are used, so every machine and Node version produces the same floats.

/** splitmix32 (xoshiro's seeding variant): turns one 32-bit seed into well-mixed words to fill its state. */
function splitmix32Xoshiro(seed: number): () => number {
  let a = seed | 0
  return () => {
    a = (a + 0x9e3779b9) | 0
    let t = a ^ (a >>> 16)
    t = Math.imul(t, 0x21f0aaad)
    t ^= t >>> 15
    t = Math.imul(t, 0x735a2d97)
    return (t ^ (t >>> 15)) >>> 0
  }
}

/** xoshiro128**: a fast 32-bit generator, returning uniforms in [0, 1) on a 2^-24 grid. */
export function xoshiro128(seed: number): () => number {
  const init = splitmix32Xoshiro(seed)
  let s0 = init(),
    s1 = init(),
    s2 = init(),
    s3 = init()
  const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k))
  return () => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0
    const t = s1 << 9
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = rotl(s3, 11)
    return (result >>> 8) * 2 ** -24
  }
}

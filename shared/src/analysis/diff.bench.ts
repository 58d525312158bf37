/** @module Benchmark of the three diff designs at the target size: 10k documents x 4096 latents x ~500 present latents per document, per dataset. Run: node --import tsx shared/src/analysis/diff.bench.ts [docs] [latents] [nnzPerDoc] */
import { diffLatents, diffLengthControlled, diffPaired, type DiffOptions } from './diff.ts'
import { presenceCounts, type PooledCsr } from './sparse.ts'
import { mulberry32 as rng } from '../util/random.ts'

const nDocs = Number(process.argv[2] ?? 10_000)
const nLatents = Number(process.argv[3] ?? 4096)
const nnzPerDoc = Number(process.argv[4] ?? 500)

/** Latent rates with a heavy tail (a few common latents, many rare ones), scaled to nnzPerDoc per document. */
function rates(seed: number, shift: number): Float64Array {
  const r = rng(seed)
  const raw = Float64Array.from(
    { length: nLatents },
    (_, l) => (1 / (1 + ((l + shift) % nLatents)) ** 0.8) * (0.5 + r())
  )
  const total = raw.reduce((x, y) => x + y, 0)
  return raw.map(x => Math.min(0.95, (x * nnzPerDoc) / total))
}

function synthesize(seed: number, rate: Float64Array): PooledCsr {
  const r = rng(seed)
  const indptr = new Int32Array(nDocs + 1)
  let latents = new Int32Array(nDocs * nnzPerDoc * 1.2)
  let nnz = 0
  for (let i = 0; i < nDocs; i++) {
    for (let l = 0; l < nLatents; l++) {
      if (r() < rate[l]) {
        if (nnz === latents.length) {
          const grown = new Int32Array(latents.length * 2)
          grown.set(latents)
          latents = grown
        }
        latents[nnz++] = l
      }
    }
    indptr[i + 1] = nnz
  }
  return {
    nDocs,
    nLatents,
    indptr,
    latents: latents.slice(0, nnz),
    values: new Float32Array(nnz).fill(1),
    positions: new Int32Array(nnz).fill(-1)
  }
}

function time<T>(what: string, f: () => T, repeats = 5): T {
  let out = f() // warm-up (JIT)
  const runs: number[] = []
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now()
    out = f()
    runs.push(performance.now() - t0)
  }
  runs.sort((x, y) => x - y)
  console.log(
    `${what}: median ${runs[runs.length >> 1].toFixed(1)} ms (min ${runs[0].toFixed(1)}, max ${runs[runs.length - 1].toFixed(1)})`
  )
  return out
}

const t0 = performance.now()
const a = synthesize(1, rates(10, 0))
const b = synthesize(2, rates(11, 3))
console.log(
  `synthesized ${nDocs} x ${nLatents}, nnz/doc A ${(a.latents.length / nDocs).toFixed(0)}, B ${(b.latents.length / nDocs).toFixed(0)} in ${(performance.now() - t0).toFixed(0)} ms`
)

const labels = new Array<string | null>(nLatents).fill(null)
const options: DiffOptions = { limit: 50, minFrequency: 0, maxFrequency: 1, metric: 'absolute', direction: 'both' }
const rows = Int32Array.from({ length: nDocs }, (_, i) => i)
const tr = rng(5)
const tokensA = Int32Array.from({ length: nDocs }, () => 20 + Math.floor(tr() * 500))
const tokensB = Int32Array.from({ length: nDocs }, () => 20 + Math.floor(tr() * 400))

time('presence counts (one CSR pass, both datasets)', () => [presenceCounts(a), presenceCounts(b)])
const counts = [presenceCounts(a), presenceCounts(b)]
time('independent diff from counts', () =>
  diffLatents({
    a: { id: 'a', name: 'A', documents: nDocs, counts: counts[0] },
    b: [{ id: 'b', name: 'B', documents: nDocs, counts: counts[1] }],
    labels,
    options
  })
)
const independent = time('independent diff incl. counting from the CSRs', () =>
  diffLatents({
    a: { id: 'a', name: 'A', documents: nDocs, counts: presenceCounts(a) },
    b: [{ id: 'b', name: 'B', documents: nDocs, counts: presenceCounts(b) }],
    labels,
    options
  })
)
const paired = time('paired diff (McNemar)', () =>
  diffPaired({ a, b, rowsA: rows, rowsB: rows, labels, against: 'b', options })
)
const stratified = time('length-stratified diff (CMH)', () =>
  diffLengthControlled({ a, b, tokensA, tokensB, labels, against: 'b', options })
)
console.log(
  `tested: independent ${independent.tested}, paired ${paired.tested}, stratified ${stratified.tested}; tests used:`,
  Object.entries(
    independent.latents.reduce<Record<string, number>>((m, d) => ({ ...m, [d.test]: (m[d.test] ?? 0) + 1 }), {})
  )
)
